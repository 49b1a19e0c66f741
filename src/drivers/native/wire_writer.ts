/**
 * Encodes frontend protocol messages into one reusable buffer; a round of
 * messages leaves as one copy ({@linkcode WireWriter.take}).
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * A growable message buffer.
 *
 * @example
 * ```ts
 * import { WireWriter } from "./wire_writer.ts";
 * const w = new WireWriter();
 * w.begin(0x51).cstr("SELECT 1").end(); // Query
 * console.log(w.take().length); // 14
 * ```
 */
export class WireWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #start = -1;

  /** @param size Initial capacity in bytes. */
  constructor(size = 256) {
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Starts a message of `type` (0 for the untyped startup-style messages). */
  begin(type: number): this {
    if (type !== 0) this.byte(type);
    this.#start = this.#pos;
    return this.int32(0);
  }

  /** Ends the current message, writing its length. */
  end(): this {
    this.#view.setInt32(this.#start, this.#pos - this.#start);
    return this;
  }

  /** Appends a byte. */
  byte(v: number): this {
    this.#ensure(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  /** Appends a big-endian int16. */
  int16(v: number): this {
    this.#ensure(2);
    this.#view.setInt16(this.#pos, v);
    this.#pos += 2;
    return this;
  }

  /** Appends a big-endian int32. */
  int32(v: number): this {
    this.#ensure(4);
    this.#view.setInt32(this.#pos, v);
    this.#pos += 4;
    return this;
  }

  /** Appends UTF-8 text without terminator; returns the byte count. */
  text(s: string): number {
    this.#ensure(s.length * 3);
    const { written } = encoder.encodeInto(s, this.#buf.subarray(this.#pos));
    this.#pos += written;
    return written;
  }

  /** Appends a NUL-terminated UTF-8 string. */
  cstr(s: string): this {
    this.text(s);
    return this.byte(0);
  }

  /** Appends an int32 length then UTF-8 text (-1 for null). */
  lenText(s: string | null): this {
    if (s === null) return this.int32(-1);
    const at = this.#pos;
    this.int32(0);
    const n = this.text(s);
    this.#view.setInt32(at, n);
    return this;
  }

  /** Appends raw bytes. */
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  /** Whether nothing is buffered. */
  get empty(): boolean {
    return this.#pos === 0;
  }

  /** Returns a copy of what was written and empties the buffer (a buffer grown past 64 KiB is let go). */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#pos);
    this.discard();
    return out;
  }

  /** Drops whatever was written and not taken. */
  discard(): void {
    this.#pos = 0;
    if (this.#buf.length > 65536) {
      this.#buf = new Uint8Array(1024);
      this.#view = new DataView(this.#buf.buffer);
    }
  }
}

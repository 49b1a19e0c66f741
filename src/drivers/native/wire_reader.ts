/**
 * Frames the backend byte stream into messages: the one parser. Messages are
 * handed out as (type, bytes, start, end) views into the receive buffer, so
 * rows decode straight from it.
 *
 * @module
 */

/** Receives one framed message; `body` is valid only during the call. */
export type MessageHandler = (type: number, body: Uint8Array, start: number, end: number) => void;

/**
 * Accumulates chunks and emits whole messages.
 *
 * @example
 * ```ts
 * import { WireReader } from "./wire_reader.ts";
 * const r = new WireReader((type, _b, start, end) => console.log(type, end - start));
 * r.feed(new Uint8Array([0x5a, 0, 0, 0, 5, 0x49])); // 90 1 (ReadyForQuery)
 * ```
 */
export class WireReader {
  #rest: Uint8Array | undefined;
  readonly #handler: MessageHandler;

  /** @param handler Called for each complete message, in order. */
  constructor(handler: MessageHandler) {
    this.#handler = handler;
  }

  /** Feeds a chunk; emits every message it completes. */
  feed(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.#rest !== undefined) {
      buf = new Uint8Array(this.#rest.length + chunk.length);
      buf.set(this.#rest);
      buf.set(chunk, this.#rest.length);
      this.#rest = undefined;
    }
    let pos = 0;
    const n = buf.length;
    while (n - pos >= 5) {
      const len = ((buf[pos + 1]! << 24) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 8) | buf[pos + 4]!) >>>
        0;
      if (n - pos - 1 < len) break;
      this.#handler(buf[pos]!, buf, pos + 5, pos + 1 + len);
      pos += 1 + len;
    }
    if (pos < n) this.#rest = buf.slice(pos);
  }
}

const decoder = new TextDecoder();

/** Decodes UTF-8 bytes `[start, end)` of `b`. */
export function utf8(b: Uint8Array, start: number, end: number): string {
  return decoder.decode(b.subarray(start, end));
}

/** Reads a big-endian int32 at `at`. */
export function int32(b: Uint8Array, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}

/** Reads a big-endian int16 at `at` (unsigned). */
export function int16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

/** Index of the NUL ending the string at `at`. */
export function cstrEnd(b: Uint8Array, at: number): number {
  let i = at;
  while (b[i] !== 0) i++;
  return i;
}

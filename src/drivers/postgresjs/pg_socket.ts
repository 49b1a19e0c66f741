/**
 * The socket object postgres.js talks to when given the `socket` option: an
 * event-emitter-shaped wrapper over a runtime-neutral {@linkcode Transport}.
 *
 * postgres.js reads incoming chunks with Node `Buffer` methods
 * (`readUInt32BE`, `toString('utf8', ...)`), so chunks are handed over as
 * `Buffer` views (no copy). `Buffer` is taken from `globalThis`, where Node,
 * Deno 2 and Bun all provide it; nothing here imports `node:*`.
 *
 * @module
 */

import type { Transport } from "../../runtime/transport.ts";

type Handler = (...args: unknown[]) => void;

interface BufferLike {
  isBuffer(value: unknown): boolean;
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): Uint8Array;
}

function bufferClass(): BufferLike {
  const found = (globalThis as { Buffer?: BufferLike }).Buffer;
  if (found === undefined) throw new Error("postgres.js needs a global Buffer, which this runtime lacks");
  return found;
}

interface Immediates {
  setImmediate?: (fn: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
}

const immediates = globalThis as Immediates;

/** Runs `fn` once the pending I/O callbacks ran: `setImmediate` where there is one (Deno 2, Bun, Node). */
const later: (fn: () => void) => unknown = immediates.setImmediate?.bind(globalThis) ??
  ((fn) => setTimeout(fn, 0));

/** Cancels what {@linkcode later} armed. */
const cancelLater: (handle: unknown) => void = immediates.clearImmediate?.bind(globalThis) ??
  ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * A postgres.js-compatible socket. Emits `data` (Buffer), `drain`, `error` and
 * `close` (argument: whether an error caused it); `readyState` is `"open"` until
 * the transport closed.
 *
 * @example
 * ```ts
 * import { PgSocket } from "./pg_socket.ts";
 * const socket = new PgSocket("localhost", 5432);
 * socket.on("close", (hadError) => console.log("closed", hadError));
 * socket.closed(undefined);
 * ```
 */
export class PgSocket {
  /** `"open"` until the transport closed, then `"closed"`. */
  readyState: "open" | "closed" = "open";
  /** Shown by postgres.js in connection error messages. */
  readonly host: string;
  /** Shown by postgres.js in connection error messages. */
  readonly port: number;
  #listeners = new Map<string, Handler[]>();
  #transport: Transport | undefined;
  #pendingCallbacks: Array<() => void> = [];
  #buffer = bufferClass();
  /**
   * How many answers ending in `ReadyForQuery` postgres.js has asked for: its
   * startup message, each simple `Query` and each `Sync` it wrote.
   */
  syncs = 0;
  #outHeader = new Uint8Array(5);
  #outHeaderFill = 0;
  #outRemaining = 0;
  #startupSent = false;
  /** Bytes the driver wrote itself, waiting to go out ahead of postgres.js's next write. */
  #ahead: Uint8Array | undefined;
  #aheadTimer: unknown;
  /** Runs of the check armed by `writeAhead` (see `#aheadCheck`). */
  #aheadHops = 0;

  /**
   * @param host Host name for messages.
   * @param port Port for messages.
   */
  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  /** Attaches the transport the socket writes to. */
  attach(transport: Transport): void {
    this.#transport = transport;
  }

  on(event: string, fn: Handler): this {
    const list = this.#listeners.get(event);
    if (list === undefined) this.#listeners.set(event, [fn]);
    else list.push(fn);
    return this;
  }

  addListener(event: string, fn: Handler): this {
    return this.on(event, fn);
  }

  once(event: string, fn: Handler): this {
    const wrapper: Handler & { listener?: Handler } = (...args: unknown[]): void => {
      this.removeListener(event, wrapper);
      fn(...args);
    };
    wrapper.listener = fn;
    return this.on(event, wrapper);
  }

  removeListener(event: string, fn: Handler): this {
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    const index = list.findIndex((h) => h === fn || (h as { listener?: Handler }).listener === fn);
    if (index !== -1) list.splice(index, 1);
    return this;
  }

  off(event: string, fn: Handler): this {
    return this.removeListener(event, fn);
  }

  removeAllListeners(event?: string): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  emit(event: string, ...args: unknown[]): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    // One listener (postgres.js's `data`) is the usual case: no copy of the list for it.
    if (list.length === 1) list[0]!(...args);
    else for (const fn of [...list]) fn(...args);
    return true;
  }

  /**
   * Sends bytes of the driver's own ahead of whatever postgres.js writes next,
   * in the same write when that comes within this turn of the event loop, else
   * on their own right after it: one send instead of two.
   */
  writeAhead(chunk: Uint8Array): void {
    if (this.readyState !== "open" || this.#transport === undefined) return;
    this.#ahead = this.#ahead === undefined ? chunk : concat(this.#ahead, chunk);
    if (this.#aheadTimer === undefined) {
      this.#aheadHops = 0;
      this.#aheadTimer = later(this.#aheadCheck);
    }
  }

  /**
   * postgres.js writes from a `setImmediate` callback, queued after the one
   * armed here when its statement follows the reset within the same job. So
   * the first run only queues a second one, which runs after postgres.js's
   * write (immediates queued while they run wait for the next turn, in Deno,
   * Bun and Node alike); two immediates cost less than a timer.
   */
  #aheadCheck = (): void => {
    if (++this.#aheadHops < 2) {
      this.#aheadTimer = later(this.#aheadCheck);
      return;
    }
    this.#flushAhead();
  };

  #flushAhead(): void {
    if (this.#aheadTimer !== undefined) cancelLater(this.#aheadTimer);
    this.#aheadTimer = undefined;
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead !== undefined && this.readyState === "open") this.#transport?.write(ahead);
  }

  #takeAhead(chunk: Uint8Array): Uint8Array {
    const ahead = this.#ahead!;
    this.#ahead = undefined;
    cancelLater(this.#aheadTimer);
    this.#aheadTimer = undefined;
    return concat(ahead, chunk);
  }

  /** Writes bytes; `false` means wait for `drain`. `callback` runs once the bytes are flushed. */
  write(chunk: Uint8Array, callback?: (error?: Error) => void): boolean {
    if (this.readyState !== "open" || this.#transport === undefined) {
      if (callback) queueMicrotask(() => callback(new Error("The socket is closed")));
      return false;
    }
    this.#countSyncs(chunk);
    const flushed = this.#transport.write(this.#ahead === undefined ? chunk : this.#takeAhead(chunk));
    if (callback) {
      if (flushed) queueMicrotask(() => callback());
      else this.#pendingCallbacks.push(() => callback());
    }
    return flushed;
  }

  /** Frames postgres.js's outgoing messages (across writes) and counts those answered by `ReadyForQuery`. */
  #countSyncs(chunk: Uint8Array): void {
    let at = 0;
    const length = chunk.length;
    while (at < length) {
      if (this.#outRemaining > 0) {
        const skip = Math.min(this.#outRemaining, length - at);
        this.#outRemaining -= skip;
        at += skip;
        continue;
      }
      // The startup message has no type byte: a 4-byte length comes first.
      const need = this.#startupSent ? 5 : 4;
      let h: Uint8Array;
      let offset: number;
      if (this.#outHeaderFill === 0 && length - at >= need) {
        // The whole header is in this chunk (the usual case): read it where it lies.
        h = chunk;
        offset = at;
        at += need;
      } else {
        while (this.#outHeaderFill < need && at < length) {
          this.#outHeader[this.#outHeaderFill++] = chunk[at++]!;
        }
        if (this.#outHeaderFill < need) return;
        this.#outHeaderFill = 0;
        h = this.#outHeader;
        offset = 0;
      }
      const type = need === 5 ? h[offset]! : 0;
      const sizeAt = offset + need - 4;
      const size = ((h[sizeAt]! << 24) | (h[sizeAt + 1]! << 16) | (h[sizeAt + 2]! << 8) | h[sizeAt + 3]!) >>>
        0;
      this.#outRemaining = Math.max(0, size - 4);
      if (!this.#startupSent) {
        this.#startupSent = true;
        this.syncs++;
      } else if (type === 0x51 || type === 0x53) this.syncs++; // 'Q' or 'S'
    }
  }

  /** Writes an optional last chunk, then closes gracefully. */
  end(chunk?: Uint8Array): void {
    if (this.readyState !== "open" || this.#transport === undefined) return;
    if (this.#ahead !== undefined) this.#flushAhead();
    if (chunk !== undefined) this.#transport.write(chunk);
    this.#transport.end();
  }

  /** Closes now. */
  destroy(): void {
    this.#transport?.destroy();
  }

  pause(): void {
    this.#transport?.pause();
  }

  resume(): void {
    this.#transport?.resume();
  }

  /** Feeds bytes from the transport to postgres.js. */
  deliver(chunk: Uint8Array): void {
    const buffer = this.#buffer;
    this.emit(
      "data",
      buffer.isBuffer(chunk) ? chunk : buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
  }

  /** Signals that the transport flushed after a `write()` returned false. */
  drained(): void {
    const callbacks = this.#pendingCallbacks;
    this.#pendingCallbacks = [];
    for (const callback of callbacks) callback();
    this.emit("drain");
  }

  /** Signals that the transport closed. */
  closed(error: Error | undefined): void {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    if (this.#aheadTimer !== undefined) cancelLater(this.#aheadTimer);
    this.#aheadTimer = undefined;
    this.#ahead = undefined;
    const callbacks = this.#pendingCallbacks;
    this.#pendingCallbacks = [];
    for (const callback of callbacks) callback();
    if (error !== undefined) this.emit("error", error);
    this.emit("close", error !== undefined);
  }
}

/**
 * Runtime-neutral pieces the Deno and Bun adapters share: the write queue,
 * the `SSLRequest` recognition, the errors they raise, and a connect that
 * gives up at once without losing a late connection. No runtime API is used
 * here.
 *
 * @module
 */

import { systemClock } from "../core/clock.ts";
import { ConnectionError } from "../core/errors.ts";
import { Watchdog } from "../core/watchdog.ts";
import type { TransportTarget } from "./transport.ts";

/** Bytes queued above which `write()` asks the caller to wait for `drain`. */
export const WRITE_HIGH_WATER_MARK = 64 * 1024;

/** Largest single buffer the queue hands to the socket at once. */
const MAX_BATCH = 256 * 1024;

/** The 8-byte `SSLRequest` message (length 8, code 80877103). */
const SSL_REQUEST = [0, 0, 0, 8, 4, 210, 22, 47];

/**
 * Tells whether `chunk` is exactly a PostgreSQL `SSLRequest` message.
 *
 * @example
 * ```ts
 * import { isSslRequest } from "./adapter_support.ts";
 * console.log(isSslRequest(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]))); // true
 * ```
 */
export function isSslRequest(chunk: Uint8Array): boolean {
  if (chunk.length !== SSL_REQUEST.length) return false;
  for (let i = 0; i < SSL_REQUEST.length; i++) {
    if (chunk[i] !== SSL_REQUEST[i]) return false;
  }
  return true;
}

/**
 * A FIFO of byte chunks waiting to be written, with a byte count. `take()`
 * joins small chunks so the socket sees fewer, larger writes.
 *
 * @example
 * ```ts
 * import { WriteQueue } from "./adapter_support.ts";
 * const q = new WriteQueue();
 * q.push(new Uint8Array([1, 2]));
 * q.push(new Uint8Array([3]));
 * console.log(q.take()); // Uint8Array [1, 2, 3]
 * ```
 */
export class WriteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True when nothing waits. */
  get empty(): boolean {
    return this.#bytes === 0;
  }

  /** Appends a chunk (empty chunks are ignored). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** Puts bytes back at the front (the unwritten tail of a partial write). */
  unshift(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#head > 0) {
      this.#head--;
      this.#chunks[this.#head] = chunk;
    } else {
      this.#chunks.unshift(chunk);
    }
    this.#bytes += chunk.length;
  }

  /** Removes and returns the next buffer to write, joining small chunks; `undefined` when empty. */
  take(): Uint8Array | undefined {
    if (this.#bytes === 0) return undefined;
    const first = this.#chunks[this.#head]!;
    let count = 1;
    let size = first.length;
    while (this.#head + count < this.#chunks.length) {
      const next = this.#chunks[this.#head + count]!;
      if (size + next.length > MAX_BATCH) break;
      size += next.length;
      count++;
    }
    let out: Uint8Array;
    if (count === 1) {
      out = first;
    } else {
      out = new Uint8Array(size);
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const c = this.#chunks[this.#head + i]!;
        out.set(c, offset);
        offset += c.length;
      }
    }
    for (let i = 0; i < count; i++) this.#chunks[this.#head + i] = EMPTY;
    this.#head += count;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    this.#bytes -= out.length;
    return out;
  }

  /** Drops everything. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Makes a function that runs `run` once, at the end of the current job, however
 * often it is called before: writes made together leave in one batch.
 *
 * @example
 * ```ts
 * import { oncePerMicrotask } from "./adapter_support.ts";
 * const flushSoon = oncePerMicrotask(() => console.log("flush"));
 * flushSoon();
 * flushSoon(); // still one "flush"
 * ```
 */
export function oncePerMicrotask(run: () => void): () => void {
  let scheduled = false;
  const fire = (): void => {
    scheduled = false;
    run();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(fire);
  };
}

/**
 * Describes a target for messages: `host:port` (`[v6]:port`) or the socket path.
 *
 * @example
 * ```ts
 * import { describeTarget } from "./adapter_support.ts";
 * console.log(describeTarget({ kind: "tcp", hostname: "db", port: 5432 })); // db:5432
 * console.log(describeTarget({ kind: "tcp", hostname: "::1", port: 5432 })); // [::1]:5432
 * ```
 */
export function describeTarget(target: TransportTarget): string {
  if (target.kind !== "tcp") return target.path;
  return `${target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname}:${target.port}`;
}

/**
 * Wraps a runtime's connect or I/O failure in a {@linkcode ConnectionError}
 * whose code is the system code when there is one (`ECONNREFUSED`, `ENOENT`,
 * ...), else `fallbackCode`. A `ConnectionError` passes through unchanged.
 *
 * @example
 * ```ts
 * import { toConnectionError } from "./adapter_support.ts";
 * const e = toConnectionError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }), "Cannot connect to db:5432", "CONNECT_FAILED");
 * console.log(e.code); // ECONNREFUSED
 * ```
 */
export function toConnectionError(cause: unknown, context: string, fallbackCode: string): ConnectionError {
  if (cause instanceof ConnectionError) return cause;
  const code = typeof (cause as { code?: unknown })?.code === "string"
    ? (cause as { code: string }).code
    : fallbackCode;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ConnectionError(code, `${context}: ${detail}`, { cause });
}

/**
 * The error for a connect that failed: `Cannot connect to host:port: …`, with
 * the system code (`ECONNREFUSED`, …) when there is one, else `CONNECT_FAILED`.
 *
 * @example
 * ```ts
 * import { connectFailed } from "./adapter_support.ts";
 * console.log(connectFailed({ kind: "tcp", hostname: "db", port: 5432 }, new Error("refused")).message);
 * ```
 */
export function connectFailed(target: TransportTarget, cause: unknown): ConnectionError {
  return toConnectionError(cause, `Cannot connect to ${describeTarget(target)}`, "CONNECT_FAILED");
}

/**
 * The error for a stream the server (or the network) closed.
 *
 * @example
 * ```ts
 * import { connectionLost } from "./adapter_support.ts";
 * console.log(connectionLost({ kind: "unix", path: "/run/pg/.s.PGSQL.5432" }).code); // CONNECTION_LOST
 * ```
 */
export function connectionLost(target: TransportTarget, cause?: unknown): ConnectionError {
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  return new ConnectionError(
    "CONNECTION_LOST",
    `Connection to ${describeTarget(target)} was closed by the server or the network${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The error for a TLS handshake or certificate check that failed. `code` is
 * `TLS_FAILED`; the message names the server and the reason.
 *
 * @example
 * ```ts
 * import { tlsFailed } from "./adapter_support.ts";
 * console.log(tlsFailed("db.local", "certificate has expired").message);
 * ```
 */
export function tlsFailed(servername: string, reason: string, cause?: unknown): ConnectionError {
  return new ConnectionError(
    "TLS_FAILED",
    `TLS handshake with ${servername} failed: ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The error for a TLS verification mode a runtime cannot express. `code` is
 * `TLS_UNSUPPORTED`.
 *
 * @example
 * ```ts
 * import { tlsUnsupported } from "./adapter_support.ts";
 * console.log(tlsUnsupported("Deno", "cannot skip certificate verification").code);
 * ```
 */
export function tlsUnsupported(runtime: string, reason: string): ConnectionError {
  return new ConnectionError("TLS_UNSUPPORTED", `The ${runtime} adapter ${reason}`);
}

/**
 * The reason an aborted signal carries, as something throwable.
 *
 * @example
 * ```ts
 * import { abortReason } from "./adapter_support.ts";
 * const c = new AbortController();
 * c.abort();
 * console.log(abortReason(c.signal) instanceof Error); // true
 * ```
 */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted", "AbortError");
}

/**
 * How long a connect attempt its caller gave up on may still complete (and be
 * closed at once) before the attempt itself is cancelled.
 */
export const ABANDONED_CONNECT_GRACE_MS = 1000;

/**
 * Runs `open`, a connect that takes an `AbortSignal`, so that `signal`
 * rejects the caller at once while the attempt is cancelled only `graceMs`
 * ({@linkcode ABANDONED_CONNECT_GRACE_MS}) later; a connection that completes in
 * between goes to `discard`. For socket APIs whose cancellation can lose a
 * connection completing at that very moment (Deno 2.9's
 * `Deno.connect({ signal })` rejects and never closes it): the window shrinks
 * from every abort to an attempt still unanswered when the grace ends.
 * The grace is an alarm on `watchdog` (default: the system clock's shared one).
 *
 * @example
 * ```ts
 * import { abortableConnect } from "./adapter_support.ts";
 * const port = Number(Deno.env.get("PGPORT") ?? 5432);
 * const conn = await abortableConnect(
 *   (s) => Deno.connect({ hostname: Deno.env.get("PGHOST") ?? "127.0.0.1", port, signal: s }),
 *   AbortSignal.timeout(2000),
 *   (late) => late.close(),
 * );
 * conn.close();
 * ```
 */
export function abortableConnect<T>(
  open: (signal: AbortSignal) => Promise<T>,
  signal: AbortSignal,
  discard: (late: T) => void,
  graceMs: number = ABANDONED_CONNECT_GRACE_MS,
  watchdog: Watchdog = Watchdog.of(systemClock),
): Promise<T> {
  const attempt = new AbortController();
  const pending = open(attempt.signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(abortReason(signal));
      const cancel = watchdog.after(graceMs, () => attempt.abort());
      pending.then((late) => {
        cancel.cancel();
        discard(late);
      }, () => cancel.cancel());
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    }, (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}

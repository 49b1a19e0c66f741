/**
 * The Deno adapter: a {@linkcode Transport} over `Deno.connect` (TCP or unix
 * socket) and `Deno.startTls`. Nothing runs at import time, so the module can
 * be imported (not used) on other runtimes.
 *
 * TLS gaps, because of what `Deno.startTls` accepts (Deno 2.9):
 * - `verify: "none"` (libpq's `require` / `prefer` without a root certificate)
 *   cannot be expressed: there is no per-connection way to skip certificate
 *   verification. {@linkcode Transport.startTls} then rejects with
 *   `TLS_UNSUPPORTED` instead of verifying more than asked.
 * - `ca` certificates are trusted in addition to the default root store, not
 *   instead of it (libpq trusts only `sslrootcert`).
 * - `verify: "ca"` maps to `unsafelyDisableHostnameVerification`.
 * - TCP keepalive can be switched on, but its idle time stays the system's.
 *
 * `Deno.startTls` refuses a connection with a read in flight, so after the
 * 8-byte `SSLRequest` has been written the adapter reads the one-byte answer
 * and then holds further reads until `startTls()` or the next `write()`.
 *
 * @module
 */

import { ConnectionError } from "../errors.ts";
import type {
  Connector,
  ConnectTransportOptions,
  TlsOptions,
  Transport,
  TransportHandlers,
  TransportTarget,
} from "../transport.ts";
import {
  abortReason,
  connectionLost,
  describeTarget,
  isSslRequest,
  tlsFailed,
  tlsUnsupported,
  toConnectionError,
  WRITE_HIGH_WATER_MARK,
  WriteQueue,
} from "./adapter_support.ts";

/** Size of the buffer each read fills. */
const READ_SIZE = 128 * 1024;

type AnyConn = Deno.Conn;

/** The Deno transport; see the module documentation. */
class DenoTransport implements Transport {
  #conn: AnyConn;
  readonly #target: TransportTarget;
  readonly #handlers: TransportHandlers;
  readonly #queue = new WriteQueue();
  /** Bytes handed to the socket by the running flush and not yet confirmed. */
  #inFlight = 0;
  #flushing: Promise<void> | undefined;
  #wantDrain = false;
  #state: "open" | "ending" | "closed" = "open";
  #paused = false;
  /** Reads are held after the answer to an `SSLRequest` arrived. */
  #held = false;
  /** An `SSLRequest` was written and its answer has not arrived yet. */
  #sslPending = false;
  #upgrading = false;
  #reading = false;
  #wake: (() => void) | undefined;
  #kickScheduled = false;

  constructor(conn: AnyConn, target: TransportTarget, handlers: TransportHandlers) {
    this.#conn = conn;
    this.#target = target;
    this.#handlers = handlers;
    void this.#readLoop();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#state !== "open") return false;
    if (this.#held) this.#release();
    if (isSslRequest(chunk)) this.#sslPending = true;
    this.#queue.push(chunk);
    this.#kickSoon();
    if (this.#queue.bytes + this.#inFlight >= WRITE_HIGH_WATER_MARK) {
      this.#wantDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#wakeLoop();
  }

  end(): void {
    if (this.#state !== "open") return;
    this.#state = "ending";
    if (this.#flushing === undefined && this.#queue.empty) this.#close(undefined);
    else this.#kick();
  }

  destroy(): void {
    this.#close(undefined);
  }

  async startTls(options: TlsOptions): Promise<void> {
    if (this.#state !== "open") {
      throw new ConnectionError("CONNECTION_CLOSED", "Cannot start TLS on a closed connection");
    }
    if (this.#target.kind !== "tcp") {
      const error = tlsUnsupported(
        "Deno",
        "cannot start TLS over a unix socket (Deno.startTls takes TCP only)",
      );
      this.#close(error);
      throw error;
    }
    if (options.verify === "none") {
      const error = tlsUnsupported(
        "Deno",
        "cannot encrypt without verifying the server certificate (Deno.startTls has no such option): " +
          "use sslmode verify-ca or verify-full with sslrootcert, or the node:net adapter",
      );
      this.#close(error);
      throw error;
    }
    if (this.#reading) {
      const error = new ConnectionError(
        "TLS_UNSUPPORTED",
        "Cannot start TLS while a read is pending: write the SSLRequest as one chunk and wait for its answer",
      );
      this.#close(error);
      throw error;
    }
    this.#upgrading = true;
    await this.#flushing;
    if (this.#isClosed()) {
      throw new ConnectionError("CONNECTION_CLOSED", "The connection closed before TLS started");
    }
    try {
      const tls = await Deno.startTls(this.#conn as Deno.TcpConn, {
        hostname: options.servername,
        caCerts: options.ca,
        unsafelyDisableHostnameVerification: options.verify === "ca",
      });
      this.#conn = tls;
      await tls.handshake();
    } catch (cause) {
      const error = tlsFailed(
        options.servername,
        cause instanceof Error ? cause.message : String(cause),
        cause,
      );
      this.#close(error);
      throw error;
    }
    if (this.#isClosed()) {
      throw new ConnectionError("CONNECTION_CLOSED", "The connection closed while TLS started");
    }
    this.#upgrading = false;
    this.#release();
    this.#kick();
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #release(): void {
    this.#held = false;
    this.#wakeLoop();
  }

  #wakeLoop(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #sleep(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  async #readLoop(): Promise<void> {
    let buffer = new Uint8Array(READ_SIZE);
    while (!this.#isClosed()) {
      if (this.#paused || this.#held || this.#upgrading) {
        await this.#sleep();
        continue;
      }
      const conn = this.#conn;
      let n: number | null;
      this.#reading = true;
      try {
        n = await conn.read(buffer);
      } catch (cause) {
        this.#reading = false;
        if (!this.#isClosed()) {
          this.#close(connectionLost(this.#target, cause));
        }
        return;
      }
      this.#reading = false;
      if (this.#isClosed()) return;
      if (n === null) {
        this.#close(this.#state === "ending" ? undefined : connectionLost(this.#target));
        return;
      }
      if (this.#sslPending) {
        this.#sslPending = false;
        this.#held = true;
      }
      // A mostly full buffer is handed over as is (no copy); a small read is copied out.
      let chunk: Uint8Array;
      if (n >= READ_SIZE / 2) {
        chunk = buffer.subarray(0, n);
        buffer = new Uint8Array(READ_SIZE);
      } else {
        chunk = buffer.slice(0, n);
      }
      while (this.#paused && !this.#isClosed()) await this.#sleep();
      if (this.#isClosed()) return;
      try {
        this.#handlers.data(chunk);
      } catch (cause) {
        this.#close(cause instanceof Error ? cause : new Error(String(cause)));
        return;
      }
    }
  }

  #kick(): void {
    if (this.#flushing !== undefined || this.#upgrading || this.#isClosed()) return;
    if (this.#queue.empty) return;
    this.#flushing = this.#flush();
  }

  /** Flushes at the end of the current job, so writes made together leave in one batch. */
  #kickSoon(): void {
    if (this.#kickScheduled) return;
    this.#kickScheduled = true;
    queueMicrotask(() => {
      this.#kickScheduled = false;
      this.#kick();
    });
  }

  async #flush(): Promise<void> {
    try {
      while (!this.#upgrading) {
        const buffer = this.#queue.take();
        if (buffer === undefined) break;
        this.#inFlight = buffer.length;
        let offset = 0;
        while (offset < buffer.length) {
          offset += await this.#conn.write(offset === 0 ? buffer : buffer.subarray(offset));
          if (this.#isClosed()) return;
        }
        this.#inFlight = 0;
      }
    } catch (cause) {
      if (!this.#isClosed()) {
        this.#close(
          toConnectionError(cause, `Cannot write to ${describeTarget(this.#target)}`, "CONNECTION_LOST"),
        );
      }
      return;
    } finally {
      this.#inFlight = 0;
      this.#flushing = undefined;
    }
    if (this.#upgrading || !this.#queue.empty) return;
    if (this.#state === "ending") {
      this.#close(undefined);
      return;
    }
    if (this.#wantDrain) {
      this.#wantDrain = false;
      this.#handlers.drain();
    }
  }

  #close(error: Error | undefined): void {
    if (this.#isClosed()) return;
    this.#state = "closed";
    this.#queue.clear();
    try {
      this.#conn.close();
    } catch {
      // Already closed, or consumed by a failed Deno.startTls.
    }
    this.#wakeLoop();
    queueMicrotask(() => this.#handlers.close(error));
  }
}

async function connectDeno(
  target: TransportTarget,
  handlers: TransportHandlers,
  options: ConnectTransportOptions,
): Promise<Transport> {
  const signal = options.signal;
  if (signal?.aborted) throw abortReason(signal);
  let conn: AnyConn;
  try {
    conn = target.kind === "tcp"
      ? await Deno.connect({ hostname: target.hostname, port: target.port, signal })
      : await Deno.connect({ transport: "unix", path: target.path });
  } catch (cause) {
    if (signal?.aborted) throw abortReason(signal);
    throw toConnectionError(cause, `Cannot connect to ${describeTarget(target)}`, "CONNECT_FAILED");
  }
  if (signal?.aborted) {
    conn.close();
    throw abortReason(signal);
  }
  if (target.kind === "tcp") {
    const tcp = conn as Deno.TcpConn;
    tcp.setNoDelay(true);
    tcp.setKeepAlive((options.keepAlive ?? 0) > 0);
  }
  return new DenoTransport(conn, target, handlers);
}

/**
 * Opens a {@linkcode Transport} with Deno's own socket API. Use it only when
 * running on Deno.
 *
 * @example
 * ```ts ignore
 * import { denoConnector } from "./deno.ts";
 * const transport = await denoConnector(
 *   { kind: "tcp", hostname: "127.0.0.1", port: 5432 },
 *   { data: (chunk) => console.log(chunk.length), drain: () => {}, close: (e) => console.log("closed", e) },
 *   { keepAlive: 60 },
 * );
 * transport.end();
 * ```
 */
export const denoConnector: Connector = connectDeno;

/**
 * The Deno adapter: a {@linkcode Transport} over `Deno.connect` (TCP or unix
 * socket) and `Deno.startTls`. Nothing runs at import time, so the module can
 * be imported (not used) on other runtimes.
 *
 TLS, and what `Deno.startTls` (Deno 2.9) can and cannot express:
 * - `verify: "full"` and `"ca"` use `Deno.startTls` (rustls); `"ca"` maps to
 *   `unsafelyDisableHostnameVerification`. Per Deno's documentation, `ca`
 *   certificates are trusted in addition to the default root store, not
 *   instead of it (libpq trusts only `sslrootcert`).
 * - `verify: "none"` (libpq's `require` / `prefer` without a root
 *   certificate) has no per-connection `Deno.startTls` option, so it runs
 *   `node:tls` (`rejectUnauthorized: false`) over this adapter's own byte
 *   stream instead: encrypted, unverified, as libpq does. Slower than the
 *   native path, and only used for that mode.
 * - TCP keepalive can be switched on, but its idle time stays the system's.
 *
 * `Deno.startTls` refuses a connection with a read in flight, so after the
 * 8-byte `SSLRequest` has been written the adapter reads the one-byte answer
 * and then holds further reads until `startTls()` or the next `write()`.
 *
 * @module
 */

import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { ConnectionError } from "../core/errors.ts";
import type { Connector, TlsOptions, Transport, TransportHandlers, TransportTarget } from "./transport.ts";
import {
  abortableConnect,
  abortReason,
  connectFailed,
  connectionLost,
  describeTarget,
  isSslRequest,
  oncePerMicrotask,
  tlsFailed,
  tlsUnsupported,
  toConnectionError,
  WRITE_HIGH_WATER_MARK,
  WriteQueue,
} from "./adapter_support.ts";
import { nextTurn, ReadTurns } from "./read_turns.ts";

const performanceNow = (): number => performance.now();

/** Size of the buffer each read fills. */
const READ_SIZE = 128 * 1024;
/** What one read returns at most once TLS runs (measured on Deno 2.9, `Deno.startTls` and node:tls alike). */
const TLS_FULL_READ = 8 * 1024;

type AnyConn = Deno.Conn;

/** The Deno transport; see the module documentation. */
class DenoTransport implements Transport {
  #conn: AnyConn;
  readonly #target: TransportTarget;
  readonly #handlers: TransportHandlers;
  readonly #queue = new WriteQueue();
  /** When a long stream of reads lets the event loop round (see read_turns.ts). */
  readonly #turns = new ReadTurns(performanceNow);
  /** Bytes from which a read counts as full (more is probably waiting): TLS reads stop at 8 KB. */
  #fullRead = READ_SIZE / 2;
  /** Bytes handed to the socket by the running flush and not yet confirmed. */
  #inFlight = 0;
  #flushing: Promise<void> | undefined;
  #wantDrain = false;
  #state: "open" | "ending" | "closed" = "open";
  #paused = false;
  /** Whether the socket keeps the process alive (`ref`); carried over to a TLS upgrade. */
  #refd = true;
  /** Reads are held after the answer to an `SSLRequest` arrived. */
  #held = false;
  /** An `SSLRequest` was written and its answer has not arrived yet. */
  #sslPending = false;
  #upgrading = false;
  #reading = false;
  #wake: (() => void) | undefined;
  /** Flushes at the end of the current job, so writes made together leave in one batch. */
  readonly #kickSoon = oncePerMicrotask(() => this.#kick());
  /** `node:tls` over this stream, for `verify: "none"`; `undefined` otherwise. */
  #nodeTls: { socket: TLSSocket; cipher: Duplex } | undefined;
  /** The `node:tls` layer does not take more ciphertext for now. */
  #cipherBlocked = false;
  /** Callbacks of ciphertext writes, run once the queue is flushed. */
  #cipherWritten: (() => void)[] = [];
  /** `end()` was called while `node:tls` is in use; the layer closes the stream when it is done. */
  #tlsEnding = false;

  constructor(conn: AnyConn, target: TransportTarget, handlers: TransportHandlers) {
    this.#conn = conn;
    this.#target = target;
    this.#handlers = handlers;
    void this.#readLoop();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#state !== "open" || this.#tlsEnding) return false;
    this.#turns.wrote();
    if (this.#nodeTls !== undefined) return this.#nodeTls.socket.write(chunk);
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
    this.#nodeTls?.socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#nodeTls?.socket.resume();
    this.#wakeLoop();
  }

  end(): void {
    if (this.#state !== "open" || this.#tlsEnding) return;
    if (this.#nodeTls !== undefined) {
      // close_notify and any pending ciphertext go out first; the layer's `final` then ends the stream.
      this.#tlsEnding = true;
      this.#nodeTls.socket.end();
      return;
    }
    this.#state = "ending";
    if (this.#flushing === undefined && this.#queue.empty) this.#close(undefined);
    else this.#kick();
  }

  destroy(): void {
    this.#close(undefined);
  }

  ref(): void {
    if (this.#refd) return;
    this.#refd = true;
    if (!this.#isClosed()) this.#conn.ref();
  }

  unref(): void {
    if (!this.#refd) return;
    this.#refd = false;
    if (!this.#isClosed()) this.#conn.unref(); // the pending read no longer keeps the event loop alive
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
    if (options.verify === "none") return await this.#startNodeTls(options);
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
      this.#fullRead = TLS_FULL_READ;
      if (!this.#refd) tls.unref();
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

  /** `verify: "none"`: `node:tls` without certificate checks, fed by this stream's bytes. */
  async #startNodeTls(options: TlsOptions): Promise<void> {
    const [{ connect }, { Duplex }] = await Promise.all([
      import("node:tls"),
      import("node:stream"),
    ]);
    if (this.#isClosed()) {
      throw new ConnectionError("CONNECTION_CLOSED", "The connection closed before TLS started");
    }
    const cipher = new Duplex({
      read: () => {
        this.#cipherBlocked = false;
        this.#wakeLoop();
      },
      write: (chunk: Uint8Array, _encoding: string, callback: (error?: Error | null) => void) => {
        if (this.#isClosed()) return callback(new Error("The connection is closed"));
        if (chunk.length === 0) return callback();
        this.#queue.push(chunk);
        this.#cipherWritten.push(() => callback());
        this.#kickSoon();
      },
      final: (callback: (error?: Error | null) => void) => {
        callback();
        this.#endPlain();
      },
    });
    const servername = options.servername;
    const socket = connect({
      socket: cipher,
      servername: isIpAddress(servername) ? undefined : servername,
      ca: options.ca,
      rejectUnauthorized: false,
    });
    this.#nodeTls = { socket, cipher };
    this.#fullRead = TLS_FULL_READ;
    if (this.#paused) socket.pause();
    this.#release();
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("secureConnect", resolve);
        socket.once("error", reject);
        socket.once("close", () => reject(new Error("the server closed the connection")));
      });
    } catch (cause) {
      const error = tlsFailed(servername, cause instanceof Error ? cause.message : String(cause), cause);
      this.#close(error);
      throw error;
    }
    socket.removeAllListeners();
    socket.on("data", (chunk: Uint8Array) => this.#deliver(chunk));
    socket.on("drain", () => {
      if (!this.#isClosed()) this.#handlers.drain();
    });
    socket.on(
      "error",
      (cause: Error) => this.#close(this.#ending() ? undefined : connectionLost(this.#target, cause)),
    );
    socket.on("close", () => this.#close(this.#ending() ? undefined : connectionLost(this.#target)));
    if (this.#isClosed()) {
      throw new ConnectionError("CONNECTION_CLOSED", "The connection closed while TLS started");
    }
  }

  /** Ends the byte stream itself: flush, then close. */
  #endPlain(): void {
    if (this.#state !== "open") return;
    this.#state = "ending";
    if (this.#flushing === undefined && this.#queue.empty) this.#close(undefined);
    else this.#kick();
  }

  #deliver(chunk: Uint8Array): boolean {
    if (this.#isClosed()) return false;
    try {
      this.#handlers.data(chunk);
      return true;
    } catch (cause) {
      this.#close(cause instanceof Error ? cause : new Error(String(cause)));
      return false;
    }
  }

  /** Whether `end()` was called: a close from now on is the one asked for, not an error. */
  #ending(): boolean {
    return this.#state === "ending" || this.#tlsEnding;
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
      const tls = this.#nodeTls;
      // Paused means no reading at all, also under node:tls (which would otherwise decrypt into memory).
      if (this.#paused || this.#held || this.#upgrading || this.#cipherBlocked) {
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
        if (!this.#isClosed()) this.#close(this.#ending() ? undefined : connectionLost(this.#target, cause));
        return;
      }
      this.#reading = false;
      if (this.#isClosed()) return;
      if (n === null) {
        this.#close(this.#ending() ? undefined : connectionLost(this.#target));
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
      if (tls !== undefined) {
        // Ciphertext for node:tls; its read() callback lifts the block.
        if (!tls.cipher.push(chunk)) this.#cipherBlocked = true;
        if (this.#turns.afterRead(n >= this.#fullRead)) await nextTurn();
        continue;
      }
      while (this.#paused && !this.#isClosed()) await this.#sleep();
      if (!this.#deliver(chunk)) return;
      // A long stream of full reads lets the event loop see the other sockets now and then.
      if (this.#turns.afterRead(n >= this.#fullRead)) await nextTurn();
    }
  }

  #kick(): void {
    if (this.#flushing !== undefined || this.#upgrading || this.#isClosed()) return;
    if (this.#queue.empty) return;
    this.#flushing = this.#flush();
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
          this.#ending()
            ? undefined
            : toConnectionError(cause, `Cannot write to ${describeTarget(this.#target)}`, "CONNECTION_LOST"),
        );
      }
      return;
    } finally {
      this.#inFlight = 0;
      this.#flushing = undefined;
    }
    if (this.#upgrading || !this.#queue.empty) return;
    if (this.#cipherWritten.length > 0) {
      const callbacks = this.#cipherWritten;
      this.#cipherWritten = [];
      for (const callback of callbacks) callback();
    }
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
    this.#turns.closed();
    this.#queue.clear();
    this.#cipherWritten = [];
    const tls = this.#nodeTls;
    if (tls !== undefined) {
      tls.socket.removeAllListeners();
      tls.socket.on("error", () => {});
      tls.socket.destroy();
    }
    try {
      this.#conn.close();
    } catch {
      // Already closed, or consumed by a failed Deno.startTls.
    }
    this.#wakeLoop();
    queueMicrotask(() => this.#handlers.close(error));
  }
}

/** Whether `host` is an IPv4 or IPv6 literal (TLS SNI must not carry one). */
function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/**
 * Opens a {@linkcode Transport} with Deno's own socket API. Use it only when
 * running on Deno.
 *
 * @example
 * ```ts
 * import { denoConnector } from "./deno.ts";
 * const transport = await denoConnector(
 *   { kind: "tcp", hostname: Deno.env.get("PGHOST") ?? "127.0.0.1", port: Number(Deno.env.get("PGPORT") ?? 5432) },
 *   { data: (chunk) => console.log(chunk.length), drain: () => {}, close: (e) => console.log("closed", e) },
 *   { keepAlive: 60 },
 * );
 * transport.end();
 * ```
 */
export const denoConnector: Connector = async (target, handlers, options) => {
  const signal = options.signal;
  if (signal?.aborted) throw abortReason(signal);
  let conn: AnyConn;
  try {
    if (target.kind === "unix") conn = await Deno.connect({ transport: "unix", path: target.path });
    else if (signal === undefined) {
      conn = await Deno.connect({ hostname: target.hostname, port: target.port });
    } else {
      // Not Deno.connect({ signal }) directly: it loses a connection that completes as the signal aborts.
      conn = await abortableConnect(
        (s) => Deno.connect({ hostname: target.hostname, port: target.port, signal: s }),
        signal,
        (late) => late.close(),
      );
    }
  } catch (cause) {
    if (signal?.aborted) throw abortReason(signal);
    throw connectFailed(target, cause);
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
};

/**
 * Lets a timer of Deno's global `setTimeout` not keep the process alive
 * (`Deno.unrefTimer`); the entry points install it for the pool's timers.
 *
 * @example
 * ```ts
 * import { denoTimerUnref } from "./deno.ts";
 * const id = setTimeout(() => console.log("does not keep the process alive"), 60_000);
 * denoTimerUnref(id);
 * clearTimeout(id);
 * ```
 */
export const denoTimerUnref = (handle: unknown): void => Deno.unrefTimer(handle as number);

/**
 * The Bun adapter: a {@linkcode Transport} over `Bun.connect` (TCP or unix
 * socket) and `socket.upgradeTLS`. Bun's globals are described by the minimal
 * structural types below, so this file type-checks without Bun's types.
 * Nothing runs at import time.
 *
 * TLS verification modes map to Bun's TLS options: `full` sets
 * `rejectUnauthorized` (Bun checks the chain and the host name); `ca` and
 * `none` turn it off and decide in the handshake callback: `ca` accepts only a
 * verified chain whose sole problem is the host name, `none` accepts any
 * certificate. PEM `ca` replaces the default root store, as in libpq.
 *
 * @module
 */

import { ConnectionError } from "../core/errors.ts";
import type { Connector, TlsOptions, Transport, TransportHandlers, TransportTarget } from "./transport.ts";
import {
  abortReason,
  connectFailed,
  connectionLost,
  oncePerMicrotask,
  tlsFailed,
  tlsUnsupported,
  toConnectionError,
  WRITE_HIGH_WATER_MARK,
  WriteQueue,
} from "./adapter_support.ts";

/** The part of Bun's socket this adapter uses. */
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
  setKeepAlive(enable?: boolean, initialDelayMs?: number): boolean;
  ref(): void;
  unref(): void;
  upgradeTLS(options: { tls: BunTlsOptions; socket: BunSocketHandler }): [BunSocket, BunSocket];
}

/** The part of Bun's TLS options this adapter uses. */
interface BunTlsOptions {
  serverName?: string;
  ca?: string[];
  rejectUnauthorized?: boolean;
}

/** The part of Bun's socket handler this adapter uses. */
interface BunSocketHandler {
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  end?(socket: BunSocket): void;
  error?(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
  handshake?(socket: BunSocket, success: boolean, authorizationError: Error | null): void;
}

declare const Bun: {
  connect(
    options: ({ hostname: string; port: number } | { unix: string }) & { socket: BunSocketHandler },
  ): Promise<BunSocket>;
};

/** Bun's code for a certificate whose names do not match the server name. */
const ALTNAME_INVALID = "ERR_TLS_CERT_ALTNAME_INVALID";

/** The Bun transport; see the module documentation. */
class BunTransport implements Transport {
  #socket: BunSocket | undefined;
  readonly #target: TransportTarget;
  readonly #handlers: TransportHandlers;
  readonly #queue = new WriteQueue();
  #wantDrain = false;
  #state: "open" | "ending" | "closed" = "open";
  #paused = false;
  /** Whether the socket keeps the process alive (`ref`); carried over to a TLS upgrade. */
  #refd = true;
  /** Chunks that arrived while paused. */
  #pending: Uint8Array[] = [];
  #upgrading = false;
  /** Flushes at the end of the current job, so writes made together leave in one syscall. */
  readonly #flushSoon = oncePerMicrotask(() => this.#flush());

  constructor(target: TransportTarget, handlers: TransportHandlers) {
    this.#target = target;
    this.#handlers = handlers;
  }

  /** Socket callbacks for the plain socket; after a TLS upgrade they fall silent. */
  plainHandlers(): BunSocketHandler {
    return {
      data: (socket, data) => {
        if (socket === this.#socket || this.#socket === undefined) this.#onData(data);
      },
      drain: (socket) => {
        if (socket === this.#socket) this.#flush();
      },
      close: (socket, error) => {
        if (socket === this.#socket || this.#socket === undefined) this.#onClose(error);
      },
      error: (socket, error) => {
        if (socket === this.#socket) this.#close(toConnectionError(error, "Socket error", "CONNECTION_LOST"));
      },
    };
  }

  /** Forgets a socket whose connect failed or was aborted: no callback reaches the caller. */
  discard(): void {
    this.#state = "closed";
  }

  /** Called once `Bun.connect` resolved. */
  attach(socket: BunSocket, keepAlive: number): void {
    this.#socket = socket;
    if (this.#target.kind === "tcp") {
      socket.setNoDelay(true);
      socket.setKeepAlive(keepAlive > 0, keepAlive * 1000);
    }
    if (this.#state === "closed") socket.terminate();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#state !== "open") return false;
    this.#queue.push(chunk);
    this.#flushSoon();
    if (this.#queue.bytes >= WRITE_HIGH_WATER_MARK) {
      this.#wantDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    while (this.#pending.length > 0 && !this.#paused && this.#state !== "closed") {
      this.#deliver(this.#pending.shift()!);
    }
    if (!this.#paused) this.#socket?.resume();
  }

  end(): void {
    if (this.#state !== "open") return;
    this.#state = "ending";
    this.#flush();
  }

  destroy(): void {
    this.#close(undefined);
  }

  ref(): void {
    if (this.#refd) return;
    this.#refd = true;
    if (this.#state !== "closed") this.#socket?.ref();
  }

  unref(): void {
    if (!this.#refd) return;
    this.#refd = false;
    if (this.#state !== "closed") this.#socket?.unref();
  }

  startTls(options: TlsOptions): Promise<void> {
    const socket = this.#socket;
    if (this.#state !== "open" || socket === undefined) {
      return Promise.reject(
        new ConnectionError("CONNECTION_CLOSED", "Cannot start TLS on a closed connection"),
      );
    }
    if (this.#target.kind !== "tcp") {
      const error = tlsUnsupported("Bun", "does not start TLS over a unix socket");
      this.#close(error);
      return Promise.reject(error);
    }
    this.#upgrading = true;
    const tls: BunTlsOptions = {
      serverName: options.servername,
      rejectUnauthorized: options.verify === "full",
    };
    if (options.ca !== undefined) tls.ca = options.ca;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error: ConnectionError | undefined): void => {
        if (settled) return;
        settled = true;
        if (error !== undefined) {
          this.#close(error);
          reject(error);
          return;
        }
        this.#upgrading = false;
        this.#flush();
        resolve();
      };
      const handlers: BunSocketHandler = {
        handshake: (_socket, success, authorizationError) => {
          const problem = verificationProblem(options.verify, success, authorizationError);
          settle(
            problem === undefined ? undefined : tlsFailed(options.servername, problem, authorizationError),
          );
        },
        data: (s, data) => {
          if (s === this.#socket) this.#onData(data);
        },
        drain: (s) => {
          if (s === this.#socket) this.#flush();
        },
        close: (s, error) => {
          if (s !== this.#socket) return;
          if (!settled) {
            settle(
              tlsFailed(options.servername, error?.message ?? "the server closed the connection", error),
            );
          }
          this.#onClose(error);
        },
        error: (s, error) => {
          if (s !== this.#socket) return;
          const wrapped = tlsFailed(options.servername, error.message, error);
          if (!settled) settle(wrapped);
          else this.#close(wrapped);
        },
      };
      try {
        const [, upgraded] = socket.upgradeTLS({ tls, socket: handlers });
        this.#socket = upgraded;
        if (this.#paused) upgraded.pause();
        if (!this.#refd) upgraded.unref();
      } catch (cause) {
        settle(tlsFailed(options.servername, cause instanceof Error ? cause.message : String(cause), cause));
      }
    });
  }

  #onData(data: Uint8Array): void {
    if (this.#state === "closed") return;
    if (this.#paused || this.#pending.length > 0) {
      this.#pending.push(data);
      return;
    }
    this.#deliver(data);
  }

  #deliver(data: Uint8Array): void {
    try {
      this.#handlers.data(data);
    } catch (cause) {
      this.#close(cause instanceof Error ? cause : new Error(String(cause)));
    }
  }

  #onClose(error: Error | undefined): void {
    if (this.#state === "closed") return;
    if (this.#state === "ending") {
      // After end(), the server closing (even with a reset once it read Terminate) is the close asked for.
      this.#close(undefined);
      return;
    }
    this.#close(connectionLost(this.#target, error));
  }

  #flush(): void {
    const socket = this.#socket;
    if (socket === undefined || this.#upgrading || this.#state === "closed") return;
    while (true) {
      const buffer = this.#queue.take();
      if (buffer === undefined) break;
      const written = socket.write(buffer);
      if (written < buffer.length) {
        this.#queue.unshift(written > 0 ? buffer.subarray(written) : buffer);
        return;
      }
    }
    if (this.#state === "ending") {
      socket.end();
      return;
    }
    if (this.#wantDrain) {
      this.#wantDrain = false;
      this.#handlers.drain();
    }
  }

  #close(error: Error | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#queue.clear();
    this.#pending = [];
    try {
      this.#socket?.terminate();
    } catch {
      // Already gone.
    }
    queueMicrotask(() => this.#handlers.close(error));
  }
}

/** Why a finished TLS handshake does not satisfy `verify`, or undefined when it does. */
function verificationProblem(
  verify: TlsOptions["verify"],
  success: boolean,
  authorizationError: Error | null,
): string | undefined {
  if (verify === "none") return undefined;
  if (authorizationError === null || authorizationError === undefined) {
    return success || verify === "ca" ? undefined : "the certificate was not accepted";
  }
  const code = (authorizationError as { code?: unknown }).code;
  if (verify === "ca" && code === ALTNAME_INVALID) return undefined;
  return `certificate verification failed (${
    typeof code === "string" ? `${code}: ` : ""
  }${authorizationError.message})`;
}

/**
 * Opens a {@linkcode Transport} with Bun's own socket API. Use it only when
 * running on Bun.
 *
 * @example Not run by `deno test --doc`: it needs Bun
 * ```ts ignore
 * import { bunConnector } from "./bun.ts";
 * const transport = await bunConnector(
 *   { kind: "tcp", hostname: "127.0.0.1", port: 5432 },
 *   { data: (chunk) => console.log(chunk.length), drain: () => {}, close: (e) => console.log("closed", e) },
 *   { keepAlive: 60 },
 * );
 * transport.end();
 * ```
 */
export const bunConnector: Connector = async (target, handlers, options) => {
  const signal = options.signal;
  if (signal?.aborted) throw abortReason(signal);
  const transport = new BunTransport(target, handlers);
  const socketHandlers = transport.plainHandlers();
  const address = target.kind === "tcp"
    ? { hostname: target.hostname, port: target.port }
    : { unix: target.path };
  const connecting = Bun.connect({ ...address, socket: socketHandlers });
  let socket: BunSocket;
  if (signal === undefined) {
    try {
      socket = await connecting;
    } catch (cause) {
      transport.discard();
      throw connectFailed(target, cause);
    }
  } else {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortReason(signal));
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      socket = await Promise.race([connecting, aborted]);
    } catch (cause) {
      transport.discard();
      if (signal.aborted) {
        // The half-open socket is closed as soon as it exists.
        connecting.then((late) => late.terminate(), () => {});
        throw abortReason(signal);
      }
      throw connectFailed(target, cause);
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
  }
  transport.attach(socket, options.keepAlive ?? 0);
  return transport;
};

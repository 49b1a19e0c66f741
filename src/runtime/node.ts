/**
 * The Node.js runtime adapter: a {@linkcode Connector} over `node:net` and
 * `node:tls`. It is the default where neither Deno nor Bun is detected, and
 * works in Deno and Bun as well through their Node compatibility.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import type {
  Connector,
  ConnectTransportOptions,
  TlsOptions,
  Transport,
  TransportHandlers,
  TransportTarget,
} from "./transport.ts";
import { describeTarget } from "./adapter_support.ts";

/** An error carrying a network code, as Node reports them (`ECONNREFUSED`, ...). */
type CodedError = Error & { code?: string };

class NodeTransport implements Transport {
  #socket: net.Socket;
  #handlers: TransportHandlers;
  #local = false;
  #closed = false;
  /** Whether the socket keeps the process alive (`ref`); carried over to a TLS upgrade. */
  #refd = true;
  #error: Error | undefined;
  #target: TransportTarget;

  constructor(socket: net.Socket, handlers: TransportHandlers, target: TransportTarget) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#target = target;
    this.#attach(socket);
  }

  #onData = (chunk: Uint8Array): void => this.#handlers.data(chunk);
  #onDrain = (): void => this.#handlers.drain();
  #onError = (error: Error): void => {
    this.#error ??= error;
  };
  #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#local) return this.#handlers.close(undefined);
    const error: CodedError = this.#error ??
      Object.assign(new Error(`The server closed the connection to ${describeTarget(this.#target)}`), {
        code: "CONNECTION_LOST",
      });
    this.#handlers.close(error);
  };

  #attach(socket: net.Socket): void {
    socket.on("data", this.#onData);
    socket.on("drain", this.#onDrain);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  #detach(socket: net.Socket): void {
    socket.off("data", this.#onData);
    socket.off("drain", this.#onDrain);
    socket.off("error", this.#onError);
    socket.off("close", this.#onClose);
  }

  write(chunk: Uint8Array): boolean {
    return this.#socket.write(chunk);
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  end(): void {
    this.#local = true;
    this.#socket.end();
  }

  destroy(): void {
    this.#local = true;
    this.#socket.destroy();
  }

  ref(): void {
    this.#refd = true;
    this.#socket.ref();
  }

  unref(): void {
    this.#refd = false;
    this.#socket.unref();
  }

  startTls(options: TlsOptions): Promise<void> {
    const raw = this.#socket;
    this.#detach(raw);
    return new Promise<void>((resolve, reject) => {
      const { servername, verify } = options;
      const secure = tls.connect({
        socket: raw,
        servername: net.isIP(servername) ? undefined : servername,
        ca: options.ca,
        rejectUnauthorized: verify !== "none",
        checkServerIdentity: (_host: string, cert: tls.PeerCertificate): Error | undefined =>
          verify === "full" ? tls.checkServerIdentity(servername, cert) : undefined,
      });
      const onError = (error: Error): void => {
        secure.off("secureConnect", onSecure);
        this.#detach(secure);
        secure.destroy();
        raw.destroy();
        reject(error);
      };
      const onSecure = (): void => {
        secure.off("error", onError);
        this.#socket = secure;
        if (!this.#refd) secure.unref();
        this.#attach(secure);
        resolve();
      };
      secure.once("error", onError);
      secure.once("secureConnect", onSecure);
    });
  }
}

/**
 * Opens TCP or unix-socket connections with `node:net`, upgrading to TLS with
 * `node:tls`. TCP sockets get `noDelay` and, when asked, keepalive.
 *
 * @example Open a raw transport
 * ```ts
 * import process from "node:process";
 * import { nodeConnector } from "./node.ts";
 * const transport = await nodeConnector(
 *   { kind: "tcp", hostname: process.env.PGHOST ?? "127.0.0.1", port: Number(process.env.PGPORT ?? 5432) },
 *   { data: (chunk) => console.log(chunk.length), drain: () => {}, close: () => {} },
 *   {},
 * );
 * transport.destroy();
 * ```
 */
export const nodeConnector: Connector = (
  target: TransportTarget,
  handlers: TransportHandlers,
  options: ConnectTransportOptions,
): Promise<Transport> => {
  const { signal, keepAlive = 0 } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<Transport>((resolve, reject) => {
    const socket = target.kind === "tcp"
      ? net.connect({ host: target.hostname, port: target.port })
      : net.connect({ path: target.path });
    const cleanup = (): void => {
      socket.off("connect", onConnect);
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const onConnect = (): void => {
      cleanup();
      if (target.kind === "tcp") {
        socket.setNoDelay(true);
        if (keepAlive > 0) socket.setKeepAlive(true, keepAlive * 1000);
      }
      resolve(new NodeTransport(socket, handlers, target));
    };
    const onError = (error: CodedError): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(signal?.reason);
    };
    socket.once("connect", onConnect);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
};

/**
 * The byte stream a runtime adapter supplies. Adapters (`src/runtime/*.ts`) are
 * thin: they open a TCP or unix socket, move bytes, and upgrade to TLS when
 * asked. Everything PostgreSQL-specific (the `SSLRequest` exchange, message
 * framing, the socket shape postgres.js expects) lives in runtime-neutral code.
 *
 * @module
 */

/** Where to connect. */
export type TransportTarget =
  | { kind: "tcp"; hostname: string; port: number }
  | { kind: "unix"; path: string };

/** Callbacks an adapter calls. Set before any byte is read. */
export interface TransportHandlers {
  /** Bytes arrived. The chunk is owned by the receiver. */
  data(chunk: Uint8Array): void;
  /** A `write()` that returned false has been flushed. */
  drain(): void;
  /** The stream closed; `error` is set when it did not close on our own `end()`/`destroy()`. Called once. */
  close(error?: Error): void;
}

/** What {@linkcode Transport.startTls} needs. */
export interface TlsOptions {
  /** Server name for SNI and, with `verify: "full"`, for the certificate check. */
  servername: string;
  /** PEM CA certificates to trust instead of the system store. */
  ca?: string[];
  /** `none`: encrypt only; `ca`: the chain must verify; `full`: chain and host name must verify. */
  verify: "none" | "ca" | "full";
}

/** An open byte stream. */
export interface Transport {
  /** Queues bytes. Returns false when the caller should wait for `drain`. */
  write(chunk: Uint8Array): boolean;
  /** Stops delivering `data` until {@linkcode Transport.resume}. */
  pause(): void;
  /** Resumes delivering `data`. */
  resume(): void;
  /** Flushes queued bytes, then closes. `close` follows. */
  end(): void;
  /** Closes now, dropping queued bytes. `close` follows. */
  destroy(): void;
  /** Lets the open socket keep the process alive again (the default). Survives a TLS upgrade. */
  ref(): void;
  /**
   * Lets the process exit while this socket is open and idle (the pool's idle
   * connections). Survives a TLS upgrade.
   */
  unref(): void;
  /**
   * Upgrades this stream to TLS in place (after the server accepted an
   * `SSLRequest`). Handlers carry over. Rejects when the handshake or the
   * verification fails.
   */
  startTls(options: TlsOptions): Promise<void>;
}

/** Options for opening a transport. */
export interface ConnectTransportOptions {
  /** Aborting closes the half-open socket and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** TCP keepalive (seconds of idle before probes); 0 disables. */
  keepAlive?: number;
}

/** Opens a transport; provided by a runtime adapter. */
export type Connector = (
  target: TransportTarget,
  handlers: TransportHandlers,
  options: ConnectTransportOptions,
) => Promise<Transport>;

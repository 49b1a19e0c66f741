/**
 * The driver interface: the only way the pool core talks to a PostgreSQL
 * connection. The default driver is the native wire engine; the second is
 * built on postgres.js; the core's unit tests use a scriptable fake. Nothing in here depends on a runtime.
 *
 * @module
 */

import type { Notice } from "./log_listeners.ts";
import type { RowFactory } from "./row_factory.ts";
import type { CodecType, TextCodec } from "./type_codecs.ts";

/** A result row: a plain object keyed by column name. */
export type Row = Record<string, unknown>;

/** Transaction status from the server's last `ReadyForQuery` message. */
export type TransactionStatus = "idle" | "transaction" | "failed";

/**
 * Per-query bounds. `timeout` is in seconds. A timeout or abort cancels the
 * query on the server and leaves the connection usable.
 */
export interface QueryOptions {
  /** Seconds until the query is cancelled and rejects with `QUERY_TIMEOUT`. */
  timeout?: number;
  /** Aborting cancels the query; it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Options of a driver's `query` / `queryMany`: the caller's bounds, and how the driver builds rows.
 */
export interface DriverQueryOptions extends QueryOptions {
  /**
   * Rows as arrays of values in column order (`QueryResult.rows` then holds arrays, duplicate
   * column names kept): what a row factory builds its rows from.
   */
  arrayRows?: boolean;
}

/** What one statement returned. */
export interface QueryResult {
  /** The rows, in order. */
  rows: Row[];
  /** Column names, in order (empty for statements without a result set). */
  columns: string[];
  /** The command status tag, e.g. `"INSERT 0 1"` or `"SELECT 3"`. */
  command: string;
}

/** One result column of a described statement. */
export interface ColumnDescription {
  /** The column name. */
  name: string;
  /** The type's oid (`pg_type.oid`). */
  typeOid: number;
}

/** What the server says about a statement (its ParameterDescription and RowDescription). */
export interface StatementDescription {
  /** Parameter type oids, in order. */
  parameterTypes: number[];
  /** Result columns, in order (empty for a statement without a result set). */
  columns: ColumnDescription[];
}

/** The server's version, parsed from `server_version`. */
export interface ServerVersion {
  /** Major version, e.g. `15`. */
  major: number;
  /** Minor version, e.g. `4` for 15.4 (for 9.6.3: 6). */
  minor: number;
  /** Patch level where the server reports three parts (9.6.3 → 3), else 0. */
  micro: number;
  /** The raw `server_version` string. */
  text: string;
}

/** TLS modes with libpq's meaning. */
export type SslMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

/**
 * How to reach and log into a server. Durations are in seconds. Values come from
 * the DSN, then these options, then the libpq environment.
 */
export interface ConnectOptions {
  /** A `postgres://` URL or a libpq `key=value` string. */
  dsn?: string;
  /** Host name, IP address, or a directory holding a unix socket; comma-separated for several. */
  host?: string;
  /** TCP port (also names the unix socket file). */
  port?: number;
  /** Role to log in as. */
  user?: string;
  /** Password; never shown in any message. */
  password?: string;
  /** Database name. */
  database?: string;
  /** TLS mode. */
  sslmode?: SslMode;
  /** PEM text of the CA certificate(s) for `verify-ca` / `verify-full`. */
  sslrootcert?: string;
  /** Seconds one connection attempt (TCP, TLS, authentication) may take. */
  connectTimeout?: number;
  /** `application_name` reported to the server. */
  applicationName?: string;
  /** Extra startup parameters (run-time settings such as `search_path`). */
  params?: Record<string, string>;
  /** libpq's `target_session_attrs`. */
  targetSessionAttrs?: "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby";
  /**
   * libpq 16's `load_balance_hosts` (DSN key `load_balance_hosts`): `"random"` makes each
   * connection attempt try the hosts of a multi-host list in a random order of its own (with
   * `prefer-standby`, each of its two passes), spreading connections over replicas;
   * `"disable"` tries them in the order given.
   * @default {"disable"}
   */
  loadBalanceHosts?: "disable" | "random";
  /** Use named prepared statements (default true; false for PgBouncer transaction mode). */
  prepare?: boolean;
  /**
   * How many statement texts one connection prepares at most (default 100, 0 for none): a
   * prepared statement stays on the server for the connection's life. Only texts that are run
   * again are prepared; the others run as unnamed statements.
   */
  statementCacheSize?: number;
  /** Aborts the connection attempt; the attempt rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * What a row of `fetch`, `fetchRow` and `fetchMany` is (asyncpg's `record_class`): `"array"`
   * for arrays of values in column order, or a function `(columns, values) => row`. Default: plain
   * objects keyed by column name. `fetchVal` is unaffected. See {@linkcode RowFactory}.
   */
  rowFactory?: RowFactory;
  /**
   * Which driver speaks to the server: `"native"` (this package's own wire engine) or
   * `"postgres"` (npm `postgres`, postgres.js). Default: the `PGPOOL_DRIVER` environment
   * variable, else `"native"`. A pool uses one driver for all its connections.
   */
  driver?: DriverName;
}

/** The drivers an entry point can use: see {@linkcode ConnectOptions.driver}. */
export type DriverName = "native" | "postgres";

/** Names a {@linkcode ConnectOptions} object may have. */
export const CONNECT_OPTION_NAMES: ReadonlySet<string> = new Set([
  "dsn",
  "host",
  "port",
  "user",
  "password",
  "database",
  "sslmode",
  "sslrootcert",
  "connectTimeout",
  "applicationName",
  "params",
  "targetSessionAttrs",
  "loadBalanceHosts",
  "prepare",
  "statementCacheSize",
  "signal",
  "driver",
  "rowFactory",
]);

/** Receives a notification: its payload, its channel and the sending backend's pid. */
export type NotificationListener = (payload: string, channel: string, pid: number) => void;

/**
 * What a driver can do beyond the contract's minimum, where the two drivers differ. Whatever a
 * driver lacks it refuses with `UNSUPPORTED` or does as documented; the flags say so up front
 * (the README's driver table lists them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NATIVE_CAPABILITIES, POSTGRES_JS_CAPABILITIES } from "./driver.ts";
 * assert.equal(NATIVE_CAPABILITIES.describeUnnamed, true);
 * assert.equal(POSTGRES_JS_CAPABILITIES.codecsOnPrepared, false);
 * ```
 */
export interface DriverCapabilities {
  /** `describe()` works with `prepare: false` (on the unnamed statement): prepared statements behind a transaction pooler. */
  readonly describeUnnamed: boolean;
  /** A type codec set after a statement was prepared on the connection applies to that statement's results too. */
  readonly codecsOnPrepared: boolean;
  /**
   * Statements may be queued behind statements still running, each answered in order, and
   * `reset({ behind: true })` works: what lets the pool pipeline its one-shots.
   */
  readonly pipelining: boolean;
}

/** The native engine's capabilities: all of them. */
export const NATIVE_CAPABILITIES: DriverCapabilities = Object.freeze({
  describeUnnamed: true,
  codecsOnPrepared: true,
  pipelining: true,
});

/**
 * The postgres.js driver's: it describes through a named statement (refused with `prepare: false`),
 * and a statement it prepared keeps the parsers it was prepared with.
 */
export const POSTGRES_JS_CAPABILITIES: DriverCapabilities = Object.freeze({
  describeUnnamed: false,
  codecsOnPrepared: false,
  pipelining: false,
});

/**
 * One open physical connection, as a driver provides it. Implementations must
 * never reconnect silently: once closed, every call rejects with
 * `CONNECTION_CLOSED` and {@linkcode DriverConnection.isClosed} stays true.
 */
export interface DriverConnection {
  /** The backend's process id. */
  readonly pid: number;
  /** The server's version. */
  readonly serverVersion: ServerVersion;
  /** Statements sent so far: every query round, the reset and rollbacks included. */
  readonly queryCount: number;
  /** Transaction status from the last `ReadyForQuery`. */
  readonly transactionStatus: TransactionStatus;
  /**
   * True when `targetSessionAttrs: "prefer-standby"` found no standby and this connection was
   * opened on the fallback pass (any server). The pool gives such a connection a short lifetime
   * (`fallbackLifetime`), so it goes back to a standby once one is reachable. Absent = false.
   */
  readonly fallback?: boolean;
  /** What this connection's driver can do where drivers differ; absent: none of it. */
  readonly capabilities?: DriverCapabilities;
  /** True once the connection closed for any reason; never false again. */
  isClosed(): boolean;
  /** Runs one statement with `$1…` parameters. */
  query(sql: string, args: readonly unknown[], options?: DriverQueryOptions): Promise<QueryResult>;
  /**
   * Runs one statement once per argument list, pipelined where possible; all or nothing
   * (outside a transaction, in a transaction of its own).
   */
  queryMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    options?: DriverQueryOptions,
  ): Promise<QueryResult[]>;
  /**
   * Asks the server to describe a statement (Parse + Describe) without running it. A driver keeps
   * the statement prepared only within its bounded statement cache, so describing texts never
   * grows the server's statements without bound. Optional: without it, `prepare()` rejects with
   * `UNSUPPORTED`.
   */
  describe?(sql: string, options?: QueryOptions): Promise<StatementDescription>;
  /** Runs a `COPY … TO STDOUT`, handing each chunk to `sink` (awaited: backpressure); resolves to the status tag. */
  copyOut(
    sql: string,
    sink: (chunk: Uint8Array) => unknown,
    options?: QueryOptions,
  ): Promise<string>;
  /** Runs a `COPY … FROM STDIN` fed from `source`; resolves to the status tag. */
  copyIn(sql: string, source: AsyncIterable<Uint8Array>, options?: QueryOptions): Promise<string>;
  /** `LISTEN` on this very connection; notifications on `channel` go to `listener`. */
  listen(channel: string, listener: NotificationListener): Promise<void>;
  /** `UNLISTEN` the channel on this connection. */
  unlisten(channel: string): Promise<void>;
  /**
   * Makes the session clean for the next user: waits for a pending query
   * cancellation, rolls back an open transaction (per the transaction status),
   * and when `query` is true sends the reset statements the server supports.
   * Any failure leaves the connection closed. With `pipeline`, a driver may
   * resolve once the reset is on its way, provided every later statement runs
   * after it, a failed reset closes the connection before any later result is
   * delivered, and a reset not answered within `timeout` seconds closes it too.
   *
   * With `behind` (only where `capabilities.pipelining`), the reset is queued right behind the
   * statements already sent, without waiting for them: it cannot know the transaction status they
   * leave, so it rolls back whatever may be open (a driver may skip that where the protocol proves
   * nothing can be open, e.g. after statements that each bound parameters), and a `query: false`
   * reset sends nothing else.
   */
  reset(
    options: { query: boolean; signal?: AbortSignal; pipeline?: boolean; timeout?: number; behind?: boolean },
  ): Promise<void>;
  /** Closes gracefully (Terminate message); past `timeout` seconds it terminates. */
  close(options?: { timeout?: number }): Promise<void>;
  /** Drops the socket now. */
  terminate(): void;
  /** Lets the socket keep the process alive again (the default; the pool calls it when it hands the connection out). */
  ref(): void;
  /** Lets the process exit while this connection is open and idle (the pool calls it for its idle connections). */
  unref(): void;
  /**
   * Registers the listener called exactly once when the connection closes for
   * any reason (local close, server kill, network loss). `error` is set when it
   * was not a local close. Called at most once per connection; a later call replaces it.
   */
  onClose(listener: (error: Error | undefined) => void): void;
  /**
   * The session reset statements this server supports (what `reset({ query: true })` sends),
   * as one text of `;`-separated statements; empty when the server supports none.
   */
  resetQuery(): string;
  /**
   * Registers the receiver of the server's notices and warnings (`NoticeResponse`) on this
   * connection, with every field; `undefined` drops them again. A later call replaces it.
   */
  onNotice(listener: ((notice: Notice) => void) | undefined): void;
  /**
   * Sets this connection's own text codec of a type (and of its array type, element by element),
   * replacing the built-in one; `undefined` goes back to the built-in one. Results decode with it
   * and arguments bound to parameters of the type encode with it. A driver that cannot apply it
   * to statements it prepared before says so in its documentation.
   */
  setTypeCodec(type: CodecType, codec: TextCodec | undefined): void;
}

/**
 * Opens connections. `options.signal` bounds the attempt; a driver bounds it
 * by `connectTimeout` too.
 */
export interface Driver {
  /** Opens one connection, eagerly (the connection is usable when this resolves). */
  connect(options: ConnectOptions): Promise<DriverConnection>;
}

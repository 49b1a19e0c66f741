/**
 * Error classes. Every error the library raises extends {@linkcode PoolError}
 * and carries a stable string `code` that callers can match on.
 *
 * @module
 */

/** Codes of errors about how the pool or a connection was used. */
export type InterfaceErrorCode =
  | "POOL_CLOSED"
  | "POOL_CLOSING"
  | "POOL_NOT_INITIALIZED"
  | "POOL_INITIALIZING"
  | "CONNECTION_RELEASED"
  | "FOREIGN_CONNECTION"
  | "CONNECTION_CLOSED"
  | "BAD_CONNECT_RESULT"
  | "CONNECTION_BUSY"
  | "TRANSACTION_OPEN"
  | "NO_TRANSACTION"
  | "CURSOR_CLOSED"
  | "RELEASE_IN_SETUP"
  | "INVALID_ARGUMENT"
  | "INVALID_DSN"
  | "UNKNOWN_TYPE"
  | "UNSUPPORTED";

/** Codes of deadlines that passed. */
export type TimeoutErrorCode =
  | "ACQUIRE_TIMEOUT"
  | "RELEASE_TIMEOUT"
  | "QUERY_TIMEOUT"
  | "CONNECT_TIMEOUT"
  | "LISTEN_TIMEOUT"
  | "CLOSE_TIMEOUT";

/**
 * The base class of every error the library raises.
 *
 * @example Match on the code
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, PoolError } from "@x/pgpool";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point.
 * const pool = await createPool({ minSize: 0 });
 * await pool.close();
 * try {
 *   await pool.acquire();
 *   assert.fail("a closed pool lends nothing");
 * } catch (e) {
 *   // Branch on the stable code, never on the message.
 *   assert.ok(e instanceof PoolError && e.code === "POOL_CLOSED");
 * }
 * ```
 */
export class PoolError extends Error {
  /** A stable machine-readable code: a pool code, an SQLSTATE or a network code. */
  readonly code: string;

  /**
   * Makes an error with a code.
   *
   * @param code A stable machine-readable code.
   * @param message A sentence-case description without a trailing period.
   * @param options Standard error options (`cause`).
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolError";
    this.code = code;
  }
}

/**
 * The pool or a connection was used in a way its state does not allow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, InterfaceError } from "@x/pgpool";
 * const pool = await createPool({ minSize: 0, maxSize: 1 });
 * const con = await pool.acquire();
 * await pool.release(con);
 * await pool.close();
 * await assert.rejects(pool.execute("SELECT 1"), (e) => e instanceof InterfaceError && e.code === "POOL_CLOSED");
 * ```
 */
export class InterfaceError extends PoolError {
  /** The reason. */
  declare readonly code: InterfaceErrorCode;

  /**
   * Makes an interface error.
   *
   * @param code The reason.
   * @param message A sentence-case description.
   * @param options Standard error options (`cause`).
   */
  constructor(code: InterfaceErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "InterfaceError";
  }
}

/**
 * A deadline passed. Its `name` is `"TimeoutError"`, like a DOM timeout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, PoolTimeoutError } from "@x/pgpool";
 * const pool = await createPool({ minSize: 1, maxSize: 1 });
 * const held = await pool.acquire();
 * // The only connection is out: a second acquire gives up after 50 ms.
 * await assert.rejects(
 *   pool.acquire({ timeout: 0.05 }),
 *   (e) => e instanceof PoolTimeoutError && e.code === "ACQUIRE_TIMEOUT" && e.name === "TimeoutError",
 * );
 * await pool.release(held);
 * await pool.close();
 * ```
 */
export class PoolTimeoutError extends PoolError {
  /** Which deadline passed. */
  declare readonly code: TimeoutErrorCode;

  /**
   * Makes a timeout error.
   *
   * @param code Which deadline passed.
   * @param message A sentence-case description.
   * @param options Standard error options (`cause`).
   */
  constructor(code: TimeoutErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "TimeoutError";
  }
}

/** Fields PostgreSQL reports with an error (see the ErrorResponse message). */
export interface PostgresErrorFields {
  /** SQLSTATE, e.g. `"42P01"`. */
  code: string;
  /** The primary message. */
  message: string;
  /** `ERROR`, `FATAL`, `PANIC`, ... */
  severity?: string;
  /** Secondary detail. */
  detail?: string;
  /** A suggestion. */
  hint?: string;
  /** 1-based character position in the query. */
  position?: number;
  /** Schema, table, column, constraint, data type when reported. */
  schema?: string;
  /** Table name when reported. */
  table?: string;
  /** Column name when reported. */
  column?: string;
  /** Constraint name when reported. */
  constraint?: string;
  /** Data type name when reported. */
  dataType?: string;
  /** Where the error occurred (call stack of PL functions). */
  where?: string;
}

/**
 * An error reported by the PostgreSQL server. `code` is the SQLSTATE.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, PostgresError } from "@x/pgpool";
 * const pool = await createPool({ minSize: 0, maxSize: 1 });
 * try {
 *   await pool.execute("SELECT * FROM no_such_table");
 *   assert.fail("the server refuses the query");
 * } catch (e) {
 *   // The server's SQLSTATE: 42P01 is undefined_table.
 *   assert.ok(e instanceof PostgresError && e.code === "42P01");
 * } finally {
 *   await pool.close();
 * }
 * ```
 */
export class PostgresError extends PoolError {
  /** `ERROR`, `FATAL`, `PANIC`, ... */
  readonly severity: string | undefined;
  /** Secondary detail. */
  readonly detail: string | undefined;
  /** A suggestion. */
  readonly hint: string | undefined;
  /** 1-based character position in the query. */
  readonly position: number | undefined;
  /** Schema name when reported. */
  readonly schema: string | undefined;
  /** Table name when reported. */
  readonly table: string | undefined;
  /** Column name when reported. */
  readonly column: string | undefined;
  /** Constraint name when reported. */
  readonly constraint: string | undefined;
  /** Data type name when reported. */
  readonly dataType: string | undefined;
  /** Where the error occurred. */
  readonly where: string | undefined;

  /**
   * Makes an error from the server's report.
   *
   * @param fields What the server reported.
   * @param options Standard error options (`cause`).
   */
  constructor(fields: PostgresErrorFields, options?: ErrorOptions) {
    super(fields.code, fields.message, options);
    this.name = "PostgresError";
    this.severity = fields.severity;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.position = fields.position;
    this.schema = fields.schema;
    this.table = fields.table;
    this.column = fields.column;
    this.constraint = fields.constraint;
    this.dataType = fields.dataType;
    this.where = fields.where;
  }
}

/**
 * The network or the server closed or refused a connection. `code` is a network
 * code such as `ECONNREFUSED`, or `CONNECTION_LOST` when the socket closed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, ConnectionError } from "@x/pgpool";
 * // Nothing listens on port 1: createPool() rejects, with the network error's code.
 * await assert.rejects(
 *   createPool("postgres://postgres@127.0.0.1:1/postgres", { minSize: 1 }),
 *   (e) => e instanceof ConnectionError && e.code === "ECONNREFUSED",
 * );
 * ```
 */
export class ConnectionError extends PoolError {
  /**
   * Makes a connection error.
   *
   * @param code A network code.
   * @param message A sentence-case description (never containing a password).
   * @param options Standard error options (`cause`).
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "ConnectionError";
  }
}

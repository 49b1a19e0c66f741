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
  | "INVALID_ARGUMENT"
  | "INVALID_DSN";

/** Codes of deadlines that passed. */
export type TimeoutErrorCode =
  | "ACQUIRE_TIMEOUT"
  | "RELEASE_TIMEOUT"
  | "QUERY_TIMEOUT"
  | "CONNECT_TIMEOUT"
  | "CLOSE_TIMEOUT";

/**
 * The base class of every error the library raises.
 *
 * @example Match on the code
 * ```ts
 * import { PoolError } from "@x/pgpool";
 * try {
 *   throw new PoolError("POOL_CLOSED", "Cannot acquire a connection as the pool is closed");
 * } catch (e) {
 *   if (e instanceof PoolError && e.code === "POOL_CLOSED") console.log("closed");
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
 * import { InterfaceError } from "@x/pgpool";
 * const e = new InterfaceError("POOL_CLOSED", "Cannot acquire a connection as the pool is closed");
 * console.log(e.code);
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
 * import { PoolTimeoutError } from "@x/pgpool";
 * const e = new PoolTimeoutError("ACQUIRE_TIMEOUT", "Timed out after 1s waiting for a connection");
 * console.log(e.name, e.code);
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
 * import { PostgresError } from "@x/pgpool";
 * const e = new PostgresError({ code: "42P01", message: 'relation "nope" does not exist' });
 * console.log(e.code, e.message);
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
 * import { ConnectionError } from "@x/pgpool";
 * const e = new ConnectionError("ECONNREFUSED", "Cannot connect to 127.0.0.1:1: connection refused");
 * console.log(e.code);
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

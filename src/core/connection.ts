/**
 * The public connection: the query API over one driver connection. A pool hands
 * out {@linkcode PoolConnection} proxies that forward to one of these.
 *
 * @module
 */

import type {
  DriverConnection,
  NotificationListener,
  QueryOptions,
  QueryResult,
  Row,
  ServerVersion,
} from "./driver.ts";
import { InterfaceError } from "./errors.ts";
import { type LogListener, LogListeners } from "./log_listeners.ts";
import { arrayRowOptions, buildRow, buildRows, type RowFactory } from "./row_factory.ts";
import { checkTypeCodec, resolveCodecType, type TypeCodec } from "./type_codecs.ts";
import { Cursor, type CursorOptions, noTransaction, type StatementOwner } from "./cursor.ts";
import { type PreparedStatement, prepareStatement } from "./prepared_statement.ts";
import {
  columnListSql,
  type CopyFormatOptions,
  copyOptionsSql,
  copyTextLine,
  qualifiedName,
} from "./sql_text.ts";

/** Where `COPY … TO STDOUT` data goes: a web stream (closed at the end) or a callback (awaited). */
export type CopyOutput = WritableStream<Uint8Array> | ((chunk: Uint8Array) => unknown);

/** Where `COPY … FROM STDIN` data comes from. */
export type CopySource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array | string;

/** Options of `copyFromTable`. */
export interface CopyFromTableOptions extends CopyFormatOptions, QueryOptions {
  /** Receives the data. */
  output: CopyOutput;
  /** Columns to copy (default: all). */
  columns?: string[];
  /** Schema of the table. */
  schemaName?: string;
}

/** Options of `copyFromQuery`. */
export interface CopyFromQueryOptions extends CopyFormatOptions, QueryOptions {
  /** Receives the data. */
  output: CopyOutput;
}

/** Options of `copyToTable`. */
export interface CopyToTableOptions extends CopyFormatOptions, QueryOptions {
  /** The data. */
  source: CopySource;
  /** Columns the data fills (default: all). */
  columns?: string[];
  /** Schema of the table. */
  schemaName?: string;
}

/** Options of `copyRecordsToTable`. */
export interface CopyRecordsOptions extends QueryOptions {
  /** Rows as arrays of values in column order. */
  records: Iterable<readonly unknown[]> | AsyncIterable<readonly unknown[]>;
  /** Columns the records fill (default: all). */
  columns?: string[];
  /** Schema of the table. */
  schemaName?: string;
}

/** Options of `transaction()`. */
export interface TransactionOptions {
  /** Isolation level (default: the server's). */
  isolation?: "read committed" | "repeatable read" | "serializable";
  /** `READ ONLY` transaction. */
  readOnly?: boolean;
  /** `DEFERRABLE` (with serializable, read only). */
  deferrable?: boolean;
}

/** Options of `fetchVal()`. */
export interface FetchValOptions extends QueryOptions {
  /** Column by index (default 0) or name. */
  column?: number | string;
}

/** Internal access for the pool: not part of the public surface. */
export interface ConnectionInternals {
  driver(con: Connection): DriverConnection;
  listenerCount(con: Connection): number;
  /** Forgets client-side session state (listeners, transaction nesting) at release. */
  clearSessionState(con: Connection): void;
  transaction<C, T>(
    con: Connection,
    self: C,
    fn: (c: C) => Promise<T>,
    opts?: TransactionOptions,
  ): Promise<T>;
  onClose(con: Connection, listener: (error: Error | undefined) => void): void;
  /**
   * Marks a connection as reaching the server through a transaction pooler (the pool's
   * `poolMode: "transaction"`): from then on listeners and COPY reject with `UNSUPPORTED`.
   */
  useTransactionPoolMode(con: Connection): void;
  /**
   * The connection's row factory (undefined: plain objects). A row-returning feature (a cursor,
   * a prepared statement) fetches with `arrayRowOptions()` and builds rows with
   * `buildRows()` / `buildRow()` of `row_factory.ts` when it is set.
   */
  rowFactory(con: Connection): RowFactory | undefined;
  /** `prepare()` for a checkout: `released()` true once it is over. */
  prepare(
    con: Connection,
    released: () => boolean,
    sql: string,
    opts?: QueryOptions,
  ): Promise<PreparedStatement>;
  /** `cursor()` for a checkout: `released()` true once it is over. */
  cursor<T>(
    con: Connection,
    released: () => boolean,
    sql: string,
    args?: readonly unknown[],
    opts?: CursorOptions,
  ): Cursor<T>;
}

const NEVER_RELEASED = (): boolean => false;

let internals!: ConnectionInternals;

const LISTEN_REASON = "notifications go to the server session that ran LISTEN, which the pooler lends to " +
  "other clients after each transaction";
const COPY_REASON = "a transaction pooler does not promise to carry COPY's sub-protocol";

/** The error of a session feature a transaction pooler cannot carry (`poolMode: "transaction"`). */
function unsupportedInTransactionMode(method: string, reason: string): InterfaceError {
  return new InterfaceError(
    "UNSUPPORTED",
    `Cannot call ${method}() in transaction pool mode as ${reason}; use a connection that does not ` +
      "go through the transaction pooler",
  );
}

const ISOLATION = new Set(["read committed", "repeatable read", "serializable"]);
const encoder = new TextEncoder();

const NO_ARGS: readonly unknown[] = Object.freeze([]);
/** Stands for a missing options object, so a missing required option is reported by name. */
const NO_OPTIONS: Readonly<Partial<CopyFromTableOptions & CopyToTableOptions>> = Object.freeze({});

/**
 * Checks query arguments; plain objects become JSON text (the only place a plain object is encoded:
 * the drivers send a string bound to json/jsonb as the JSON text it is, see
 * `src/drivers/json_param.ts`). Returns the array to send. With
 * `objects` (the connection has type codecs), other objects go to the driver as they are, for an
 * encoder.
 */
function argsOf(args: readonly unknown[] | undefined, objects = false): readonly unknown[] {
  if (args === undefined) return NO_ARGS;
  if (!Array.isArray(args)) {
    throw new InterfaceError("INVALID_ARGUMENT", "Query arguments must be an array");
  }
  let out: unknown[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const value: unknown = args[i];
    const sent = sendable(value, i, objects);
    if (sent !== value) {
      out ??= args.slice();
      out[i] = sent;
    }
  }
  return out ?? args;
}

function sendable(value: unknown, index: number, objects: boolean): unknown {
  switch (typeof value) {
    case "string":
    case "number":
    case "bigint":
    case "boolean":
      return value;
    case "object": {
      if (value === null || value instanceof Date || value instanceof Uint8Array) return value;
      if (Array.isArray(value)) {
        for (const element of value) sendable(element, index, objects);
        return value;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) return JSON.stringify(value);
      if (objects) return value;
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Query argument $${index + 1} is a ${
          (value as object).constructor?.name ?? "object"
        }, which cannot be sent; convert it to a string, number, Date, Uint8Array, array or plain object`,
      );
    }
    case "undefined":
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Query argument $${index + 1} is undefined; pass null for SQL NULL`,
      );
    default:
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Query argument $${index + 1} is a ${typeof value}, which cannot be sent`,
      );
  }
}

function argsListOf(
  argsList: readonly (readonly unknown[])[],
  objects = false,
): readonly (readonly unknown[])[] {
  if (!Array.isArray(argsList)) {
    throw new InterfaceError("INVALID_ARGUMENT", "The argument lists must be an array of arrays");
  }
  return argsList.map((args) => argsOf(args, objects));
}

function sqlOf(sql: unknown): string {
  if (typeof sql !== "string") {
    throw new InterfaceError("INVALID_ARGUMENT", `The SQL text must be a string: got ${typeof sql}`);
  }
  return sql;
}

async function* sourceChunks(source: CopySource): AsyncIterable<Uint8Array> {
  if (typeof source === "string") yield encoder.encode(source);
  else if (source instanceof Uint8Array) yield source;
  else if (typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      yield typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    }
  } else if (typeof (source as ReadableStream<Uint8Array>).getReader === "function") {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      "Cannot copy as 'source' must be a ReadableStream, an async iterable, a Uint8Array or a string",
    );
  }
}

function checkRecords(records: unknown): void {
  const r = records as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null;
  if (
    r === null || typeof r !== "object" ||
    (typeof r[Symbol.iterator] !== "function" && typeof r[Symbol.asyncIterator] !== "function")
  ) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      "Cannot copy records as 'records' must be an iterable or async iterable of arrays",
    );
  }
}

async function* recordChunks(
  records: Iterable<readonly unknown[]> | AsyncIterable<readonly unknown[]>,
): AsyncIterable<Uint8Array> {
  let batch = "";
  for await (const record of records as AsyncIterable<readonly unknown[]>) {
    if (!Array.isArray(record)) {
      throw new InterfaceError("INVALID_ARGUMENT", "Cannot copy records as each record must be an array");
    }
    batch += copyTextLine(record);
    if (batch.length >= 65536) {
      yield encoder.encode(batch);
      batch = "";
    }
  }
  if (batch.length > 0) yield encoder.encode(batch);
}

async function runCopyOut(
  driver: DriverConnection,
  sql: string,
  output: CopyOutput,
  opts: QueryOptions | undefined,
): Promise<string> {
  if (typeof output === "function") return await driver.copyOut(sql, output, opts);
  if (output === null || typeof output !== "object" || typeof output.getWriter !== "function") {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      "Cannot copy as 'output' must be a WritableStream or a function",
    );
  }
  const writer = output.getWriter();
  try {
    const tag = await driver.copyOut(sql, (chunk) => writer.write(chunk), opts);
    await writer.close();
    return tag;
  } catch (e) {
    await writer.abort(e).catch(() => {});
    throw e;
  } finally {
    writer.releaseLock();
  }
}

/**
 * One PostgreSQL connection with the query API. Get one with `connect()`; a
 * pool's `connect` hook returns these.
 *
 * @example Query on a standalone connection
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@x/pgpool";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point;
 * // connect("postgres://user@host/db") takes a DSN.
 * await using con = await connect();
 * assert.equal(await con.fetchVal("SELECT 1 + 1"), 2);
 * ```
 */
export class Connection {
  #driver: DriverConnection;
  #listeners = new Map<string, Set<NotificationListener>>();
  #listenerCount = 0;
  #txDepth = 0;
  /** Bumped whenever the session is reset: a transaction() begun before cannot finish after. */
  #epoch = 0;
  #closeListeners: ((error: Error | undefined) => void)[] = [];
  /** Set behind a transaction pooler: session features that cannot work there reject. */
  #transactionPooled = false;
  /** The log listeners (made at the first `addLogListener`). */
  #logListeners: LogListeners | undefined;
  /** A type codec was set: arguments that are objects (not plain) go to the driver for its encoders. */
  #codecs = false;
  /** What a fetched row is (undefined: the driver's plain objects). */
  readonly #rowFactory: RowFactory | undefined;

  static {
    internals = {
      driver: (con) => con.#driver,
      listenerCount: (con) => con.#listenerCount + (con.#logListeners?.size ?? 0),
      clearSessionState: (con) => con.#clearSessionState(),
      transaction: (con, self, fn, opts) => con.#transaction(self, fn, opts),
      onClose: (con, listener) => {
        con.#closeListeners.push(listener);
      },
      useTransactionPoolMode: (con) => {
        con.#transactionPooled = true;
      },
      rowFactory: (con) => con.#rowFactory,
      prepare: (con, released, sql, opts) => con.#prepare(released, sql, opts),
      cursor: (con, released, sql, args, opts) => con.#cursor(released, sql, args, opts),
    };
  }

  /**
   * Wraps a driver connection. Drivers call this; users call `connect()`.
   *
   * @param driver The open driver connection.
   * @param options The connection's `rowFactory` (see {@linkcode ConnectOptions.rowFactory}).
   */
  constructor(driver: DriverConnection, options?: { rowFactory?: RowFactory }) {
    this.#driver = driver;
    this.#rowFactory = options?.rowFactory;
    driver.onClose((error) => {
      const listeners = this.#closeListeners;
      this.#closeListeners = [];
      for (const listener of listeners) listener(error);
    });
  }

  /**
   * Runs a statement and resolves to its status tag (e.g. `"INSERT 0 1"`).
   *
   * @param sql The statement, with `$1…` placeholders.
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal for this query.
   * @returns The command status tag.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t AS SELECT generate_series(1, 3) AS x");
   * assert.equal(await con.execute("UPDATE t SET x = $1", [1]), "UPDATE 3");
   * ```
   */
  async execute(sql: string, args?: readonly unknown[], opts?: QueryOptions): Promise<string> {
    return (await this.#driver.query(sqlOf(sql), argsOf(args, this.#codecs), opts)).command;
  }

  /**
   * Runs a statement once per argument list (pipelined) and resolves when all ran.
   *
   * The batch is all or nothing: outside a transaction it runs in a transaction
   * of its own (sent in the same pipeline), so when one run fails — or the
   * COMMIT does — none of the runs take effect, and the error is the failing
   * run's. Inside a transaction, a failed run fails that transaction.
   *
   * @param sql The statement.
   * @param argsList One argument array per execution.
   * @param opts Timeout / abort signal for the whole batch.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (x int)");
   * await con.executeMany("INSERT INTO t VALUES ($1)", [[1], [2], [3]]);
   * assert.equal(await con.fetchVal("SELECT sum(x)::int FROM t"), 6);
   * ```
   */
  async executeMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    opts?: QueryOptions,
  ): Promise<void> {
    await this.#driver.queryMany(sqlOf(sql), argsListOf(argsList, this.#codecs), opts);
  }

  /**
   * Runs a query and resolves to all its rows.
   *
   * @param sql The query.
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal.
   * @returns The rows as plain objects.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const rows = await con.fetch<{ n: number }>("SELECT generate_series(1, $1) AS n", [3]);
   * assert.deepEqual(rows.map((r) => r.n), [1, 2, 3]);
   * ```
   */
  async fetch<T = Row>(sql: string, args?: readonly unknown[], opts?: QueryOptions): Promise<T[]> {
    const factory = this.#rowFactory;
    if (factory === undefined) {
      return (await this.#driver.query(sqlOf(sql), argsOf(args, this.#codecs), opts)).rows as T[];
    }
    return buildRows(
      factory,
      await this.#driver.query(sqlOf(sql), argsOf(args, this.#codecs), arrayRowOptions(opts)),
    ) as T[];
  }

  /**
   * Runs a query and resolves to its first row, or `null` when there is none.
   *
   * @param sql The query.
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal.
   * @returns The first row or `null`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const row = await con.fetchRow<{ a: number; b: number }>("SELECT 1 AS a, 2 AS b");
   * assert.equal(row?.b, 2);
   * assert.equal(await con.fetchRow("SELECT 1 WHERE false"), null);
   * ```
   */
  async fetchRow<T = Row>(sql: string, args?: readonly unknown[], opts?: QueryOptions): Promise<T | null> {
    const factory = this.#rowFactory;
    if (factory !== undefined) {
      return buildRow(
        factory,
        await this.#driver.query(sqlOf(sql), argsOf(args, this.#codecs), arrayRowOptions(opts)),
      ) as T;
    }
    const rows = (await this.#driver.query(sqlOf(sql), argsOf(args, this.#codecs), opts)).rows;
    return rows.length === 0 ? null : rows[0] as T;
  }

  /**
   * Runs a query and resolves to one value of its first row (`null` when there is no row).
   *
   * @param sql The query.
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal, and `column` by index (default 0) or name.
   * @returns The value or `null`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const n = await con.fetchVal<number>("SELECT count(*)::int FROM generate_series(1, 5)");
   * assert.equal(n, 5);
   * assert.equal(await con.fetchVal("SELECT 1 AS a, 2 AS b", [], { column: "b" }), 2);
   * ```
   */
  async fetchVal<T = unknown>(
    sql: string,
    args?: readonly unknown[],
    opts?: FetchValOptions,
  ): Promise<T | null> {
    const result = await this.#driver.query(sqlOf(sql), argsOf(args, this.#codecs), opts);
    return pickValue(result, opts?.column) as T | null;
  }

  /**
   * Runs a query once per argument list (pipelined) and resolves to all rows of all runs.
   * All or nothing, like {@linkcode Connection.executeMany}.
   *
   * @param sql The query.
   * @param argsList One argument array per run.
   * @param opts Timeout / abort signal for the whole batch.
   * @returns The rows, run after run.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (x int)");
   * const rows = await con.fetchMany<{ x: number }>("INSERT INTO t VALUES ($1) RETURNING x", [[1], [2]]);
   * assert.deepEqual(rows.map((r) => r.x), [1, 2]);
   * ```
   */
  async fetchMany<T = Row>(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    opts?: QueryOptions,
  ): Promise<T[]> {
    const factory = this.#rowFactory;
    if (factory === undefined) {
      const results = await this.#driver.queryMany(sqlOf(sql), argsListOf(argsList, this.#codecs), opts);
      return results.flatMap((r) => r.rows) as T[];
    }
    const results = await this.#driver.queryMany(
      sqlOf(sql),
      argsListOf(argsList, this.#codecs),
      arrayRowOptions(opts),
    );
    return results.flatMap((r) => buildRows(factory, r)) as T[];
  }

  /**
   * Runs `fn` in a transaction: committed when it resolves, rolled back when it
   * throws. Nested calls use savepoints.
   *
   * @param fn The work; receives this connection.
   * @param opts Isolation level, read-only, deferrable.
   * @returns What `fn` resolved to.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (x int)");
   * await con.transaction(async (tx) => {
   *   await tx.execute("INSERT INTO t VALUES (1)");
   * }); // committed
   * await assert.rejects(con.transaction(async (tx) => {
   *   await tx.execute("INSERT INTO t VALUES (2)");
   *   throw new Error("changed my mind");
   * })); // rolled back
   * assert.equal(await con.fetchVal("SELECT count(*)::int FROM t"), 1);
   * ```
   */
  transaction<T>(fn: (con: Connection) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    return this.#transaction(this, fn, opts);
  }

  /**
   * Prepares a statement: the server describes it once (parameter and column
   * types), then each run binds it. It stays valid while this connection is
   * checked out (a pool's release, or `reset()`, ends it: every method then
   * throws `CONNECTION_RELEASED`); on the server it lives within the
   * connection's bounded statement cache (`statementCacheSize`). The
   * postgres.js driver with `prepare: false` rejects with `UNSUPPORTED`.
   *
   * @param sql The statement, with `$1…` placeholders.
   * @param opts Timeout / abort signal for the preparation.
   * @returns The prepared statement.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT $1::int + $2::int AS sum");
   * assert.equal(await stmt.fetchVal([1, 2]), 3);
   * assert.equal(await stmt.fetchVal([3, 4]), 7);
   * assert.deepEqual(stmt.getAttributes().map((a) => a.name), ["sum"]);
   * ```
   */
  prepare(sql: string, opts?: QueryOptions): Promise<PreparedStatement> {
    return this.#prepare(NEVER_RELEASED, sql, opts);
  }

  /**
   * A server-side cursor over a query's rows, read in batches so memory stays
   * flat however many rows there are. PostgreSQL keeps a cursor only within a
   * transaction: outside one this throws `NO_TRANSACTION` (nothing is sent).
   * Iterate it with `for await` (`prefetch` rows per round, default 50) or read
   * it with `fetch(n)`, `fetchRow()`, `forward(n)`; see {@linkcode Cursor}.
   *
   * @param sql The query, with `$1…` placeholders.
   * @param args Values for the placeholders.
   * @param opts `prefetch`: rows per round while iterating; `timeout` / `signal` bound each round.
   * @returns The cursor (declared on the server at its first use).
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * let count = 0;
   * await con.transaction(async (tx) => {
   *   for await (const _row of tx.cursor("SELECT * FROM generate_series(1, $1::int)", [1000])) count++;
   * });
   * assert.equal(count, 1000);
   * assert.throws(() => con.cursor("SELECT 1"), { code: "NO_TRANSACTION" });
   * ```
   */
  cursor<T = Row>(sql: string, args?: readonly unknown[], opts?: CursorOptions): Cursor<T> {
    return this.#cursor(NEVER_RELEASED, sql, args, opts);
  }

  #prepare(released: () => boolean, sql: string, opts: QueryOptions | undefined): Promise<PreparedStatement> {
    try {
      const owner = this.#owner(released);
      owner.check("prepare");
      return prepareStatement(owner, sql, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #cursor<T>(
    released: () => boolean,
    sql: string,
    args: readonly unknown[] | undefined,
    opts: CursorOptions | undefined,
  ): Cursor<T> {
    const owner = this.#owner(released);
    owner.check("cursor");
    if (this.#driver.transactionStatus === "idle") throw noTransaction();
    return new Cursor<T>(owner, sql, args, opts);
  }

  /** What a prepared statement or cursor made now may use: valid until released or reset. */
  #owner(released: () => boolean): StatementOwner {
    const epoch = this.#epoch;
    const driver = this.#driver;
    return {
      check: (what) => {
        if (released() || epoch !== this.#epoch) {
          throw new InterfaceError(
            "CONNECTION_RELEASED",
            `Cannot call ${what}() as its connection has been released back to the pool (or reset)`,
          );
        }
      },
      query: (sql, args, opts) => driver.query(sql, argsOf(args), opts),
      rowQuery: (sql, args, opts) =>
        driver.query(sql, argsOf(args), this.#rowFactory === undefined ? opts : arrayRowOptions(opts)),
      rows: (result) => {
        const factory = this.#rowFactory;
        return factory === undefined ? result.rows : buildRows(factory, result);
      },
      queryMany: (sql, argsList, opts) => driver.queryMany(sql, argsListOf(argsList), opts),
      describe: (sql, opts) => {
        if (driver.describe === undefined) {
          return Promise.reject(
            new InterfaceError(
              "UNSUPPORTED",
              "Cannot prepare a statement as this driver cannot describe one",
            ),
          );
        }
        return driver.describe(sql, opts);
      },
      transactionStatus: () => driver.transactionStatus,
      value: pickValue,
    };
  }

  #clearSessionState(): void {
    if (this.#listeners.size > 0) this.#listeners.clear(); // clear() of an empty Map costs V8 ~40 ns
    this.#listenerCount = 0;
    if (this.#logListeners !== undefined && this.#logListeners.size > 0) {
      this.#logListeners.clear();
      this.#driver.onNotice(undefined);
    }
    this.#txDepth = 0;
    this.#epoch++;
  }

  async #transaction<C, T>(self: C, fn: (c: C) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    if (typeof fn !== "function") {
      throw new InterfaceError("INVALID_ARGUMENT", "Cannot start a transaction as 'fn' must be a function");
    }
    const depth = this.#txDepth;
    const epoch = this.#epoch;
    const savepoint = `pgpool_sp_${depth}`;
    if (depth === 0) {
      if (this.#driver.transactionStatus !== "idle") {
        throw new InterfaceError(
          "TRANSACTION_OPEN",
          "Cannot start transaction() inside a transaction begun with a plain BEGIN",
        );
      }
      await this.#driver.query(beginSql(opts), []);
    } else await this.#driver.query(`SAVEPOINT ${savepoint}`, []);
    if (epoch !== this.#epoch) throw staleTransaction();
    this.#txDepth = depth + 1;
    let result: T;
    try {
      result = await fn(self);
    } catch (e) {
      // Released or reset meanwhile: the release rolled back already, and the session is someone else's now.
      if (epoch !== this.#epoch) throw e;
      this.#txDepth = depth;
      if (!this.#driver.isClosed()) {
        await this.#driver.query(depth === 0 ? "ROLLBACK" : `ROLLBACK TO SAVEPOINT ${savepoint}`, []);
      }
      throw e;
    }
    if (epoch !== this.#epoch) throw staleTransaction();
    this.#txDepth = depth;
    await this.#driver.query(depth === 0 ? "COMMIT" : `RELEASE SAVEPOINT ${savepoint}`, []);
    return result;
  }

  /**
   * Subscribes to a channel on this very connection (`LISTEN`).
   *
   * @param channel The channel name (quoted as an identifier).
   * @param listener Called with payload, channel and the sender's pid.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const received = Promise.withResolvers<string>();
   * await con.addListener("jobs", (payload) => received.resolve(payload));
   * await con.execute("NOTIFY jobs, 'job 1'");
   * assert.equal(await received.promise, "job 1");
   * ```
   */
  async addListener(channel: string, listener: NotificationListener): Promise<void> {
    if (this.#transactionPooled) throw unsupportedInTransactionMode("addListener", LISTEN_REASON);
    if (typeof listener !== "function") {
      throw new InterfaceError("INVALID_ARGUMENT", "Cannot add a listener that is not a function");
    }
    let set = this.#listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(channel, set);
      try {
        await this.#driver.listen(channel, (payload, ch, pid) => {
          const current = this.#listeners.get(ch);
          if (current === undefined) return;
          for (const cb of [...current]) cb(payload, ch, pid);
        });
      } catch (e) {
        this.#listeners.delete(channel);
        throw e;
      }
    }
    if (!set.has(listener)) {
      set.add(listener);
      this.#listenerCount++;
    }
  }

  /**
   * Removes a listener; the channel is `UNLISTEN`ed when its last listener goes.
   *
   * @param channel The channel name.
   * @param listener The listener passed to `addListener`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const onJob = (payload: string): void => console.log(payload);
   * await con.addListener("jobs", onJob);
   * await con.removeListener("jobs", onJob); // the last one: UNLISTEN jobs
   * assert.deepEqual(await con.fetch("SELECT pg_listening_channels()"), []);
   * ```
   */
  async removeListener(channel: string, listener: NotificationListener): Promise<void> {
    const set = this.#listeners.get(channel);
    if (set === undefined || !set.delete(listener)) return;
    this.#listenerCount--;
    if (set.size === 0) {
      this.#listeners.delete(channel);
      if (!this.#driver.isClosed()) await this.#driver.unlisten(channel);
    }
  }

  /**
   * Adds a log listener: it receives the server's notices and warnings on this
   * connection (`RAISE NOTICE`, `RAISE WARNING`, and the server's own) with
   * every field: see {@linkcode Notice}. A listener added twice is called once.
   * A pool removes the listeners left on a connection at release, with the
   * `RELEASED_WITH_LISTENERS` warning; `reset()` removes them too.
   *
   * @param listener Called with each notice, in the order they arrive.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect, type Notice } from "@x/pgpool";
   * await using con = await connect();
   * const notices: Notice[] = [];
   * con.addLogListener((notice) => notices.push(notice));
   * await con.execute(`DO $$ BEGIN RAISE NOTICE 'step % done', 1 USING DETAIL = 'all rows'; END $$`);
   * assert.equal(notices[0]?.severity, "NOTICE");
   * assert.equal(notices[0]?.message, "step 1 done");
   * assert.equal(notices[0]?.detail, "all rows");
   * ```
   */
  addLogListener(listener: LogListener): void {
    if (typeof listener !== "function") {
      throw new InterfaceError("INVALID_ARGUMENT", "Cannot add a log listener that is not a function");
    }
    let listeners = this.#logListeners;
    if (listeners === undefined) listeners = this.#logListeners = new LogListeners();
    if (listeners.size === 0) this.#driver.onNotice((notice) => listeners.deliver(notice));
    listeners.add(listener);
  }

  /**
   * Removes a log listener added with {@linkcode Connection.addLogListener}
   * (a listener not registered is ignored).
   *
   * @param listener The listener to remove.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const seen: string[] = [];
   * const listener = (notice: { message: string }): void => void seen.push(notice.message);
   * con.addLogListener(listener);
   * con.removeLogListener(listener);
   * await con.execute(`DO $$ BEGIN RAISE NOTICE 'nobody hears this'; END $$`);
   * assert.deepEqual(seen, []);
   * ```
   */
  removeLogListener(listener: LogListener): void {
    const listeners = this.#logListeners;
    if (listeners === undefined || !listeners.remove(listener)) return;
    if (listeners.size === 0) this.#driver.onNotice(undefined);
  }

  /**
   * The session reset statements a pool runs on this server when a connection
   * is released (asyncpg's `get_reset_query()`, plus the role), as one text: on
   * PostgreSQL `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
   * SESSION AUTHORIZATION; RESET ALL;`, less on servers that lack some
   * (CockroachDB, Redshift, CrateDB); empty in
   * transaction pool mode, where nothing is reset. A custom `reset` hook runs
   * it to extend the default reset rather than replace it.
   *
   * @returns The statements, separated by `;` (runnable with `execute()`).
   * @example A custom reset that extends the default one
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({
   *   maxSize: 1,
   *   reset: async (con) => {
   *     await con.execute(con.getResetQuery()); // the default reset
   *     await con.execute("DISCARD TEMP"); // and more
   *   },
   * });
   * await pool.execute("CREATE TEMP TABLE scratch (x int)");
   * assert.equal(await pool.fetchVal("SELECT to_regclass('pg_temp.scratch')::text"), null);
   * ```
   */
  getResetQuery(): string {
    return this.#transactionPooled ? "" : this.#driver.resetQuery();
  }

  /**
   * Sets this connection's own text codec of a type (asyncpg's `set_type_codec`):
   * values of the type in results go through `decoder`, arguments bound to
   * parameters of the type through `encoder`; arrays of the type use them per
   * element. The type is looked up by name in the server's catalog (see
   * {@linkcode TypeCodec.schema}). Codecs are the connection's client-side
   * state: the session reset at release keeps them, so a pool's `init` hook is
   * the place to set them for every connection. A plain-object argument is
   * still sent as JSON; pass a class instance (or another non-plain object) to
   * reach an encoder. A domain has no codec of its own (PostgreSQL sends its
   * values as its base type): set the codec on the base type.
   *
   * On the postgres.js driver, a statement text the connection already prepared
   * (run more than once) keeps the codecs in effect when it was prepared; set
   * codecs before such statements run (in `init`).
   *
   * @param typeName The type's name (resolved like SQL does, or exactly within `codec.schema`).
   * @param codec The encoder, the decoder, and optionally the schema and the format (`"text"`).
   * @throws {InterfaceError} `UNKNOWN_TYPE` when the server has no such type; `UNSUPPORTED` for
   *   a domain, a pseudo-type or a format other than text; `INVALID_ARGUMENT` for a malformed codec.
   * @example Decode every numeric (a domain over numeric included) to an application class
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * class Decimal {
   *   constructor(readonly text: string) {}
   *   toString(): string {
   *     return this.text;
   *   }
   * }
   * await using pool = await createPool({
   *   maxSize: 1,
   *   init: (con) => con.setTypeCodec("numeric", { decoder: (t) => new Decimal(t), encoder: String }),
   * });
   * const total = await pool.fetchVal("SELECT $1::numeric + 0.05", [new Decimal("1.20")]);
   * assert.deepEqual(total, new Decimal("1.25"));
   * ```
   */
  async setTypeCodec<T>(typeName: string, codec: TypeCodec<T>): Promise<void> {
    checkTypeCodec(typeName, codec);
    const type = await resolveCodecType(this.#driver, typeName, codec.schema, "set a type codec");
    this.#driver.setTypeCodec(type, codec as TypeCodec<unknown>);
    this.#codecs = true;
  }

  /**
   * Puts a type back on its built-in codec (asyncpg's `reset_type_codec`),
   * undoing {@linkcode Connection.setTypeCodec}.
   *
   * @param typeName The type's name.
   * @param opts `schema`, as for `setTypeCodec`.
   * @throws {InterfaceError} `UNKNOWN_TYPE` when the server has no such type.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.setTypeCodec("int4", { decoder: (t) => BigInt(t), encoder: String });
   * assert.equal(await con.fetchVal("SELECT 7::int4"), 7n);
   * await con.resetTypeCodec("int4");
   * assert.equal(await con.fetchVal("SELECT 7::int4"), 7);
   * ```
   */
  async resetTypeCodec(typeName: string, opts?: { schema?: string }): Promise<void> {
    const type = await resolveCodecType(this.#driver, typeName, opts?.schema, "reset a type codec");
    this.#driver.setTypeCodec(type, undefined);
  }

  /**
   * Copies a table out (`COPY … TO STDOUT`).
   *
   * @param table The table name (quoted).
   * @param opts Output, columns, schema and COPY format options.
   * @returns The status tag, e.g. `"COPY 100"`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t AS SELECT 1 AS id, 'one' AS name");
   * let csv = "";
   * const decoder = new TextDecoder();
   * const output = (chunk: Uint8Array): void => {
   *   csv += decoder.decode(chunk, { stream: true });
   * };
   * assert.equal(await con.copyFromTable("t", { output, format: "csv" }), "COPY 1");
   * assert.equal(csv, "1,one\n");
   * ```
   */
  copyFromTable(table: string, opts: CopyFromTableOptions): Promise<string> {
    if (this.#transactionPooled) {
      return Promise.reject(unsupportedInTransactionMode("copyFromTable", COPY_REASON));
    }
    opts ??= NO_OPTIONS as CopyFromTableOptions; // then 'output' is reported missing (INVALID_ARGUMENT)
    const sql = `COPY ${qualifiedName(table, opts.schemaName)}${columnListSql(opts.columns)} TO STDOUT${
      copyOptionsSql(opts)
    }`;
    return runCopyOut(this.#driver, sql, opts.output, opts);
  }

  /**
   * Copies a query's result out (`COPY (query) TO STDOUT`). Arguments are
   * rendered as quoted literals by the server before the copy.
   *
   * @param sql The query.
   * @param args Values for its placeholders, or `undefined`.
   * @param opts Output and COPY format options.
   * @returns The status tag, e.g. `"COPY 3"`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * let text = "";
   * const decoder = new TextDecoder();
   * const output = (chunk: Uint8Array): void => {
   *   text += decoder.decode(chunk, { stream: true });
   * };
   * const sql = "SELECT n FROM generate_series(1, 5) AS n WHERE n > $1";
   * assert.equal(await con.copyFromQuery(sql, [3], { output }), "COPY 2");
   * assert.equal(text, "4\n5\n");
   * ```
   */
  async copyFromQuery(
    sql: string,
    args: readonly unknown[] | undefined,
    opts: CopyFromQueryOptions,
  ): Promise<string> {
    if (this.#transactionPooled) throw unsupportedInTransactionMode("copyFromQuery", COPY_REASON);
    opts ??= NO_OPTIONS as CopyFromQueryOptions;
    const list = argsOf(args);
    let text = sql;
    if (list.length > 0) {
      const select = list.map((_, i) => `quote_nullable($${i + 1}::text) AS "${i}"`).join(", ");
      const row = (await this.#driver.query(`SELECT ${select}`, list.map(textArg), opts)).rows[0] ?? {};
      text = sql.replace(/\$(\d+)/g, (m, n: string) => {
        const v = row[String(Number(n) - 1)];
        return typeof v === "string" ? v : m;
      });
    }
    return await runCopyOut(
      this.#driver,
      `COPY (${text}) TO STDOUT${copyOptionsSql(opts)}`,
      opts.output,
      opts,
    );
  }

  /**
   * Copies data into a table (`COPY … FROM STDIN`).
   *
   * @param table The table name (quoted).
   * @param opts Source, columns, schema and COPY format options.
   * @returns The status tag, e.g. `"COPY 100"`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (id int, name text)");
   * assert.equal(await con.copyToTable("t", { source: "1\tone\n2\ttwo\n" }), "COPY 2");
   * assert.equal(await con.fetchVal("SELECT name FROM t WHERE id = 2"), "two");
   * ```
   */
  copyToTable(table: string, opts: CopyToTableOptions): Promise<string> {
    if (this.#transactionPooled) {
      return Promise.reject(unsupportedInTransactionMode("copyToTable", COPY_REASON));
    }
    opts ??= NO_OPTIONS as CopyToTableOptions;
    const sql = `COPY ${qualifiedName(table, opts.schemaName)}${columnListSql(opts.columns)} FROM STDIN${
      copyOptionsSql(opts)
    }`;
    return this.#driver.copyIn(sql, sourceChunks(opts.source), opts);
  }

  /**
   * Copies records (arrays of values) into a table, encoded in COPY's text format.
   *
   * @param table The table name (quoted).
   * @param opts Records, columns and schema.
   * @returns The status tag, e.g. `"COPY 2"`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (id int, name text)");
   * assert.equal(await con.copyRecordsToTable("t", { records: [[1, "one"], [2, null]] }), "COPY 2");
   * assert.equal(await con.fetchVal("SELECT count(*)::int FROM t WHERE name IS NULL"), 1);
   * ```
   */
  async copyRecordsToTable(table: string, opts: CopyRecordsOptions): Promise<string> {
    if (this.#transactionPooled) throw unsupportedInTransactionMode("copyRecordsToTable", COPY_REASON);
    checkRecords(opts?.records);
    const sql = `COPY ${qualifiedName(table, opts.schemaName)}${columnListSql(opts.columns)} FROM STDIN`;
    return await this.#driver.copyIn(sql, recordChunks(opts.records), opts);
  }

  /**
   * The backend's process id.
   *
   * @returns The pid.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * assert.equal(con.getServerPid(), await con.fetchVal("SELECT pg_backend_pid()"));
   * ```
   */
  getServerPid(): number {
    return this.#driver.pid;
  }

  /**
   * The server's version.
   *
   * @returns Major, minor, micro and the raw text.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const { major } = con.getServerVersion();
   * assert.equal(major, Math.floor(Number(await con.fetchVal("SHOW server_version_num")) / 10000));
   * ```
   */
  getServerVersion(): ServerVersion {
    return this.#driver.serverVersion;
  }

  /**
   * Resets the session as a pool does on release: listeners cleared, an open
   * transaction rolled back, then advisory locks, cursors, `LISTEN`s and settings reset.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("SET search_path = pg_catalog");
   * await con.reset();
   * assert.notEqual(await con.fetchVal("SHOW search_path"), "pg_catalog");
   * ```
   */
  async reset(): Promise<void> {
    this.#clearSessionState();
    await this.#driver.reset({ query: true });
  }

  /**
   * Closes gracefully.
   *
   * @param opts `timeout` in seconds, after which the connection is terminated.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * const con = await connect();
   * await con.close({ timeout: 10 });
   * assert.equal(con.isClosed(), true);
   * ```
   */
  async close(opts?: { timeout?: number }): Promise<void> {
    await this.#driver.close(opts);
  }

  /**
   * Drops the connection now.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * const con = await connect();
   * con.terminate();
   * assert.equal(con.isClosed(), true);
   * ```
   */
  terminate(): void {
    this.#driver.terminate();
  }

  /**
   * Whether the connection is closed (for any reason).
   *
   * @returns True once closed.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * const con = await connect();
   * assert.equal(con.isClosed(), false);
   * await con.close();
   * assert.equal(con.isClosed(), true);
   * ```
   */
  isClosed(): boolean {
    return this.#driver.isClosed();
  }

  /** Closes the connection (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A description without secrets. */
  toString(): string {
    return `Connection(pid ${this.#driver.pid}${this.#driver.isClosed() ? ", closed" : ""})`;
  }
}

/** Internal access for the pool. Not exported from `mod.ts`. */
export function connectionInternals(): ConnectionInternals {
  return internals;
}

function staleTransaction(): InterfaceError {
  return new InterfaceError(
    "CONNECTION_RELEASED",
    "Cannot finish the transaction as its connection was released or reset meanwhile; it was rolled back",
  );
}

function textArg(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object" && !(value instanceof Uint8Array)) return JSON.stringify(value);
  return String(value);
}

function beginSql(opts: TransactionOptions | undefined): string {
  if (opts === undefined) return "BEGIN";
  let sql = "BEGIN";
  if (opts.isolation !== undefined) {
    if (!ISOLATION.has(opts.isolation)) {
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        "Cannot start a transaction as 'isolation' must be read committed, repeatable read or serializable",
      );
    }
    sql += ` ISOLATION LEVEL ${opts.isolation.toUpperCase()}`;
  }
  if (opts.readOnly !== undefined) sql += opts.readOnly ? " READ ONLY" : " READ WRITE";
  if (opts.deferrable !== undefined) sql += opts.deferrable ? " DEFERRABLE" : " NOT DEFERRABLE";
  return sql;
}

function pickValue(result: QueryResult, column: number | string | undefined): unknown {
  const row = result.rows[0];
  if (row === undefined) return null;
  if (column === undefined || typeof column === "number") {
    const index = column ?? 0;
    const name = result.columns[index];
    if (name === undefined) {
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Cannot fetch column ${index} as the result has ${result.columns.length} column(s)`,
      );
    }
    return row[name];
  }
  if (!Object.hasOwn(row, column)) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      `Cannot fetch column "${column}" as the result has no such column`,
    );
  }
  return row[column];
}

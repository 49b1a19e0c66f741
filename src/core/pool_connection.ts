/**
 * The proxy a pool hands out. Each `acquire()` makes a new one; after release
 * every method throws `CONNECTION_RELEASED` synchronously, so a stale reference
 * can never touch a connection someone else has checked out.
 *
 * @module
 */

import {
  type Connection,
  connectionInternals,
  type CopyFromQueryOptions,
  type CopyFromTableOptions,
  type CopyRecordsOptions,
  type CopyToTableOptions,
  type FetchValOptions,
  type TransactionOptions,
} from "./connection.ts";
import type { NotificationListener, QueryOptions, Row, ServerVersion } from "./driver.ts";
import { InterfaceError } from "./errors.ts";

/** What the proxy needs of its pool. */
export interface ReleasingPool {
  /** Releases a proxy. */
  release(con: PoolConnection): Promise<void>;
}

/** The pool's view of a proxy. Not exported from `mod.ts`. */
export interface ProxyState {
  pool: ReleasingPool;
  /** The pool's slot record this checkout belongs to. */
  slot: unknown;
  con: Connection;
  released: boolean;
  releasing: Promise<void> | undefined;
}

/** Internal access for the pool. */
export interface PoolConnectionInternals {
  create(pool: ReleasingPool, slot: unknown, con: Connection): PoolConnection;
  state(proxy: PoolConnection): ProxyState;
}

let internals!: PoolConnectionInternals;
let creating = false;
const txInternals = connectionInternals();

/**
 * A checked-out connection. Same query API as {@linkcode Connection}, valid
 * until released. `await using` releases it at scope end.
 *
 * @example Check out, query, release
 * ```ts ignore
 * import { createPool } from "@x/pgpool";
 * await using pool = await createPool("postgres://localhost/postgres");
 * {
 *   await using con = await pool.acquire();
 *   console.log(await con.fetchVal("SELECT 1"));
 * } // released here
 * ```
 */
export class PoolConnection {
  #state: ProxyState;

  static {
    internals = {
      create(pool, slot, con) {
        creating = true;
        const proxy = new PoolConnection();
        creating = false;
        proxy.#state = { pool, slot, con, released: false, releasing: undefined };
        return proxy;
      },
      state: (proxy) => proxy.#state,
    };
  }

  /** Not for direct use: `Pool.acquire()` makes these. */
  constructor() {
    if (!creating) throw new TypeError("PoolConnection objects are made by Pool.acquire()");
    this.#state = undefined as unknown as ProxyState;
  }

  #live(method: string): Connection {
    const s = this.#state;
    if (s.released) {
      throw new InterfaceError(
        "CONNECTION_RELEASED",
        `Cannot call PoolConnection.${method}() as the connection has been released back to the pool`,
      );
    }
    return s.con;
  }

  /**
   * Runs a statement; resolves to its status tag. See {@linkcode Connection.execute}.
   *
   * @param sql The statement.
   * @param args Values for `$1…`.
   * @param opts Timeout / abort signal.
   * @returns The status tag.
   * @example
   * ```ts ignore
   * await con.execute("DELETE FROM t WHERE id = $1", [1]);
   * ```
   */
  execute(sql: string, args?: readonly unknown[], opts?: QueryOptions): Promise<string> {
    return this.#live("execute").execute(sql, args, opts);
  }

  /**
   * Runs a statement per argument list, pipelined, all or nothing. See {@linkcode Connection.executeMany}.
   *
   * @param sql The statement.
   * @param argsList One argument array per run.
   * @param opts Timeout / abort signal.
   * @example
   * ```ts ignore
   * await con.executeMany("INSERT INTO t VALUES ($1)", [[1], [2]]);
   * ```
   */
  executeMany(sql: string, argsList: readonly (readonly unknown[])[], opts?: QueryOptions): Promise<void> {
    return this.#live("executeMany").executeMany(sql, argsList, opts);
  }

  /**
   * Runs a query; resolves to all rows. See {@linkcode Connection.fetch}.
   *
   * @param sql The query.
   * @param args Values for `$1…`.
   * @param opts Timeout / abort signal.
   * @returns The rows.
   * @example
   * ```ts ignore
   * const rows = await con.fetch("SELECT * FROM t");
   * ```
   */
  fetch<T = Row>(sql: string, args?: readonly unknown[], opts?: QueryOptions): Promise<T[]> {
    return this.#live("fetch").fetch<T>(sql, args, opts);
  }

  /**
   * Runs a query; resolves to the first row or `null`. See {@linkcode Connection.fetchRow}.
   *
   * @param sql The query.
   * @param args Values for `$1…`.
   * @param opts Timeout / abort signal.
   * @returns The first row or `null`.
   * @example
   * ```ts ignore
   * const row = await con.fetchRow("SELECT * FROM t WHERE id = $1", [1]);
   * ```
   */
  fetchRow<T = Row>(sql: string, args?: readonly unknown[], opts?: QueryOptions): Promise<T | null> {
    return this.#live("fetchRow").fetchRow<T>(sql, args, opts);
  }

  /**
   * Runs a query; resolves to one value of the first row. See {@linkcode Connection.fetchVal}.
   *
   * @param sql The query.
   * @param args Values for `$1…`.
   * @param opts Timeout / abort signal and `column`.
   * @returns The value or `null`.
   * @example
   * ```ts ignore
   * const n = await con.fetchVal<number>("SELECT 1");
   * ```
   */
  fetchVal<T = unknown>(sql: string, args?: readonly unknown[], opts?: FetchValOptions): Promise<T | null> {
    return this.#live("fetchVal").fetchVal<T>(sql, args, opts);
  }

  /**
   * Runs a query per argument list; resolves to all rows. See {@linkcode Connection.fetchMany}.
   *
   * @param sql The query.
   * @param argsList One argument array per run.
   * @param opts Timeout / abort signal.
   * @returns The rows of all runs.
   * @example
   * ```ts ignore
   * const rows = await con.fetchMany("SELECT $1::int AS n", [[1], [2]]);
   * ```
   */
  fetchMany<T = Row>(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    opts?: QueryOptions,
  ): Promise<T[]> {
    return this.#live("fetchMany").fetchMany<T>(sql, argsList, opts);
  }

  /**
   * Runs `fn` in a transaction (savepoints when nested); `fn` receives this proxy.
   *
   * @param fn The work.
   * @param opts Isolation level, read-only, deferrable.
   * @returns What `fn` resolved to.
   * @example
   * ```ts ignore
   * await con.transaction(async (tx) => tx.execute("UPDATE t SET x = x + 1"));
   * ```
   */
  transaction<T>(fn: (con: PoolConnection) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    return txInternals.transaction(this.#live("transaction"), this, fn, opts);
  }

  /**
   * `LISTEN` on this connection. Listeners are removed (with a warning) at release.
   *
   * @param channel The channel.
   * @param listener Receives payload, channel and the sender's pid.
   * @example
   * ```ts ignore
   * await con.addListener("events", (payload) => console.log(payload));
   * ```
   */
  addListener(channel: string, listener: NotificationListener): Promise<void> {
    return this.#live("addListener").addListener(channel, listener);
  }

  /**
   * Removes a listener.
   *
   * @param channel The channel.
   * @param listener The listener to remove.
   * @example
   * ```ts ignore
   * await con.removeListener("events", onEvent);
   * ```
   */
  removeListener(channel: string, listener: NotificationListener): Promise<void> {
    return this.#live("removeListener").removeListener(channel, listener);
  }

  /**
   * Copies a table out. See {@linkcode Connection.copyFromTable}.
   *
   * @param table The table.
   * @param opts Output and options.
   * @returns The status tag.
   * @example
   * ```ts ignore
   * await con.copyFromTable("t", { output: (chunk) => sink(chunk) });
   * ```
   */
  copyFromTable(table: string, opts: CopyFromTableOptions): Promise<string> {
    return this.#live("copyFromTable").copyFromTable(table, opts);
  }

  /**
   * Copies a query's result out. See {@linkcode Connection.copyFromQuery}.
   *
   * @param sql The query.
   * @param args Values for `$1…`, or `undefined`.
   * @param opts Output and options.
   * @returns The status tag.
   * @example
   * ```ts ignore
   * await con.copyFromQuery("SELECT 1", undefined, { output: (chunk) => sink(chunk) });
   * ```
   */
  copyFromQuery(
    sql: string,
    args: readonly unknown[] | undefined,
    opts: CopyFromQueryOptions,
  ): Promise<string> {
    return this.#live("copyFromQuery").copyFromQuery(sql, args, opts);
  }

  /**
   * Copies data into a table. See {@linkcode Connection.copyToTable}.
   *
   * @param table The table.
   * @param opts Source and options.
   * @returns The status tag.
   * @example
   * ```ts ignore
   * await con.copyToTable("t", { source: "1\n2\n" });
   * ```
   */
  copyToTable(table: string, opts: CopyToTableOptions): Promise<string> {
    return this.#live("copyToTable").copyToTable(table, opts);
  }

  /**
   * Copies records into a table. See {@linkcode Connection.copyRecordsToTable}.
   *
   * @param table The table.
   * @param opts Records and options.
   * @returns The status tag.
   * @example
   * ```ts ignore
   * await con.copyRecordsToTable("t", { records: [[1], [2]] });
   * ```
   */
  copyRecordsToTable(table: string, opts: CopyRecordsOptions): Promise<string> {
    return this.#live("copyRecordsToTable").copyRecordsToTable(table, opts);
  }

  /**
   * The backend's process id.
   *
   * @returns The pid.
   * @example
   * ```ts ignore
   * console.log(con.getServerPid());
   * ```
   */
  getServerPid(): number {
    return this.#live("getServerPid").getServerPid();
  }

  /**
   * The server's version.
   *
   * @returns The version.
   * @example
   * ```ts ignore
   * console.log(con.getServerVersion().major);
   * ```
   */
  getServerVersion(): ServerVersion {
    return this.#live("getServerVersion").getServerVersion();
  }

  /**
   * Resets the session now (as release would).
   *
   * @example
   * ```ts ignore
   * await con.reset();
   * ```
   */
  reset(): Promise<void> {
    return this.#live("reset").reset();
  }

  /**
   * Closes the physical connection; the pool's slot is freed and a later
   * acquire opens a new connection.
   *
   * @param opts `timeout` in seconds.
   * @example
   * ```ts ignore
   * await con.close();
   * ```
   */
  close(opts?: { timeout?: number }): Promise<void> {
    return this.#live("close").close(opts);
  }

  /**
   * Drops the physical connection now; the pool's slot is freed at once.
   *
   * @example
   * ```ts ignore
   * con.terminate();
   * ```
   */
  terminate(): void {
    this.#live("terminate").terminate();
  }

  /**
   * Whether the physical connection is closed.
   *
   * @returns True once closed.
   * @example
   * ```ts ignore
   * console.log(con.isClosed());
   * ```
   */
  isClosed(): boolean {
    return this.#live("isClosed").isClosed();
  }

  /** Releases this connection to its pool (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#state.pool.release(this);
  }

  /** A description without secrets; says when released. */
  toString(): string {
    const s = this.#state;
    if (s.released) return "PoolConnection(released)";
    return `PoolConnection(pid ${s.con.getServerPid()}${s.con.isClosed() ? ", closed" : ""})`;
  }

  /** Deno's inspect. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Node's and Bun's inspect. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** Internal access for the pool. Not exported from `mod.ts`. */
export function poolConnectionInternals(): PoolConnectionInternals {
  return internals;
}

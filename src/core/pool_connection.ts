/**
 * The proxy a pool hands out. Each `acquire()` makes a new one; after release
 * every method throws `CONNECTION_RELEASED` synchronously, so a stale reference
 * can never touch a connection someone else has checked out.
 *
 * @module
 */

import { Connection, connectionInternals, type TransactionOptions } from "./connection.ts";
import type { Checkout } from "./checkout.ts";
import type { Cursor, CursorOptions } from "./cursor.ts";
import type { QueryOptions, Row } from "./driver.ts";
import type { PreparedStatement } from "./prepared_statement.ts";
import { InterfaceError } from "./errors.ts";
import { type ByName, defineMethods, PROXY_METHODS, type QueryApi, type SessionApi } from "./query_api.ts";

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
  /** Watch for SQLSTATE 25006 (the pool wants a writable server: `targetSessionAttrs`). */
  watchReadOnly: boolean;
  /** A statement failed with SQLSTATE 25006: the server is read-only; the pool drops the connection at release. */
  readOnly: boolean;
}

/** Internal access for the pool. */
export interface PoolConnectionInternals {
  create(pool: ReleasingPool, slot: unknown, con: Connection, watchReadOnly: boolean): PoolConnection;
  state(proxy: PoolConnection): ProxyState;
}

let internals!: PoolConnectionInternals;
let creating = false;
const txInternals = connectionInternals();

/**
 * A checked-out connection: the methods of {@linkcode Connection}
 * ({@linkcode QueryApi}, {@linkcode SessionApi} and `transaction`), valid until
 * released. `await using` releases it at scope end.
 *
 * @example Check out, query, release
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * await using pool = await createPool({ maxSize: 2 });
 * {
 *   await using con = await pool.acquire();
 *   assert.equal(await con.fetchVal("SELECT 1"), 1);
 *   assert.equal(pool.getIdleSize(), 0);
 * } // released here
 * assert.equal(pool.getIdleSize(), 1);
 * ```
 */
export class PoolConnection {
  #state: ProxyState;

  static {
    internals = {
      create(pool, slot, con, watchReadOnly) {
        creating = true;
        const proxy = new PoolConnection();
        creating = false;
        proxy.#state = {
          pool,
          slot,
          con,
          released: false,
          releasing: undefined,
          watchReadOnly,
          readOnly: false,
        };
        return proxy;
      },
      state: (proxy) => proxy.#state,
    };
    // The forwarders, one per method of the query API's lists: check the checkout, then call the connection.
    defineMethods(
      PoolConnection.prototype,
      PROXY_METHODS,
      Connection.prototype,
      (name) =>
        function (this: PoolConnection, a: unknown, b: unknown, c: unknown): unknown {
          const s = this.#state;
          if (s.released) throw released(name);
          const out = (s.con as unknown as ByName)[name](a, b, c);
          // Kept on the checkout (not the proxy): if the proxy is collected while this runs, the pool
          // closes the connection only after it ended.
          if (out instanceof Promise) (s.slot as Checkout).lastStatement = out;
          return s.watchReadOnly ? watchReadOnly(s, out) : out;
        },
    );
  }

  /** Not for direct use: `Pool.acquire()` makes these. */
  constructor() {
    if (!creating) throw new TypeError("PoolConnection objects are made by Pool.acquire()");
    this.#state = undefined as unknown as ProxyState;
  }

  #live(method: string): Connection {
    const s = this.#state;
    if (s.released) throw released(method);
    return s.con;
  }

  /**
   * Runs `fn` in a transaction (savepoints when nested); `fn` receives this proxy.
   *
   * @param fn The work.
   * @param opts Isolation level, read-only, deferrable.
   * @returns What `fn` resolved to.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ maxSize: 2 });
   * await using con = await pool.acquire();
   * await con.execute("CREATE TEMP TABLE t AS SELECT 1 AS x");
   * await con.transaction(async (tx) => tx.execute("UPDATE t SET x = x + 1"));
   * assert.equal(await con.fetchVal("SELECT x FROM t"), 2);
   * ```
   */
  transaction<T>(fn: (con: PoolConnection) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    const out = txInternals.transaction(this.#live("transaction"), this, fn, opts);
    (this.#state.slot as Checkout).lastStatement = out;
    return out;
  }

  /**
   * Prepares a statement on this checkout; see `Connection.prepare()`. After
   * release, every method of the statement throws `CONNECTION_RELEASED`.
   *
   * @param sql The statement.
   * @param opts Timeout / abort signal for the preparation.
   * @returns The prepared statement.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ maxSize: 1 });
   * const con = await pool.acquire();
   * const stmt = await con.prepare("SELECT $1::int AS n");
   * assert.equal(await stmt.fetchVal([5]), 5);
   * await pool.release(con);
   * assert.throws(() => stmt.fetch([1]), { code: "CONNECTION_RELEASED" });
   * ```
   */
  prepare(sql: string, opts?: QueryOptions): Promise<PreparedStatement> {
    const s = this.#state;
    if (s.released) throw released("prepare");
    // The guard holds this proxy: while a statement made here is reachable, the checkout is not a
    // leak to reclaim (its connection is not closed under the statement).
    const out = txInternals.prepare(s.con, () => this.#state.released, sql, opts);
    (s.slot as Checkout).lastStatement = out;
    return out;
  }

  /**
   * A server-side cursor on this checkout (inside a transaction); see
   * `Connection.cursor()`. After release, every method throws `CONNECTION_RELEASED`.
   *
   * @param sql The query.
   * @param args Values for the placeholders.
   * @param opts `prefetch`: rows per round while iterating.
   * @returns The cursor.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ maxSize: 1 });
   * await using con = await pool.acquire();
   * const rows = await con.transaction(async (tx) => {
   *   const cursor = tx.cursor("SELECT generate_series(1, 100) AS n");
   *   return await cursor.fetch(3);
   * });
   * assert.deepEqual(rows, [{ n: 1 }, { n: 2 }, { n: 3 }]);
   * ```
   */
  cursor<T = Row>(sql: string, args?: readonly unknown[], opts?: CursorOptions): Cursor<T> {
    const s = this.#state;
    if (s.released) throw released("cursor");
    return txInternals.cursor<T>(s.con, () => this.#state.released, sql, args, opts);
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

/** The forwarded methods of {@linkcode PoolConnection}, typed as `Connection`'s; see {@linkcode QueryApi}. */
export interface PoolConnection extends QueryApi, SessionApi {}

/** Notes a SQLSTATE 25006 (read-only transaction) failure of `result` on the checkout; the error still reaches the caller. */
function watchReadOnly(s: ProxyState, result: unknown): unknown {
  if (!(result instanceof Promise)) return result;
  return result.catch((e: unknown) => {
    if ((e as { code?: unknown } | null)?.code === "25006") s.readOnly = true;
    throw e;
  });
}

function released(method: string): InterfaceError {
  return new InterfaceError(
    "CONNECTION_RELEASED",
    `Cannot call PoolConnection.${method}() as the connection has been released back to the pool`,
  );
}

/** Internal access for the pool. Not exported from `mod.ts`. */
export function poolConnectionInternals(): PoolConnectionInternals {
  return internals;
}

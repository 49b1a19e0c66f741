/**
 * The Kysely dialect: PostgreSQL's query compiler, adapter and introspector
 * from Kysely, queries on a pgpool pool.
 *
 * @module
 */

import {
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
} from "kysely";
import { type BasePool, InterfaceError } from "../public.ts";
import { PgpoolDriver } from "./driver.ts";

/** Configuration of {@linkcode PgpoolDialect}. */
export interface PgpoolDialectConfig {
  /**
   * The pool to run on, initialized (`createPool()`), or a function resolving to
   * one, called once when Kysely first needs a connection. `Kysely.destroy()`
   * closes it.
   */
  pool: BasePool | (() => Promise<BasePool>);
  /** Seconds Kysely waits for a pool connection before rejecting with `ACQUIRE_TIMEOUT` (default: no bound). */
  acquireTimeout?: number;
}

/**
 * A Kysely dialect running on a pgpool pool. Each Kysely query checks a
 * connection out of the pool and releases it when done;
 * `db.transaction().execute(fn)` and `db.connection().execute(fn)` hold one
 * checkout (one backend) for all of `fn`. INSERT / UPDATE / DELETE / MERGE
 * report `numAffectedRows`. `stream()` yields chunks of `chunkSize` rows, but
 * fetches the whole result first: the pool has no cursor yet.
 *
 * @example Selects, inserts and a transaction
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Generated, Kysely, sql } from "kysely";
 * import { createPool } from "@x/pgpool";
 * import { PgpoolDialect } from "@x/pgpool/kysely";
 *
 * interface Database {
 *   person: { id: Generated<number>; name: string };
 * }
 *
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point, or createPool("postgres://...").
 * const pool = await createPool({ maxSize: 10 });
 * const db = new Kysely<Database>({ dialect: new PgpoolDialect({ pool }) });
 * // A TEMP table lives in one session: db.connection() holds one checkout for all of it.
 * await db.connection().execute(async (conn) => {
 *   await sql`CREATE TEMP TABLE person (id int GENERATED ALWAYS AS IDENTITY, name text)`.execute(conn);
 *   const { id } = await conn.insertInto("person").values({ name: "Ada" }).returning("id")
 *     .executeTakeFirstOrThrow();
 *   await conn.transaction().execute(async (trx) => {
 *     await trx.updateTable("person").set({ name: "Ada L." }).where("id", "=", id).execute();
 *   });
 *   const people = await conn.selectFrom("person").selectAll().execute();
 *   assert.deepEqual(people.map((p) => p.name), ["Ada L."]);
 * });
 * await db.destroy(); // closes the pool
 * ```
 */
export class PgpoolDialect implements Dialect {
  readonly #config: PgpoolDialectConfig;

  /**
   * Builds the dialect; the pool is first used when Kysely first needs a connection.
   *
   * @param config The pool (or a function resolving to it) and an optional acquire timeout.
   * @throws {InterfaceError} `INVALID_ARGUMENT` when `pool` is neither a pool nor a function.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Kysely, sql } from "kysely";
   * import { createPool } from "@x/pgpool";
   * import { PgpoolDialect } from "@x/pgpool/kysely";
   * // The pool is created when Kysely first needs a connection.
   * const dialect = new PgpoolDialect({ pool: () => createPool({ maxSize: 2 }), acquireTimeout: 5 });
   * const db = new Kysely<Record<string, never>>({ dialect });
   * assert.equal((await sql<{ n: number }>`SELECT 2 AS n`.execute(db)).rows[0]?.n, 2);
   * await db.destroy();
   * ```
   */
  constructor(config: PgpoolDialectConfig) {
    const pool: unknown = config?.pool;
    if (typeof pool !== "function" && (typeof pool !== "object" || pool === null)) {
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        "Cannot create the Kysely dialect as 'pool' must be a pool or a function resolving to one",
      );
    }
    this.#config = { ...config };
  }

  /** The driver: one pool checkout per Kysely connection. */
  createDriver(): Driver {
    return new PgpoolDriver(this.#config);
  }

  /** Kysely's PostgreSQL query compiler. */
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  /** Kysely's PostgreSQL adapter (RETURNING, transactional DDL, advisory-lock migrations). */
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  /** Kysely's PostgreSQL introspector (`db.introspection`). */
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

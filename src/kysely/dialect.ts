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
 * ```ts ignore
 * import { Kysely, type Generated } from "kysely";
 * import { createPool } from "jsr:@x/pgpool";
 * import { PgpoolDialect } from "jsr:@x/pgpool/kysely";
 *
 * interface Database {
 *   person: { id: Generated<number>; name: string };
 * }
 *
 * const pool = await createPool("postgres://postgres@localhost/postgres", { maxSize: 10 });
 * const db = new Kysely<Database>({ dialect: new PgpoolDialect({ pool }) });
 * const { id } = await db.insertInto("person").values({ name: "Ada" }).returning("id").executeTakeFirstOrThrow();
 * await db.transaction().execute(async (trx) => {
 *   await trx.updateTable("person").set({ name: "Ada L." }).where("id", "=", id).execute();
 * });
 * console.log(await db.selectFrom("person").selectAll().execute());
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
   * ```ts ignore
   * const dialect = new PgpoolDialect({ pool: () => createPool(Deno.env.get("DATABASE_URL")), acquireTimeout: 5 });
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

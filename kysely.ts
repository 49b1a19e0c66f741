/**
 * A [Kysely](https://kysely.dev) dialect for @x/pgpool: `new Kysely({ dialect:
 * new PgpoolDialect({ pool }) })` runs Kysely's queries, transactions and
 * streams on the pool. Needs the `kysely` package (0.28), an optional peer
 * dependency of this package.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Kysely, sql } from "kysely";
 * import { createPool } from "@x/pgpool";
 * import { PgpoolDialect } from "@x/pgpool/kysely";
 *
 * const pool = await createPool({ maxSize: 2 }); // from the environment, or createPool("postgres://...")
 * const db = new Kysely<Record<string, never>>({ dialect: new PgpoolDialect({ pool }) });
 * const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(db);
 * assert.deepEqual(rows, [{ one: 1 }]);
 * await db.destroy(); // closes the pool
 * ```
 *
 * @module
 */

export { PgpoolDialect, type PgpoolDialectConfig } from "./src/kysely/dialect.ts";

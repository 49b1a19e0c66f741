/**
 * A [Kysely](https://kysely.dev) dialect for @x/pgpool: `new Kysely({ dialect:
 * new PgpoolDialect({ pool }) })` runs Kysely's queries, transactions and
 * streams on the pool. Needs the `kysely` package (0.28), an optional peer
 * dependency of this package.
 *
 * @example
 * ```ts ignore
 * import { Kysely, sql } from "kysely";
 * import { createPool } from "jsr:@x/pgpool";
 * import { PgpoolDialect } from "jsr:@x/pgpool/kysely";
 *
 * const pool = await createPool("postgres://postgres@localhost/postgres");
 * const db = new Kysely<Record<string, never>>({ dialect: new PgpoolDialect({ pool }) });
 * const { rows } = await sql`SELECT 1 AS one`.execute(db);
 * await db.destroy();
 * ```
 *
 * @module
 */

export { PgpoolDialect, type PgpoolDialectConfig } from "./src/kysely/dialect.ts";

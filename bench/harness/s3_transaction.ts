/**
 * S3 transaction (pgbench's TPC-B shape, reduced): 50 tasks share a pool of
 * 10; each loops checkout → BEGIN; UPDATE one of 1,000 account rows; INSERT a
 * history row; COMMIT → release, on tables this scenario creates.
 *
 * @module
 */

import postgres from "postgres";
import { asyncpgVariant } from "./contender_asyncpg.ts";
import { pgbenchVariant } from "./contender_pgbench.ts";
import { runLoop } from "./contender.ts";
import type { Context, Scenario, Variant } from "./variant.ts";
import { inProcessVariant } from "./variant.ts";

const TASKS = 50;
const SIZE = 10;
const ACCOUNTS = 1000;
const BEGIN = "BEGIN";
const UPDATE = "UPDATE pgpool_bench_accounts SET abalance = abalance + $1 WHERE aid = $2";
const INSERT = "INSERT INTO pgpool_bench_history (aid, delta) VALUES ($1, $2)";
const COMMIT = "COMMIT";

const PGBENCH_SCRIPT = `\\set aid random(1, ${ACCOUNTS})
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgpool_bench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO pgpool_bench_history (aid, delta) VALUES (:aid, :delta);
COMMIT;
`;

function randomInt(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

async function admin(ctx: Context, statements: string[]): Promise<void> {
  const sql = postgres(ctx.dsn, { max: 1, onnotice: () => {} });
  try {
    for (const s of statements) await sql.unsafe(s);
  } finally {
    await sql.end();
  }
}

let created: Context | undefined;

/** The S3 scenario. */
export const s3Transaction: Scenario = {
  id: "S3",
  title: "transaction",
  description:
    `${TASKS} tasks, pool size ${SIZE}: checkout → BEGIN; UPDATE 1 of ${ACCOUNTS} rows; INSERT history; ` +
    "COMMIT → release",
  durationMs: (quick) => (quick ? 200 : 3000),
  warmMs: (quick) => (quick ? 100 : 1000),
  async setup(ctx) {
    await admin(ctx, [
      "DROP TABLE IF EXISTS pgpool_bench_history, pgpool_bench_accounts",
      "CREATE TABLE pgpool_bench_accounts (aid int PRIMARY KEY, abalance int NOT NULL DEFAULT 0) " +
      "WITH (fillfactor = 90)",
      `INSERT INTO pgpool_bench_accounts (aid) SELECT g FROM generate_series(1, ${ACCOUNTS}) g`,
      "CREATE TABLE pgpool_bench_history (aid int NOT NULL, delta int NOT NULL, mtime timestamptz NOT NULL DEFAULT now())",
      "VACUUM ANALYZE pgpool_bench_accounts",
    ]);
    created = ctx;
  },
  variants(ctx) {
    const rows: Variant[] = ctx.kinds.map((kind) =>
      inProcessVariant(
        ctx,
        kind,
        kind.checkoutApi,
        SIZE,
        (c, ms) =>
          runLoop(TASKS, ms, () =>
            c.checkout(async (q) => {
              const aid = randomInt(1, ACCOUNTS);
              const delta = randomInt(-5000, 5000);
              await q.query(BEGIN);
              await q.query(UPDATE, [delta, aid]);
              await q.query(INSERT, [aid, delta]);
              await q.query(COMMIT);
            })),
      )
    );
    if (ctx.asyncpg) {
      rows.push(
        asyncpgVariant(ctx, "async with pool.acquire()", SIZE, "transaction", TASKS, [
          BEGIN,
          UPDATE,
          INSERT,
          COMMIT,
        ]),
      );
    }
    if (ctx.pgbench) rows.push(pgbenchVariant(ctx, `-c ${SIZE}, same statements`, SIZE, PGBENCH_SCRIPT));
    return rows;
  },
  async teardown() {
    if (created) await admin(created, ["DROP TABLE IF EXISTS pgpool_bench_history, pgpool_bench_accounts"]);
    created = undefined;
  },
};

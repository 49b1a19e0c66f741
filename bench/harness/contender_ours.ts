/**
 * This library, three times: on its default driver with the default session
 * reset on release, and with `reset: null` (no reset statements are sent, but a
 * connection released inside a transaction is still rolled back; one-shots stay
 * pipelined); and on the postgres.js driver (`driver: "postgres"`) with the
 * default reset. `PGPOOL_BENCH_DEPTH` (set by `bench/peers.ts --depth=N`) sets
 * `pipelineDepth` of the first two.
 *
 * @module
 */

import process from "node:process";
import { createPool, type PoolOptions } from "../../mod.ts";
import type { Contender, ContenderKind } from "./contender.ts";

type Pool = Awaited<ReturnType<typeof createPool>>;

/** `pipelineDepth` for a sweep (`--depth=N`), else the pool's default. */
function depth(): PoolOptions {
  const n = Number(process.env.PGPOOL_BENCH_DEPTH);
  return Number.isInteger(n) && n >= 1 ? { pipelineDepth: n } : {};
}

function wrap(pool: Pool): Contender {
  return {
    async checkout(fn) {
      await using con = await pool.acquire();
      return await fn({ query: (sql, args) => con.fetchRow(sql, args) });
    },
    oneShot: (sql, args) => pool.fetchVal(sql, args),
    close: () => pool.close(),
  };
}

/** Our pool with its default reset. */
export const ours: ContenderKind = {
  key: "ours",
  label: "ours (default reset)",
  checkoutApi: "acquire()/release()",
  oneShotApi: "pool.fetchVal()",
  unavailable: () => undefined,
  open: async (dsn, size) => wrap(await createPool(dsn, { maxSize: size, ...depth() })),
};

/** Our pool without reset statements (`reset: null`). */
export const oursNoReset: ContenderKind = {
  key: "ours-noreset",
  label: "ours (reset disabled)",
  checkoutApi: "acquire()/release()",
  oneShotApi: "pool.fetchVal()",
  unavailable: () => undefined,
  open: async (dsn, size) => wrap(await createPool(dsn, { maxSize: size, reset: null, ...depth() })),
};

/** Our pool on the postgres.js driver, default reset. */
export const oursPgjs: ContenderKind = {
  key: "ours-pgjs",
  label: "ours (postgres.js driver)",
  checkoutApi: "acquire()/release()",
  oneShotApi: "pool.fetchVal()",
  unavailable: () => undefined,
  open: async (dsn, size) => wrap(await createPool(dsn, { maxSize: size, driver: "postgres" })),
};

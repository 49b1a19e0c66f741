/**
 * This library, three times: on its default driver with the default session
 * reset on release, and with `reset: null` (no reset statements are sent, but a
 * connection released inside a transaction is still rolled back, and unlike a
 * no-op `reset` hook one-shots stay pipelined); and on the postgres.js driver
 * (`driver: "postgres"`, which cannot pipeline) with the default reset.
 *
 * `PGPOOL_BENCH_DEPTH=N` (set by `bench/peers.ts --depth=N`) passes
 * `pipelineDepth: N` to the first two, for a sweep; unset, they use the
 * pool's default depth.
 *
 * @module
 */

import process from "node:process";
import { createPool, type PoolOptions } from "../../mod.ts";
import type { Contender, ContenderKind } from "./contender.ts";

type Pool = Awaited<ReturnType<typeof createPool>>;

/** The `pipelineDepth` asked for by `PGPOOL_BENCH_DEPTH`, or undefined for the pool's default. */
export function benchDepth(): number | undefined {
  const raw = process.env.PGPOOL_BENCH_DEPTH;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(
      `--depth / PGPOOL_BENCH_DEPTH must be an integer of at least 1, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** Options that pipeline: the sweep's depth when one is set. */
function pipelining(): PoolOptions {
  const depth = benchDepth();
  return depth === undefined ? {} : { pipelineDepth: depth };
}

function wrap(pool: Pool): Contender {
  return {
    async checkout(fn) {
      await using con = await pool.acquire();
      return await fn({ query: (sql, args) => con.fetchRow(sql, args) });
    },
    oneShot: (sql, args) => pool.fetchVal(sql, args),
    oneShotRow: (sql, args) => pool.fetchRow(sql, args),
    close: () => pool.close(),
  };
}

/** Our pool with its default reset. */
export const ours: ContenderKind = {
  key: "ours",
  label: "ours (default reset)",
  checkoutApi: "acquire()/release()",
  oneShotApi: "pool.fetchVal()",
  oneShotRowApi: "pool.fetchRow()",
  unavailable: () => undefined,
  open: async (dsn, size) => wrap(await createPool(dsn, { maxSize: size, ...pipelining() })),
};

/** Our pool without reset statements (`reset: null`): one-shots still pipelined. */
export const oursNoReset: ContenderKind = {
  key: "ours-noreset",
  label: "ours (reset disabled)",
  checkoutApi: "acquire()/release()",
  oneShotApi: "pool.fetchVal()",
  oneShotRowApi: "pool.fetchRow()",
  unavailable: () => undefined,
  open: async (dsn, size) => wrap(await createPool(dsn, { maxSize: size, reset: null, ...pipelining() })),
};

/** Our pool on the postgres.js driver, default reset. */
export const oursPgjs: ContenderKind = {
  key: "ours-pgjs",
  label: "ours (postgres.js driver)",
  checkoutApi: "acquire()/release()",
  oneShotApi: "pool.fetchVal()",
  oneShotRowApi: "pool.fetchRow()",
  unavailable: () => undefined,
  open: async (dsn, size) => wrap(await createPool(dsn, { maxSize: size, driver: "postgres" })),
};

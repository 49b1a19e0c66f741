/**
 * A server-side cursor over a large result: rows per second and heap growth
 * while iterating `n` rows (default 10 million) of a generate_series with a
 * short text column, on each driver and a few `prefetch` sizes. The heap is
 * sampled after a full collection every tenth of the way; growth is the
 * largest sample minus the first (memory stays flat: it does not grow with n).
 * For comparison, a plain `fetch()` of the same query (up to a million rows,
 * all held at once) gives the per-row cost without cursor rounds and what
 * holding the rows costs.
 *
 *   deno run -A tests/support/with_server.ts deno run -A --v8-flags=--expose-gc bench/cursor_memory.ts [n] [prefetch,...] [driver,...]
 *   deno run -A tests/support/with_server.ts bun bench/cursor_memory.ts [n] [prefetch,...] [driver,...]
 *
 * Needs DATABASE_URL (with_server.ts sets it for the command it runs).
 *
 * @module
 */

import process from "node:process";
import { createPool, type DriverName } from "../mod.ts";

const dsn = process.env.DATABASE_URL;
if (dsn === undefined) throw new Error("Set DATABASE_URL (or run under tests/support/with_server.ts)");
const n = Number(process.argv[2] ?? 10_000_000);
const prefetches = (process.argv[3] ?? "50,1000,10000").split(",").map(Number);
const drivers = (process.argv[4] ?? "native,postgres").split(",") as DriverName[];

function collect(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(full: boolean): void } };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else if (g.gc !== undefined) g.gc();
  else throw new Error("Run Deno with --v8-flags=--expose-gc");
}

function heap(): number {
  collect();
  return process.memoryUsage().heapUsed;
}

const mb = (bytes: number): string => (bytes / 1048576).toFixed(1);

async function run(driver: DriverName, prefetch: number): Promise<void> {
  await using pool = await createPool({ dsn, driver, minSize: 0, maxSize: 1 });
  await using con = await pool.acquire();
  const step = Math.max(1, Math.floor(n / 10));
  let count = 0;
  let sum = 0;
  let first = 0;
  let peak = 0;
  const started = performance.now();
  await con.transaction(async (tx) => {
    const cursor = tx.cursor<{ n: number; pad: string }>(
      "SELECT n, repeat('x', 20) AS pad FROM generate_series(1, $1::int) AS n",
      [n],
      { prefetch },
    );
    for await (const row of cursor) {
      count++;
      sum += row.n;
      if (count % step === 0) {
        const used = heap();
        if (first === 0) first = used;
        peak = Math.max(peak, used);
      }
    }
  });
  const seconds = (performance.now() - started) / 1000;
  if (count !== n || sum !== (n * (n + 1)) / 2) throw new Error(`read ${count} rows, expected ${n}`);
  console.log(
    `${driver.padEnd(8)} prefetch ${String(prefetch).padStart(6)}: ${n} rows in ${seconds.toFixed(1)} s ` +
      `(${Math.round(n / seconds)} rows/s); heap ${mb(first)} MB after 10%, peak ${mb(peak)} MB, ` +
      `growth ${mb(peak - first)} MB`,
  );
}

/** The same query fetched whole: rows/s without rounds, and the heap the rows take. */
async function baseline(driver: DriverName): Promise<void> {
  const rows = Math.min(n, 1_000_000);
  await using pool = await createPool({ dsn, driver, minSize: 0, maxSize: 1 });
  await using con = await pool.acquire();
  const before = heap();
  const started = performance.now();
  const all = await con.fetch<{ n: number; pad: string }>(
    "SELECT n, repeat('x', 20) AS pad FROM generate_series(1, $1::int) AS n",
    [rows],
  );
  const seconds = (performance.now() - started) / 1000;
  const held = heap() - before;
  if (all.length !== rows) throw new Error(`fetched ${all.length} rows, expected ${rows}`);
  console.log(
    `${driver.padEnd(8)} fetch() whole: ${rows} rows in ${seconds.toFixed(1)} s ` +
      `(${Math.round(rows / seconds)} rows/s); holding them takes ${mb(held)} MB`,
  );
}

const runtime = "Bun" in globalThis ? "bun" : "deno";
console.log(`cursor_memory on ${runtime}: ${n} rows`);
for (const driver of drivers) {
  await baseline(driver);
  for (const prefetch of prefetches) await run(driver, prefetch);
}

/**
 * Core overhead: ns per acquire + release over a no-op driver, with one caller
 * and with 1,000 concurrent callers, for maxSize 1, 10, 100 and 1,000.
 * Run: `deno task bench` or `bun run bench`. Prints a markdown table.
 */
import { BasePool as Pool } from "../src/core/pool.ts";
import { noopConnect } from "./noop_driver.ts";

const SIZES = [1, 10, 100, 1000];
const TOTAL_OPS =
  Number((globalThis as { process?: { env?: Record<string, string> } }).process?.env?.CORE_BENCH_OPS) ||
  400_000;

async function newPool(maxSize: number): Promise<Pool> {
  const pool = new Pool({
    connect: noopConnect,
    maxSize,
    minSize: maxSize,
    maxQueries: Number.MAX_SAFE_INTEGER,
  });
  await pool.init();
  return pool;
}

async function oneCaller(pool: Pool, ops: number): Promise<void> {
  for (let i = 0; i < ops; i++) {
    const con = await pool.acquire();
    await pool.release(con);
  }
}

async function manyCallers(pool: Pool, callers: number, ops: number): Promise<void> {
  const each = Math.ceil(ops / callers);
  await Promise.all(Array.from({ length: callers }, () => oneCaller(pool, each)));
}

async function measure(maxSize: number, callers: number): Promise<number> {
  const pool = await newPool(maxSize);
  const run = (ops: number) => callers === 1 ? oneCaller(pool, ops) : manyCallers(pool, callers, ops);
  await run(TOTAL_OPS / 4); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    await run(TOTAL_OPS);
    samples.push(((performance.now() - t0) * 1e6) / TOTAL_OPS);
  }
  await pool.close();
  samples.sort((a, b) => a - b);
  return samples[2]!; // median of 5
}

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const rows: string[] = [];
const all: number[] = [];
for (const callers of [1, 1000]) {
  const cells: string[] = [];
  for (const size of SIZES) {
    const ns = await measure(size, callers);
    all.push(ns);
    cells.push(ns.toFixed(0));
  }
  rows.push(`| ${callers} | ${cells.join(" | ")} |`);
}
console.log(`Core overhead on ${runtime}: ns per acquire+release (median of 5 runs of ${TOTAL_OPS} ops)\n`);
console.log(`| callers | ${SIZES.map((s) => `maxSize ${s}`).join(" | ")} |`);
console.log(`|---|${SIZES.map(() => "---").join("|")}|`);
for (const row of rows) console.log(row);
const spread = Math.max(...all) / Math.min(...all);
console.log(`\nmax ${Math.max(...all).toFixed(0)} ns, spread (max/min) ${spread.toFixed(2)}x`);

/**
 * The smallest loop that shows what the session reset costs on this machine:
 * 100 tasks on a pool of 10, acquire → `SELECT $1::int` → release, for our
 * pool with the default reset, our pool with the reset disabled, and
 * postgres.js `reserve()` (which resets nothing), round-robin, in one process.
 * Prints ops/s, client CPU µs per op and ratios to postgres.js.
 *
 *   deno run -A tests/support/with_server.ts deno run -A bench/reset_ceiling.ts [seconds=3] [rounds=3]
 *   deno run -A tests/support/with_server.ts bun bench/reset_ceiling.ts
 *
 * Needs DATABASE_URL (with_server.ts sets it for the command it runs).
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPool } from "../mod.ts";

const dsn = process.env.DATABASE_URL;
if (dsn === undefined) throw new Error("Set DATABASE_URL (or run under tests/support/with_server.ts)");
const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 3);

type Checkout = (n: number) => Promise<unknown>;

async function measure(checkout: Checkout, ms: number): Promise<{ ops: number; cpu: number }> {
  let ops = 0;
  const c0 = process.cpuUsage();
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (performance.now() < end) await checkout(ops++);
  }));
  const used = process.cpuUsage(c0);
  return { ops: ops / ((performance.now() - t0) / 1000), cpu: (used.user + used.system) / ops };
}

const withReset = await createPool(dsn, { maxSize: 10 });
const noReset = await createPool(dsn, { maxSize: 10, reset: async () => {} });
const sql = postgres(dsn, { max: 10, onnotice: () => {} });
const contenders: [string, Checkout][] = [
  ["ours (default reset)", async (n) => {
    await using con = await withReset.acquire();
    return await con.fetchRow("SELECT $1::int", [n]);
  }],
  ["ours (reset disabled)", async (n) => {
    await using con = await noReset.acquire();
    return await con.fetchRow("SELECT $1::int", [n]);
  }],
  ["postgres.js reserve()", async (n) => {
    const r = await sql.reserve();
    try {
      return await r`SELECT ${n}::int`;
    } finally {
      r.release();
    }
  }],
];
const results = new Map<string, { ops: number[]; cpu: number[] }>();
for (const [name, fn] of contenders) {
  await measure(fn, 500); // warm up
  results.set(name, { ops: [], cpu: [] });
}
for (let r = 0; r < rounds; r++) {
  for (const [name, fn] of contenders) {
    const m = await measure(fn, seconds * 1000);
    results.get(name)!.ops.push(m.ops);
    results.get(name)!.cpu.push(m.cpu);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.get("postgres.js reserve()")!.ops);
console.log("| contender | ops/s | ÷ postgres.js reserve() | client CPU µs/op |\n|---|--:|--:|--:|");
for (const [name, r] of results) {
  const ops = median(r.ops);
  console.log(`| ${name} | ${Math.round(ops)} | ${(ops / base).toFixed(2)}× | ${median(r.cpu).toFixed(1)} |`);
}
await withReset.close();
await noReset.close();
await sql.end({ timeout: 5 });

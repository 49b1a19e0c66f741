/**
 * Heap per idle connection, measured in one process: for each contender,
 * open N connections (each runs one `SELECT $1::int`, then goes idle), force
 * garbage collection, close them, collect again, and divide the difference by
 * N; three rounds, median. Contenders: our pool on the native engine, our pool on the
 * postgres.js driver, and postgres.js's own pool.
 *
 *   deno run -A tests/support/with_server.ts deno run -A --v8-flags=--expose-gc bench/heap_idle.ts [n=200]
 *   deno run -A tests/support/with_server.ts bun bench/heap_idle.ts [n=200]
 *
 * Needs DATABASE_URL (with_server.ts sets it for the command it runs) and a
 * server whose max_connections allows N more.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPool } from "../mod.ts";

const dsn = process.env.DATABASE_URL;
if (dsn === undefined) throw new Error("Set DATABASE_URL (or run under tests/support/with_server.ts)");
const n = Number(process.argv[2] ?? 200);

function collect(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(full: boolean): void } };
  for (let i = 0; i < 4; i++) {
    if (g.Bun !== undefined) g.Bun.gc(true);
    else if (g.gc !== undefined) g.gc();
    else throw new Error("Run Deno with --v8-flags=--expose-gc");
  }
}

/** Heap in use after the event loop went quiet and a full collection (JavaScriptCore's own figure under Bun). */
async function settle(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  collect();
  if ("Bun" in globalThis) {
    const jsc = await import("bun:jsc" as string) as { heapStats(): { heapSize: number } };
    return jsc.heapStats().heapSize;
  }
  return process.memoryUsage().heapUsed;
}

interface Opened {
  close(): Promise<unknown>;
}

type Contender = [string, () => Promise<Opened>];

const contenders: Contender[] = [
  ["ours (native engine)", async () => {
    const pool = await createPool(dsn, { maxSize: n, driver: "native" });
    const held = await Promise.all(Array.from({ length: n }, () => pool.acquire()));
    await Promise.all(held.map((c, i) => c.fetchVal("SELECT $1::int", [i])));
    await Promise.all(held.map((c) => pool.release(c)));
    return pool;
  }],
  ["ours (postgres.js driver)", async () => {
    const pool = await createPool(dsn, { maxSize: n, driver: "postgres" });
    const held = await Promise.all(Array.from({ length: n }, () => pool.acquire()));
    await Promise.all(held.map((c, i) => c.fetchVal("SELECT $1::int", [i])));
    await Promise.all(held.map((c) => pool.release(c)));
    return pool;
  }],
  ["postgres.js", async () => {
    const sql = postgres(dsn, { max: n, onnotice: () => {} });
    const held = await Promise.all(Array.from({ length: n }, () => sql.reserve()));
    await Promise.all(held.map((r, i) => r`SELECT ${i}::int`));
    for (const r of held) r.release();
    return { close: () => sql.end({ timeout: 5 }) };
  }],
];

/** Opens a contender, measures the heap, closes it; nothing of it stays reachable from here. */
async function heapWhileOpen(open: () => Promise<Opened>): Promise<number> {
  const opened = await open();
  const heap = await settle();
  await opened.close();
  return heap;
}

const perConnection = new Map<string, number[]>();
for (let round = 0; round < 3; round++) {
  for (const [name, open] of contenders) {
    // The heap with the connections open minus the heap once they are closed and unreachable.
    const withThem = await heapWhileOpen(open);
    const without = await settle();
    (perConnection.get(name) ?? perConnection.set(name, []).get(name)!).push((withThem - without) / n);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(perConnection.get("postgres.js")!);
console.log(`| contender | heap per idle connection | ÷ postgres.js |\n|---|--:|--:|`);
for (const [name, xs] of perConnection) {
  const m = median(xs);
  console.log(`| ${name} | ${Math.round(m).toLocaleString("en-US")} B | ${(m / base).toFixed(2)}× |`);
}

/**
 * Runtime adapters against postgres.js's `node:net` path, in the same runtime,
 * through the real pool and driver: checkout throughput (acquire, `SELECT 1`,
 * release with the reset, 32 callers on 8 connections) and 1 MB-row fetch
 * throughput (one connection). Rounds alternate between the adapters.
 *
 * Run: `deno run -A bench/adapter_bench.ts` or `bun run bench/adapter_bench.ts`.
 * Uses `DATABASE_URL` when set, else starts a throwaway server. Prints a
 * markdown table.
 */

import process from "node:process";
import { BasePool as Pool } from "../src/core/pool.ts";
import { bindConnect } from "../src/_bind.ts";
import type { Connector } from "../src/runtime/transport.ts";
import { nodeConnector } from "../src/runtime/node.ts";
import { getTestServer } from "../tests/support/pg_server.ts";

const env = process.env;
const SECONDS = Number(env.ADAPTER_BENCH_SECONDS) || 3;
const ROUNDS = Number(env.ADAPTER_BENCH_ROUNDS) || 3;
const ROW_BYTES = 1024 * 1024;

async function ownConnector(): Promise<{ name: string; connector: Connector } | undefined> {
  if ("Deno" in globalThis) {
    return { name: "deno", connector: (await import("../src/runtime/deno.ts")).denoConnector };
  }
  if ("Bun" in globalThis) {
    return { name: "bun", connector: (await import("../src/runtime/bun.ts")).bunConnector };
  }
  return undefined;
}

function newPool(dsn: string, connector: Connector, size: number): Pool {
  const { hook } = bindConnect(connector, () => ({}));
  return new Pool(dsn, { minSize: size, maxSize: size }, hook);
}

/** Checkouts per second: acquire, one trivial query, release. */
async function checkouts(dsn: string, connector: Connector): Promise<number> {
  const pool = newPool(dsn, connector, 8);
  await pool.init();
  try {
    let count = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const con = await pool.acquire();
        try {
          await con.fetchVal("SELECT 1");
        } finally {
          await pool.release(con);
        }
        count++;
      }
    };
    const started = performance.now();
    const timer = setTimeout(() => stop = true, SECONDS * 1000);
    await Promise.all(Array.from({ length: 32 }, worker));
    clearTimeout(timer);
    return count / ((performance.now() - started) / 1000);
  } finally {
    await pool.close();
  }
}

/** MB per second fetching 1 MB rows, four per query, on one connection. */
async function bigRows(dsn: string, connector: Connector): Promise<number> {
  const pool = newPool(dsn, connector, 1);
  await pool.init();
  try {
    const con = await pool.acquire();
    let bytes = 0;
    const started = performance.now();
    while (performance.now() - started < SECONDS * 1000) {
      const rows = await con.fetch<{ r: string }>(
        `SELECT repeat('x', ${ROW_BYTES}) AS r FROM generate_series(1, 4)`,
      );
      for (const row of rows) bytes += row.r.length;
    }
    const seconds = (performance.now() - started) / 1000;
    await pool.release(con);
    return bytes / (1024 * 1024) / seconds;
  } finally {
    await pool.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const server = await getTestServer();
const own = await ownConnector();
const contenders: { name: string; connector: Connector }[] = [{ name: "node:net", connector: nodeConnector }];
if (own) contenders.unshift(own);
const runtime = "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node";

const results = new Map<string, { checkouts: number[]; mbs: number[] }>();
for (const c of contenders) results.set(c.name, { checkouts: [], mbs: [] });
for (let round = 0; round < ROUNDS; round++) {
  for (const c of round % 2 === 0 ? contenders : [...contenders].reverse()) {
    const r = results.get(c.name)!;
    r.checkouts.push(await checkouts(server.dsn, c.connector));
    r.mbs.push(await bigRows(server.dsn, c.connector));
  }
}

console.log(`\n${runtime}: median of ${ROUNDS} rounds of ${SECONDS}s each\n`);
console.log("| adapter | checkouts/s (acquire + SELECT 1 + release) | 1 MB rows, MB/s |");
console.log("|---|---:|---:|");
for (const c of contenders) {
  const r = results.get(c.name)!;
  console.log(`| ${c.name} | ${median(r.checkouts).toFixed(0)} | ${median(r.mbs).toFixed(0)} |`);
}
process.exit(0);

/**
 * Native vs postgres.js driver in one run: 10 connections × 100 tasks, a
 * checkouts-like loop (query + reset) and a plain query loop; prints ratios.
 * Run: `deno run -A bench/native_loop.ts` (needs a test server).
 */
import { getTestServer } from "../tests/support/pg_server.ts";
import { createNativeDriver } from "../src/drivers/native/driver.ts";
import { createPostgresDriver } from "../src/drivers/postgresjs/driver.ts";
import { nodeConnector } from "../src/runtime/node.ts";
import type { Driver, DriverConnection } from "../src/core/driver.ts";

const CONNECTIONS = 10;
const TASKS = 100;
const ROUNDS = 3;

async function run(driver: Driver, dsn: string, reset: boolean): Promise<number> {
  const cons: DriverConnection[] = [];
  for (let i = 0; i < CONNECTIONS; i++) cons.push(await driver.connect({ dsn }));
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    await Promise.all(cons.map(async (con) => {
      for (let t = 0; t < TASKS; t++) {
        await con.query("SELECT $1::int AS n", [t]);
        if (reset) await con.reset({ query: true });
      }
    }));
    best = Math.min(best, performance.now() - t0);
  }
  for (const con of cons) await con.close();
  return (CONNECTIONS * TASKS) / (best / 1000);
}

const server = await getTestServer();
const native = createNativeDriver(nodeConnector);
const pgjs = createPostgresDriver(nodeConnector);
for (const [label, reset] of [["query + reset", true], ["plain query", false]] as const) {
  const p = await run(pgjs, server.dsn, reset);
  const n = await run(native, server.dsn, reset);
  console.log(
    `${label}: native ${n.toFixed(0)}/s, postgres.js ${p.toFixed(0)}/s, ratio ${(n / p).toFixed(2)}x`,
  );
}
Deno.exit(0);

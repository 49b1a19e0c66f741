/**
 * S5 scale and fairness: a pool of 100 and 5,000 concurrent tasks, each
 * looping acquire → `SELECT $1::int` → release. Besides throughput it records
 * every acquire wait (p50, p99, max, mean, max/mean; fair FIFO keeps max/mean
 * small) and how many operations the least served task completed. Once per
 * contender, before timing, it measures heap bytes per idle connection and per
 * queued waiter.
 *
 * @module
 */

import { asyncpgVariant } from "./contender_asyncpg.ts";
import { pgbenchVariant } from "./contender_pgbench.ts";
import { type Contender, holdAll, runtime, sleep } from "./contender.ts";
import { LatencyLog, mean, quantile, type Sample, sampleFrom } from "./stats.ts";
import type { Scenario, Variant } from "./variant.ts";

const TASKS = 5000;
const SIZE = 100;
const SQL = "SELECT $1::int";

/** Forces a full garbage collection when the runtime allows it; false when it cannot. */
function collect(): boolean {
  const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (runtime === "bun" && g.Bun) {
    g.Bun.gc(true); // JSC scans the stack conservatively: Bun's figures are rougher
    g.Bun.gc(true);
    return true;
  }
  if (typeof g.gc === "function") {
    g.gc();
    g.gc();
    return true;
  }
  return false;
}

function heapUsed(): number {
  const p = (globalThis as unknown as { process: { memoryUsage(): { heapUsed: number } } }).process;
  return p.memoryUsage().heapUsed;
}

/** Heap bytes per idle connection and per queued waiter, measured around opening `kind`. */
async function measureHeap(
  open: () => Promise<Contender>,
): Promise<{ contender: Contender; once: Record<string, number> }> {
  const canCollect = collect();
  const before = heapUsed();
  const contender = await open();
  await holdAll(contender, SIZE); // every connection opened, then idle
  await sleep(20);
  collect();
  const idle = heapUsed();
  let perWaiter = Number.NaN;
  let waiters: Promise<unknown>[] = [];
  await holdAll(contender, SIZE, async () => {
    collect();
    const held = heapUsed();
    waiters = Array.from({ length: TASKS }, () => contender.checkout(() => Promise.resolve()));
    await sleep(50);
    collect();
    perWaiter = (heapUsed() - held) / TASKS;
  });
  await Promise.all(waiters);
  const once: Record<string, number> = canCollect
    ? { heapPerIdleConnection: Math.round((idle - before) / SIZE), heapPerWaiter: Math.round(perWaiter) }
    : {};
  return { contender, once };
}

/** `tasks` loops of checkout → query → release, recording each acquire wait. */
async function runWaiters(c: Contender, tasks: number, ms: number): Promise<Sample> {
  const latencies = new LatencyLog();
  const waits = new LatencyLog();
  const perTask = new Uint32Array(tasks);
  let ops = 0;
  let counter = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const one = async (t: number): Promise<void> => {
    while (performance.now() < end) {
      const start = performance.now();
      const i = ++counter;
      await c.checkout((q) => {
        waits.push(performance.now() - start);
        return q.query(SQL, [i]);
      });
      latencies.push(performance.now() - start);
      perTask[t]!++;
      ops++;
    }
  };
  await Promise.all(Array.from({ length: tasks }, (_, t) => one(t)));
  const seconds = (performance.now() - t0) / 1000;
  const w = waits.sorted();
  const waitMean = mean(w);
  const waitMax = w.length > 0 ? w[w.length - 1]! : Number.NaN;
  let starved = 0;
  let minOps = Infinity;
  for (const n of perTask) {
    if (n === 0) starved++;
    if (n < minOps) minOps = n;
  }
  return sampleFrom(ops, seconds, latencies, {
    waitP50: quantile(w, 0.5),
    waitP99: quantile(w, 0.99),
    waitMax,
    waitMean,
    maxOverMean: waitMax / waitMean,
    starved,
    minOpsPerWaiter: minOps,
  });
}

/** The S5 scenario. */
export const s5Scale: Scenario = {
  id: "S5",
  title: "scale and fairness",
  description: `${TASKS} tasks, pool size ${SIZE}: acquire → \`${SQL}\` → release; acquire waits recorded`,
  durationMs: (quick) => (quick ? 300 : 4000),
  reps: (quick) => (quick ? 2 : undefined), // each repetition also drains 5,000 queued waiters
  warmMs: (quick) => (quick ? 0 : 1000), // the heap measurement already ran 5,000 checkouts
  variants(ctx) {
    const rows: Variant[] = ctx.kinds.map((kind) => {
      let contender: Contender | undefined;
      const variant: Variant = {
        key: kind.key,
        label: kind.label,
        api: kind.checkoutApi,
        async open() {
          const measured = await measureHeap(() => kind.open(ctx.dsn, SIZE));
          contender = measured.contender;
          variant.once = measured.once;
        },
        async warm(ms) {
          await runWaiters(contender!, TASKS, ms);
        },
        run: (ms) => runWaiters(contender!, TASKS, ms),
        async close() {
          await contender?.close();
          contender = undefined;
        },
      };
      return variant;
    });
    if (ctx.asyncpg) {
      rows.push(asyncpgVariant(ctx, "async with pool.acquire()", SIZE, "waiters", TASKS, [SQL]));
    }
    if (ctx.pgbench) {
      // No waiters: the server's own rate with 100 busy connections, to read S5's drop from S1 against.
      const script = "\\set i random(1, 1000000)\nSELECT :i::int;\n";
      rows.push(pgbenchVariant(ctx, `-c ${SIZE}, same statement, no waiters`, SIZE, script));
    }
    return rows;
  },
};

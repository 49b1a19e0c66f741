/**
 * What the session reset costs pipelined one-shots (issue 16, point 4): 100 tasks on a pool of 10
 * running `pool.fetchVal("SELECT $1::int", [i])` as fast as they can, for each variant in turn
 * (round-robin, `rounds` times, a fresh pool per measurement), in one process. Prints the median
 * one-shots/s, each variant's ratio to the default reset (overall, and measured in the same round),
 * and the client's and the server's CPU µs per one-shot (the server's: the pool's backends, read
 * from /proc, so Linux with the server on this machine).
 *
 *   deno run -A tests/support/with_server.ts deno run -A bench/reset_cost.ts [seconds=2] [rounds=5]
 *   deno run -A tests/support/with_server.ts bun bench/reset_cost.ts
 *
 * Needs DATABASE_URL (with_server.ts sets it for the command it runs). The variants are what the
 * shipped code can do: the default reset (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
 * RESET ALL;`, one Bind/Execute each and one Sync behind each one-shot), `reset: null` (nothing
 * behind a one-shot that binds a parameter) and `pipelineDepth: 1` (one one-shot at a time per
 * connection).
 *
 * Measured once (not reproducible with the shipped code) with a temporary hook in the native reset
 * that chose its statements: a reset lighter than the default is not sound, see
 * tests/integration/reset_proof_test.ts. One run per runtime, all variants in one process, 2 s × 7
 * rounds, medians; PostgreSQL 15 on loopback, a 2-core machine shared with other jobs (load 4–5, so
 * the rates swing by 2× between rounds: the ratio to the default reset measured in the same round
 * and the CPU per one-shot are the steadier figures). CPU is µs per one-shot, client / server.
 *
 * | variant                        | Deno ÷ default |    Deno CPU | Bun ÷ default |     Bun CPU |
 * | ------------------------------ | -------------: | ----------: | ------------: | ----------: |
 * | default reset (4 + Sync)       |          1.00× | 15.0 / 24.5 |         1.00× | 12.6 / 21.6 |
 * | without pg_advisory_unlock_all |          1.09× | 14.5 / 19.8 |         1.18× | 11.0 / 18.5 |
 * | without CLOSE ALL              |          1.03× | 14.6 / 21.7 |         1.09× | 11.6 / 20.3 |
 * | without UNLISTEN *             |          1.08× | 13.4 / 21.3 |         1.07× | 11.2 / 20.3 |
 * | without RESET ALL              |          1.12× | 13.3 / 21.4 |         1.10× | 12.1 / 19.9 |
 * | only RESET ALL                 |          1.21× | 13.5 / 18.6 |         1.39× |  9.6 / 15.8 |
 * | only `SELECT 1` (+ Sync)       |          1.16× | 13.5 / 20.0 |         1.30× |  9.9 / 16.9 |
 * | only a Sync (no statement)     |          1.37× | 11.6 / 15.3 |         1.45× |  8.7 / 14.0 |
 * | `reset: null` (nothing)        |          2.28× |  7.2 /  9.6 |         2.12× |  6.0 /  8.8 |
 *
 * (Default reset in that run: 36k one-shots/s on Deno, 44k on Bun; `reset: null` 80k and 94k.)
 * Read as CPU, client and server together: the reset costs about 23 µs (Deno) / 19 µs (Bun) per
 * one-shot; its round alone — a Sync, the ReadyForQuery and the flush it makes the server do, one
 * more answer for the client to read — costs about 10 / 8 µs of that; the four statements the rest,
 * about 3 µs each (the first one in a round a little more: it starts and ends the transaction).
 * `CLOSE ALL` is among the cheapest (3.2 / 2.3 µs CPU, 7–8% of the CPU a one-shot costs with the
 * default reset; 1.03× / 1.09× the rate): leaving it out when not needed would have gained a few
 * percent, had it been sound. It is not: a cursor `WITH HOLD` declared from a function, a `DO`
 * block or a procedure reaches the client with no `DECLARE CURSOR` tag; and behind a pipelined
 * one-shot the reset is written before its statement's tag is read anyway.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { createPool, type PoolOptions } from "../mod.ts";

const dsn = process.env.DATABASE_URL;
if (dsn === undefined) throw new Error("Set DATABASE_URL (or run under tests/support/with_server.ts)");
const seconds = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 5);
const TASKS = 100;

/** One way of running the one-shots. */
interface Variant {
  name: string;
  options: PoolOptions;
}

const variants: Variant[] = [
  { name: "default reset", options: {} },
  { name: "reset: null", options: { reset: null } },
  { name: "pipelineDepth: 1", options: { pipelineDepth: 1 } },
];

/** CPU time (µs) the given server processes used so far, from /proc (Linux); NaN where it is not readable. */
function serverCpu(pids: readonly number[]): number {
  try {
    let ticks = 0;
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (clock ticks of 10 ms)
    }
    return ticks * 10_000;
  } catch {
    return NaN;
  }
}

/**
 * One-shots per second, and client and server (the pool's backends) CPU µs per one-shot, of one
 * variant on a fresh pool.
 */
async function measure(variant: Variant, ms: number): Promise<{ ops: number; cpu: number; server: number }> {
  const pool = await createPool(dsn!, {
    minSize: 10,
    maxSize: 10,
    applicationName: "reset_cost",
    ...variant.options,
  });
  try {
    const run = async (until: number): Promise<number> => {
      let n = 0;
      await Promise.all(Array.from({ length: TASKS }, async (_, k) => {
        while (performance.now() < until) {
          await pool.fetchVal("SELECT $1::int", [k]);
          n++;
        }
      }));
      return n;
    };
    await run(performance.now() + 300); // warm: every connection prepares its statements
    const pids = await pool.fetchVal<number[]>(
      "SELECT array_agg(pid) FROM pg_stat_activity WHERE application_name = 'reset_cost'",
    ) ?? [];
    const s0 = serverCpu(pids);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const n = await run(t0 + ms);
    const used = process.cpuUsage(c0);
    const elapsed = performance.now() - t0;
    return {
      ops: n / (elapsed / 1000),
      cpu: (used.user + used.system) / n,
      server: (serverCpu(pids) - s0) / n,
    };
  } finally {
    await pool.close({ timeout: 5 });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = new Map<string, { ops: number[]; cpu: number[]; server: number[] }>(
  variants.map((v) => [v.name, { ops: [], cpu: [], server: [] }]),
);
for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    const m = await measure(v, seconds * 1000);
    const into = results.get(v.name)!;
    into.ops.push(m.ops);
    into.cpu.push(m.cpu);
    into.server.push(m.server);
  }
}
const base = median(results.get("default reset")!.ops);
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
console.log(`${runtime}: ${TASKS} tasks, pool 10, ${seconds} s × ${rounds} rounds, medians`);
const baseline = results.get("default reset")!;
console.log(
  "| variant | one-shots/s | ÷ default reset | ÷ default, same round | client CPU µs/op | server CPU µs/op | all rounds |\n" +
    "|---|--:|--:|--:|--:|--:|---|",
);
for (const [name, r] of results) {
  const ops = median(r.ops);
  // Each round measures every variant within seconds of the default: its ratio drifts less with the load.
  const paired = median(r.ops.map((x, i) => x / baseline.ops[i]!));
  const rates = r.ops.map((x) => Math.round(x / 1000)).join(" ");
  console.log(
    `| ${name} | ${Math.round(ops)} | ${(ops / base).toFixed(2)}× | ${paired.toFixed(2)}× | ${
      median(r.cpu).toFixed(1)
    } | ${median(r.server).toFixed(1)} | ${rates} k |`,
  );
}

/**
 * Many isolates: N worker processes (each an isolate of its own, as on Deno Deploy or a fleet of Bun
 * instances), each with its own small pool, under the same load, against one PostgreSQL — directly and
 * through PgBouncer in transaction mode — to show how many server backends they use, what throughput
 * and latency they get, and what fails when N × maxSize exceeds the server's `max_connections`.
 *
 *   deno task bench:isolates [--workers=20] [--runtime=deno|bun] [--seconds=2.5] [--reps=3] [--max-size=4]
 *                            [--over-max-size=8] [--concurrency=8]
 *                            [--cases=direct,over-direct,pgbouncer,over-pgbouncer]
 *                            [--max-connections=100] [--pgbouncer-pool-size=20] [--no-write]
 *   bun run bench:isolates   [same flags]
 *
 * Every flag can also be given as an environment variable: ISOLATES_WORKERS, ISOLATES_RUNTIME,
 * ISOLATES_SECONDS, ISOLATES_REPS, ISOLATES_MAX_SIZE, ISOLATES_OVER_MAX_SIZE, ISOLATES_CONCURRENCY,
 * ISOLATES_CASES, ISOLATES_MAX_CONNECTIONS, ISOLATES_PGBOUNCER_POOL_SIZE; ISOLATES_DEBUG=1 prints each
 * worker's pool stats and PgBouncer's. The workers run on `--runtime` (default: the runtime running this
 * script). `--over-max-size` sets the per-worker maxSize of the two oversubscribed cases (default: the
 * larger of 2 × maxSize and what makes N × maxSize 1.5 × max_connections). `PGPOOL_DRIVER` picks the
 * workers' driver as usual.
 *
 * Starts its own throwaway PostgreSQL (tests/support/pg_server.ts, `max_connections` 100) and a real
 * PgBouncer (tests/support/pgbouncer.ts, Debian's `pgbouncer`, transaction mode, `default_pool_size`
 * 20) and stops both at the end. Spawns the N workers (bench/isolates_worker.ts) once; then each phase
 * (one case, one repetition) has every worker create a pool of its own, starts them together, samples
 * the server's client backends every 50 ms while they run `concurrency` tasks of a fixed mix (3 one-shot
 * `SELECT … WHERE id = $1` for 1 short write transaction `UPDATE` + `INSERT`) for `seconds`, and
 * collects their numbers after each worker closed its pool. A 1 s warm-up phase (not counted) comes
 * first; repetitions go round-robin over the cases, each in a rotated order, so a busy moment of a
 * shared machine does not fall on one case only; figures are medians over repetitions. At the end the
 * workers' stdin is closed and they exit by themselves; one still alive 10 s later is killed and
 * counted.
 *
 * Prints a markdown table on stdout (progress on stderr) and writes it to
 * bench/results/isolates-<runtime>.md unless `--no-write`. The run is bounded: a watchdog ends it
 * (killing the workers) if it overruns its time budget.
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect, type Connection } from "../mod.ts";
import { startPostgres } from "../tests/support/pg_server.ts";
import { type PgBouncerInstance, pgBouncerVersion, startPgBouncer } from "../tests/support/pgbouncer.ts";
import type { PhaseMessage, WorkerConfig, WorkerResult } from "./isolates_worker.ts";

type Runtime = "deno" | "bun";
type CaseKey = "direct" | "over-direct" | "pgbouncer" | "over-pgbouncer";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKER = fileURLToPath(new URL("./isolates_worker.ts", import.meta.url));
const ROLE = "isolates";
const ITEMS = 1000;
const COUNTERS = 100;
const WRITE_EVERY = 4;
const START_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 20_000;
const WARM_UP_MS = 1000;
const EXIT_GRACE_MS = 10_000;
const SAMPLE_EVERY_MS = 50;

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

function option(name: string, env: string): string | undefined {
  const arg = process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (arg !== undefined) return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : "";
  return process.env[env] || undefined;
}

function numberOption(name: string, env: string, fallback: number, min = 1, integer = true): number {
  const raw = option(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(
      `--${name} must be ${integer ? "an integer" : "a number"} of at least ${min}: got ${raw}`,
    );
  }
  return n;
}

function currentRuntime(): Runtime {
  return "Bun" in globalThis ? "bun" : "deno";
}

const runtime: Runtime = (() => {
  const r = option("runtime", "ISOLATES_RUNTIME") ?? currentRuntime();
  if (r !== "deno" && r !== "bun") throw new Error(`--runtime must be deno or bun: got ${r}`);
  return r;
})();
const workers = numberOption("workers", "ISOLATES_WORKERS", 20);
const seconds = numberOption("seconds", "ISOLATES_SECONDS", 2.5, 0.1, false);
const reps = numberOption("reps", "ISOLATES_REPS", 3);
const maxSize = numberOption("max-size", "ISOLATES_MAX_SIZE", 4);
const concurrency = numberOption("concurrency", "ISOLATES_CONCURRENCY", 8);
const maxConnections = numberOption("max-connections", "ISOLATES_MAX_CONNECTIONS", 100, 10);
const bouncerPoolSize = numberOption("pgbouncer-pool-size", "ISOLATES_PGBOUNCER_POOL_SIZE", 20);
const overMaxSize = numberOption(
  "over-max-size",
  "ISOLATES_OVER_MAX_SIZE",
  Math.max(2 * maxSize, Math.ceil((1.5 * maxConnections) / workers)),
);
const write = option("no-write", "ISOLATES_NO_WRITE") === undefined;
const ALL_CASES: CaseKey[] = ["direct", "over-direct", "pgbouncer", "over-pgbouncer"];
const cases: CaseKey[] = (() => {
  const list = (option("cases", "ISOLATES_CASES") ?? ALL_CASES.join(",")).split(",").map((s) => s.trim());
  for (const c of list) {
    if (!ALL_CASES.includes(c as CaseKey)) {
      throw new Error(`--cases takes a comma-separated subset of ${ALL_CASES.join(", ")}: got ${c}`);
    }
  }
  return ALL_CASES.filter((c) => list.includes(c));
})();

/** The command that runs a TypeScript file on the workers' runtime. */
function runtimeCommand(): string[] {
  const self = currentRuntime() === runtime ? process.execPath : runtime;
  return runtime === "deno" ? [self, "run", "-A", WORKER] : [self, "run", WORKER];
}

function runtimeVersion(): string {
  const r = spawnSync(runtimeCommand()[0]!, ["--version"], { encoding: "utf8" });
  const first = (r.stdout ?? "").split("\n")[0]?.trim() ?? "";
  const v = /(\d+\.\d+\.\d+)/.exec(first)?.[1];
  return `${runtime === "deno" ? "Deno" : "Bun"} ${v ?? "(unknown version)"}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface CaseSpec {
  key: CaseKey;
  title: string;
  through: "server" | "PgBouncer";
  poolMode: "session" | "transaction";
  maxSize: number;
}

/** One case run once by every worker. */
interface PhaseResult {
  spec: CaseSpec;
  peakBackends: number;
  meanBackends: number;
  opsPerS: number;
  p50: number;
  p99: number;
  errors: Record<string, number>;
  messages: Record<string, string>;
  opened: number;
  connectErrors: number;
  /** The workers' CPU time per successful operation, µs. */
  cpuUsPerOp: number;
  /** Workers that did not report (they died). */
  missing: number;
}

/** One spawned worker and what it said. */
class Worker {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly #received = new Map<string, unknown>();
  readonly #waiting = new Map<string, { resolve: (m: unknown) => void; reject: (e: Error) => void }>();
  #stderr = "";
  #gone = false;

  constructor(config: WorkerConfig) {
    const [cmd, ...args] = runtimeCommand();
    this.child = spawn(cmd!, args, {
      cwd: ROOT,
      env: { ...process.env, ISOLATES_WORKER: JSON.stringify(config) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdin!.on("error", () => {}); // a worker that died: its exit says so
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code) => {
        this.#gone = true;
        const why = new Error(`Worker ${config.id} exited (${code}): ${this.#stderr.trim().slice(-500)}`);
        for (const w of this.#waiting.values()) w.reject(why);
        this.#waiting.clear();
        resolve(code);
      });
    });
    let buffered = "";
    this.child.stdout!.on("data", (d: Uint8Array) => {
      buffered += new TextDecoder().decode(d);
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let msg: { type?: string; phase?: number };
        try {
          msg = JSON.parse(line);
        } catch {
          continue; // not ours
        }
        const key = `${msg.type}:${msg.phase ?? ""}`;
        const waiter = this.#waiting.get(key);
        if (waiter) {
          this.#waiting.delete(key);
          waiter.resolve(msg);
        } else this.#received.set(key, msg);
      }
    });
    this.child.stderr!.on("data", (d: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(d)).slice(-4000);
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The message of this type (and phase); rejects if the worker exits first. */
  message<T>(type: string, phase?: number): Promise<T> {
    const key = `${type}:${phase ?? ""}`;
    if (this.#received.has(key)) {
      const msg = this.#received.get(key);
      this.#received.delete(key);
      return Promise.resolve(msg as T);
    }
    if (this.#gone) return Promise.reject(new Error(`Worker exited: ${this.#stderr.trim().slice(-500)}`));
    return new Promise((resolve, reject) =>
      this.#waiting.set(key, { resolve: resolve as (m: unknown) => void, reject })
    );
  }

  send(message: object): void {
    if (!this.#gone) this.child.stdin!.write(JSON.stringify(message) + "\n");
  }

  /** Closes its stdin: the worker has nothing left to do and should exit by itself. */
  end(): void {
    this.child.stdin!.end();
  }

  isAlive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(): void {
    if (this.isAlive()) this.child.kill("SIGKILL");
  }
}

const everyWorker = new Set<Worker>();

function killAllWorkers(): void {
  for (const w of everyWorker) w.kill();
}

/** Resolves `p`, or rejects with `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function backends(admin: Connection): Promise<number> {
  return await admin.fetchVal<number>(
    "SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = $1",
    [ROLE],
  ) ?? 0;
}

function median(values: number[]): number {
  const xs = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

let phaseCounter = 0;

/** Every worker runs `spec` once against `dsn` for `durationMs`. */
async function runPhase(
  list: Worker[],
  spec: CaseSpec,
  dsn: string,
  durationMs: number,
  admin: Connection,
): Promise<PhaseResult> {
  const phase = ++phaseCounter;
  const message: PhaseMessage = {
    type: "phase",
    phase,
    dsn,
    poolMode: spec.poolMode,
    maxSize: spec.maxSize,
    durationMs,
  };
  for (const w of list) w.send(message);
  await within(
    Promise.all(list.map((w) => w.message("ready", phase))),
    READY_TIMEOUT_MS,
    `${spec.title}: every worker did not create its pool`,
  );
  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push(await backends(admin));
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  for (const w of list) w.send({ type: "go" });
  const results = await within(
    Promise.all(list.map((w) => w.message<WorkerResult>("result", phase).catch(() => undefined))),
    durationMs + 30_000,
    `${spec.title}: every worker did not report`,
  );
  sampling = false;
  await sampler;
  if (process.env.ISOLATES_DEBUG) {
    for (const w of list) if (w.stderr) log(`  worker stderr: ${w.stderr.trim()}`);
  }

  const ok = results.filter((r): r is WorkerResult => r !== undefined);
  const all = new Float64Array(ok.reduce((n, r) => n + r.latencies.length, 0));
  let at = 0;
  for (const r of ok) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  all.sort();
  const errors: Record<string, number> = {};
  const messages: Record<string, string> = {};
  for (const r of ok) {
    for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
    for (const [code, m] of Object.entries(r.messages)) messages[code] ??= m;
  }
  const ops = ok.reduce((s, r) => s + r.ops, 0);
  const result: PhaseResult = {
    spec,
    peakBackends: Math.max(0, ...samples),
    meanBackends: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : 0,
    opsPerS: ok.reduce((s, r) => s + r.ops / (r.elapsedMs / 1000), 0),
    p50: quantile(all, 0.5),
    p99: quantile(all, 0.99),
    errors,
    messages,
    opened: ok.reduce((s, r) => s + r.opened, 0),
    connectErrors: ok.reduce((s, r) => s + r.connectErrors, 0),
    cpuUsPerOp: ok.reduce((s, r) => s + r.cpuUs, 0) / Math.max(1, ops),
    missing: list.length - ok.length,
  };
  return result;
}

function formatErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1]);
  return entries.length === 0
    ? "none"
    : entries.map(([c, n]) => `${c} ×${n.toLocaleString("en-US")}`).join(", ");
}

function fmt(n: number, digits = 1): string {
  if (Number.isNaN(n)) return "–";
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits);
}

interface CaseSummary {
  spec: CaseSpec;
  phases: PhaseResult[];
  opsPerS: number;
}

function summarize(spec: CaseSpec, phases: PhaseResult[]): CaseSummary {
  return { spec, phases, opsPerS: median(phases.map((p) => p.opsPerS)) };
}

function table(summaries: CaseSummary[], version: string): string {
  const base = summaries.find((r) => r.spec.key === "direct");
  const lines = [
    `| ${version}: case | through | maxSize per worker (× ${workers}) | server backends (peak / mean) | ops/s (min–max) | vs direct | p50 ms | p99 ms | workers' CPU µs/op | failed operations (by code, all reps) |`,
    "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
  ];
  for (const r of summaries) {
    const ps = r.phases;
    const errors: Record<string, number> = {};
    for (const p of ps) for (const [c, n] of Object.entries(p.errors)) errors[c] = (errors[c] ?? 0) + n;
    const missing = ps.reduce((s, p) => s + p.missing, 0);
    const vs = base && base.opsPerS > 0 ? `${(r.opsPerS / base.opsPerS).toFixed(2)}×` : "–";
    const rates = ps.map((p) => p.opsPerS);
    lines.push(
      `| ${r.spec.title} | ${
        r.spec.through === "server" ? "server" : `PgBouncer (transaction, pool ${bouncerPoolSize})`
      } | ` +
        `${r.spec.maxSize} (${r.spec.maxSize * workers}) | ` +
        `${Math.max(...ps.map((p) => p.peakBackends))} / ${fmt(median(ps.map((p) => p.meanBackends)))} | ` +
        `${fmt(r.opsPerS)} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}) | ${vs} | ` +
        `${fmt(median(ps.map((p) => p.p50)), 2)} | ${fmt(median(ps.map((p) => p.p99)), 2)} | ` +
        `${fmt(median(ps.map((p) => p.cpuUsPerOp)))} | ${formatErrors(errors)}${
          missing ? ` (${missing} worker reports missing)` : ""
        } |`,
    );
  }
  return lines.join("\n");
}

function commit(): string {
  const run = (args: string[]): string =>
    spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).stdout?.trim() ?? "";
  const dirty = run(["status", "--porcelain", "--", "src", "mod.ts", "deno.ts", "bun.ts"]) !== "";
  return run(["rev-parse", "--short", "HEAD"]) + (dirty ? " plus uncommitted src/ changes" : "");
}

async function main(): Promise<void> {
  const began = performance.now();
  const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(" ");
  const version = runtimeVersion();
  // Spawning, then per phase ready + run + report, then the exits, plus the servers: past this it hangs.
  const budgetMs = 60_000 + START_TIMEOUT_MS + EXIT_GRACE_MS +
    (cases.length * reps + 1) * (READY_TIMEOUT_MS + seconds * 1000 + 30_000 + 10_000);
  const watchdog = setTimeout(() => {
    log(`isolates bench: over its ${budgetMs / 1000} s budget; killing the workers`);
    killAllWorkers();
    process.exit(2);
  }, budgetMs);
  (watchdog as { unref?: () => void }).unref?.();

  log(`starting PostgreSQL (max_connections ${maxConnections}) and PgBouncer`);
  await using server = await startPostgres({ config: { max_connections: String(maxConnections) } });
  const admin = await connect(server.dsn);
  let bouncer: PgBouncerInstance | undefined;
  try {
    const serverInfo = await admin.fetchRow<{ v: string; m: string; r: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('max_connections') AS m, " +
        "current_setting('superuser_reserved_connections') AS r",
    );
    for (
      const sql of [
        `CREATE ROLE ${ROLE} LOGIN`,
        "CREATE TABLE isolates_items (id int PRIMARY KEY, name text NOT NULL)",
        `INSERT INTO isolates_items SELECT g, 'item ' || g FROM generate_series(1, ${ITEMS}) g`,
        "CREATE TABLE isolates_counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)",
        `INSERT INTO isolates_counters (id) SELECT g FROM generate_series(1, ${COUNTERS}) g`,
        "CREATE TABLE isolates_history (id bigserial PRIMARY KEY, counter_id int NOT NULL, worker int NOT NULL, " +
        "at timestamptz NOT NULL DEFAULT now())",
        `GRANT SELECT ON isolates_items TO ${ROLE}`,
        `GRANT SELECT, UPDATE ON isolates_counters TO ${ROLE}`,
        `GRANT INSERT ON isolates_history TO ${ROLE}`,
        `GRANT USAGE ON SEQUENCE isolates_history_id_seq TO ${ROLE}`,
        "VACUUM ANALYZE",
      ]
    ) await admin.execute(sql);
    // The workers log in as an ordinary role, as an application does: superuser_reserved_connections
    // of the max_connections slots are not theirs.
    const appServer = { ...server, dsn: server.dsnFor({ user: ROLE }), user: ROLE };
    const needsBouncer = cases.some((c) => c.endsWith("pgbouncer"));
    if (needsBouncer) {
      bouncer = await startPgBouncer({
        poolMode: "transaction",
        server: appServer,
        poolSize: bouncerPoolSize,
        // ISOLATES_DEBUG: PgBouncer logs its averages (transaction, query and wait times) every second.
        config: process.env.ISOLATES_DEBUG ? { stats_period: "1", log_stats: "1" } : {},
      });
    }
    const specs: Record<CaseKey, CaseSpec> = {
      "direct": { key: "direct", title: "direct", through: "server", poolMode: "session", maxSize },
      "over-direct": {
        key: "over-direct",
        title: "direct, oversubscribed",
        through: "server",
        poolMode: "session",
        maxSize: overMaxSize,
      },
      "pgbouncer": {
        key: "pgbouncer",
        title: "PgBouncer",
        through: "PgBouncer",
        poolMode: "transaction",
        maxSize,
      },
      "over-pgbouncer": {
        key: "over-pgbouncer",
        title: "PgBouncer, oversubscribed",
        through: "PgBouncer",
        poolMode: "transaction",
        maxSize: overMaxSize,
      },
    };
    const slots = Number(serverInfo?.m ?? maxConnections) - Number(serverInfo?.r ?? 3) - 1; // - our own connection
    if (cases.includes("direct") && workers * maxSize > slots) {
      log(
        `warning: ${workers} × maxSize ${maxSize} is more than the ${slots} slots the server has: "direct" is oversubscribed too`,
      );
    }
    log(`spawning ${workers} ${runtime} workers`);
    const t0 = performance.now();
    const list = Array.from({ length: workers }, (_, id) => {
      const w = new Worker({ id, concurrency, items: ITEMS, counters: COUNTERS, writeEvery: WRITE_EVERY });
      everyWorker.add(w);
      return w;
    });
    await within(
      Promise.all(list.map((w) => w.message("started"))),
      START_TIMEOUT_MS,
      "Every worker did not start",
    );
    const startupS = (performance.now() - t0) / 1000;
    log(`  all started in ${startupS.toFixed(1)} s`);
    const dsnOf = (spec: CaseSpec): string => spec.through === "PgBouncer" ? bouncer!.dsn : appServer.dsn;
    // Warm-up (not counted): every worker's JIT compiles the load's code paths.
    const phase = async (spec: CaseSpec, ms: number): Promise<PhaseResult> => {
      // Each phase starts from a server without our backends: PgBouncer runs only during its own phases
      // (its server connections would count in the next phase), and a closed pool's backends take a moment.
      if (spec.through === "PgBouncer") await bouncer!.start();
      try {
        return await runPhase(list, spec, dsnOf(spec), ms, admin);
      } finally {
        if (spec.through === "PgBouncer") await bouncer!.stop();
        const quietBy = performance.now() + 10_000;
        while ((await backends(admin)) > 0 && performance.now() < quietBy) await sleep(20);
      }
    };
    await phase(specs[cases.includes("direct") ? "direct" : cases[0]!], WARM_UP_MS);
    const phases = new Map<CaseKey, PhaseResult[]>(cases.map((c) => [c, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < cases.length; i++) {
        const spec = specs[cases[(i + rep) % cases.length]!];
        const p0 = performance.now();
        const r = await phase(spec, seconds * 1000);
        phases.get(spec.key)!.push(r);
        log(
          `  rep ${rep + 1}/${reps} ${spec.title} (maxSize ${spec.maxSize}): ${
            Math.round(r.opsPerS)
          } ops/s, ` +
            `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, peak ${r.peakBackends} backends, ` +
            `errors ${formatErrors(r.errors)} (${((performance.now() - p0) / 1000).toFixed(1)} s)`,
        );
      }
    }
    // Exiting by itself is part of the test: a closed pool must not keep its process alive.
    for (const w of list) w.end();
    const exitBy = performance.now() + EXIT_GRACE_MS;
    let killed = 0;
    for (const w of list) {
      const code = await Promise.race([
        w.exited,
        sleep(Math.max(0, exitBy - performance.now())).then(() => "late"),
      ]);
      if (code === "late") {
        killed++;
        w.kill();
        await w.exited;
      }
      everyWorker.delete(w);
    }
    const exitedAlone = list.filter((w) => w.child.exitCode === 0).length;
    log(`  ${exitedAlone}/${workers} workers exited by themselves (status 0), ${killed} killed`);
    const summaries = cases.map((c) => summarize(specs[c], phases.get(c)!));
    const loadAfter = os.loadavg().map((l) => l.toFixed(2)).join(" ");
    const tableText = table(summaries, version);
    const messages = new Map<string, string>();
    for (const r of summaries) {
      for (const p of r.phases) {
        for (const [c, m] of Object.entries(p.messages)) if (!messages.has(c)) messages.set(c, m);
      }
    }
    const reserved = Number(serverInfo?.r ?? 3);
    const header = [
      `## ${version}, ${workers} workers`,
      "",
      `- Run ${new Date().toISOString()}, ${
        ((performance.now() - began) / 1000).toFixed(0)
      } s in all; commit ${commit()}; ` +
      `driver ${process.env.PGPOOL_DRIVER ?? "native"}.`,
      `- Machine: ${os.availableParallelism?.() ?? os.cpus().length} × ${
        os.cpus()[0]?.model ?? "unknown"
      }, ` +
      `load average ${loadBefore} before, ${loadAfter} after (shared: read the ratios, not the absolute numbers).`,
      `- Server: PostgreSQL ${serverInfo?.v} on loopback, max_connections=${serverInfo?.m} ` +
      `(${
        Number(serverInfo?.m) - reserved
      } for the application role, ${reserved} reserved for superusers), fsync off. ` +
      `PgBouncer ${pgBouncerVersion() ?? "?"} in transaction mode, default_pool_size=${bouncerPoolSize}, ` +
      "running only during its own phases.",
      `- Load: ${workers} ${runtime} processes; in each phase every one creates a pool of its own (minSize 0) and ` +
      `runs ${concurrency} tasks looping for ${seconds} s over 3 one-shot ` +
      "`SELECT id, name FROM isolates_items WHERE id = $1` (pool.fetchRow) for 1 write transaction (acquire, " +
      "BEGIN, UPDATE a counter, INSERT a history row, COMMIT, release), all started together once every " +
      `worker had its pool, then closes the pool. ${reps} repetitions round-robin over the cases (after a 1 s ` +
      "warm-up); ops/s, latencies and CPU are medians over them. Latency includes the wait for a connection; " +
      "a failed operation is counted by its error code, and its task waits 5 ms before the next one. Server " +
      "backends: the application role's client backends in pg_stat_activity, sampled every " +
      `${SAMPLE_EVERY_MS} ms (peak over all repetitions / median of the means).`,
      `- Workers: started in ${
        startupS.toFixed(1)
      } s (spawn to first message); at the end ${exitedAlone}/${workers} ` +
      `exited by themselves once their last pool was closed and stdin ended${
        killed ? `, ${killed} had to be killed` : ""
      }.`,
      `- Connections the workers opened per repetition (failed attempts), median (above the server's slots when oversubscribed: workers end a phase a few ms apart, and pools still running take the slots of closed ones): ${
        summaries.map((r) =>
          `${r.spec.title} ${fmt(median(r.phases.map((p) => p.opened)), 0)} (${
            fmt(median(r.phases.map((p) => p.connectErrors)), 0)
          })`
        ).join(", ")
      }.`,
    ];
    const notes = [...messages].map(([code, m]) => `- \`${code}\`: ${m}`);
    const text = [
      ...header,
      "",
      tableText,
      "",
      ...(notes.length ? ["Error messages (first of each code):", "", ...notes, ""] : []),
    ]
      .join("\n");
    process.stdout.write(text + "\n");
    if (write) {
      const file = path.join(ROOT, "bench", "results", `isolates-${runtime}.md`);
      fs.writeFileSync(
        file,
        `# Many isolates: ${runtime === "deno" ? "Deno" : "Bun"}\n\n` +
          `Generated by \`${
            runtime === "deno" ? "deno task" : "bun run"
          } bench:isolates\` (bench/isolates.ts); ` +
          'see the README\'s "Deploying" section for what to make of it.\n\n' + text,
      );
      log(`wrote ${path.relative(ROOT, file)}`);
    }
  } finally {
    if (process.env.ISOLATES_DEBUG && bouncer) {
      const stats = fs.readFileSync(bouncer.logFile, "utf8").split("\n").filter((l) => l.includes("stats:"));
      log(`PgBouncer stats:\n${stats.join("\n")}`);
    }
    killAllWorkers();
    await bouncer?.destroy().catch((e) => log(`PgBouncer did not stop: ${String(e)}`));
    await admin.close().catch(() => {});
    clearTimeout(watchdog);
  }
}

await main();

/**
 * Many isolates: N worker processes (each an isolate of its own, as on Deno Deploy or a fleet of Bun
 * instances), each with its own small pool, under the same load, against one PostgreSQL — directly and
 * through PgBouncer in transaction mode — to show how many server backends they use, what throughput
 * and latency they get, and what fails when N × maxSize exceeds the server's `max_connections`.
 *
 *   deno task bench:isolates [--workers=20] [--runtime=deno|bun] [--seconds=5] [--max-size=4]
 *                            [--concurrency=8] [--cases=direct,over-direct,pgbouncer,over-pgbouncer]
 *                            [--max-connections=100] [--pgbouncer-pool-size=20] [--no-write]
 *   bun run bench:isolates   [same flags]
 *
 * Every flag can also be given as an environment variable: ISOLATES_WORKERS, ISOLATES_RUNTIME,
 * ISOLATES_SECONDS, ISOLATES_MAX_SIZE, ISOLATES_CONCURRENCY, ISOLATES_CASES, ISOLATES_MAX_CONNECTIONS,
 * ISOLATES_PGBOUNCER_POOL_SIZE; ISOLATES_DEBUG=1 prints each worker's pool stats. The workers run on `--runtime` (default: the runtime running this
 * script); `--over-max-size` sets the per-worker maxSize of the oversubscribed cases (default: the
 * larger of 2 × maxSize and what makes N × maxSize 1.5 × max_connections).
 *
 * Starts its own throwaway PostgreSQL (tests/support/pg_server.ts, `max_connections` 100) and a real
 * PgBouncer (tests/support/pgbouncer.ts, Debian's `pgbouncer`, transaction mode, `default_pool_size`
 * 20) and stops both at the end. Each case spawns the workers (bench/isolates_worker.ts), waits until
 * all have created their pool, starts them together, samples the server's client backends every 50 ms
 * while they run `concurrency` tasks of a fixed mix (3 one-shot `SELECT … WHERE id = $1` for 1 short
 * write transaction `UPDATE` + `INSERT`) for `seconds`, then collects their numbers. Workers close their
 * pool and exit by themselves; one still alive 10 s after reporting is killed and counted.
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
import type { WorkerConfig, WorkerResult } from "./isolates_worker.ts";

type Runtime = "deno" | "bun";
type CaseKey = "direct" | "over-direct" | "pgbouncer" | "over-pgbouncer";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKER = fileURLToPath(new URL("./isolates_worker.ts", import.meta.url));
const ROLE = "isolates";
const ITEMS = 1000;
const COUNTERS = 100;
const WRITE_EVERY = 4;
const READY_TIMEOUT_MS = 60_000;
const EXIT_GRACE_MS = 10_000;
const SAMPLE_EVERY_MS = 50;

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

function option(name: string, env: string): string | undefined {
  const arg = process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (arg !== undefined) return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : "";
  return process.env[env] || undefined;
}

function intOption(name: string, env: string, fallback: number, min = 1): number {
  const raw = option(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    throw new Error(`--${name} must be a number of at least ${min}: got ${raw}`);
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
const workers = intOption("workers", "ISOLATES_WORKERS", 20);
const seconds = intOption("seconds", "ISOLATES_SECONDS", 5, 0.1);
const maxSize = intOption("max-size", "ISOLATES_MAX_SIZE", 4);
const concurrency = intOption("concurrency", "ISOLATES_CONCURRENCY", 8);
const maxConnections = intOption("max-connections", "ISOLATES_MAX_CONNECTIONS", 100, 10);
const bouncerPoolSize = intOption("pgbouncer-pool-size", "ISOLATES_PGBOUNCER_POOL_SIZE", 20);
const overMaxSize = intOption(
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

interface CaseResult {
  spec: CaseSpec;
  /** Seconds from spawning the workers until every one had its pool. */
  startupS: number;
  peakBackends: number;
  meanBackends: number;
  opsPerS: number;
  ops: number;
  p50: number;
  p99: number;
  errors: Record<string, number>;
  messages: Record<string, string>;
  opened: number;
  connectErrors: number;
  /** The workers' CPU time per successful operation, µs. */
  cpuUsPerOp: number;
  /** Workers that exited by themselves after reporting, and the ones killed. */
  exited: number;
  killed: number;
  failedWorkers: number;
}

/** One spawned worker and what it said. */
class Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly result: Promise<WorkerResult | undefined>;
  readonly exited: Promise<number | null>;
  #stderr = "";

  constructor(config: WorkerConfig) {
    const [cmd, ...args] = runtimeCommand();
    this.child = spawn(cmd!, args, {
      cwd: ROOT,
      env: {
        ...process.env,
        ISOLATES_WORKER: JSON.stringify(config),
        PGPOOL_DRIVER: process.env.PGPOOL_DRIVER,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let onReady!: () => void;
    let onResult!: (r: WorkerResult | undefined) => void;
    this.ready = new Promise((r) => onReady = r);
    this.result = new Promise((r) => onResult = r);
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code) => {
        onResult(undefined); // no result line: the worker failed (a no-op when it reported)
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
        try {
          const msg = JSON.parse(line) as { type?: string };
          if (msg.type === "ready") onReady();
          else if (msg.type === "result") onResult(msg as WorkerResult);
        } catch { /* not ours */ }
      }
    });
    this.child.stderr!.on("data", (d: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(d)).slice(-2000);
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  go(): void {
    this.child.stdin!.end("go\n");
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

async function runCase(spec: CaseSpec, dsn: string, admin: Connection): Promise<CaseResult> {
  log(`${spec.title}: ${workers} ${runtime} workers × maxSize ${spec.maxSize} through the ${spec.through}`);
  const t0 = performance.now();
  const list = Array.from({ length: workers }, (_, id) => {
    const w = new Worker({
      id,
      dsn,
      poolMode: spec.poolMode,
      maxSize: spec.maxSize,
      concurrency,
      durationMs: seconds * 1000,
      items: ITEMS,
      counters: COUNTERS,
      writeEvery: WRITE_EVERY,
    });
    everyWorker.add(w);
    return w;
  });
  try {
    await within(
      Promise.all(list.map((w) => Promise.race([w.ready, w.exited.then(() => Promise.reject(w.stderr))]))),
      READY_TIMEOUT_MS,
      "Every worker did not create its pool",
    );
  } catch (e) {
    killAllWorkers();
    throw new Error(`${spec.title}: a worker did not start: ${String(e)}`);
  }
  const startupS = (performance.now() - t0) / 1000;
  log(`  all ${workers} ready in ${startupS.toFixed(1)} s; running ${seconds} s`);

  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push(await backends(admin));
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  for (const w of list) w.go();
  const results = await within(
    Promise.all(list.map((w) => w.result)),
    seconds * 1000 + 30_000,
    "Every worker did not report",
  ).catch((e) => {
    killAllWorkers();
    throw e;
  });
  sampling = false;
  await sampler;

  // Exiting by itself is part of the test: a pool must not keep its process alive after close().
  const exitedBy = performance.now() + EXIT_GRACE_MS;
  let killed = 0;
  for (const w of list) {
    const left = Math.max(0, exitedBy - performance.now());
    const code = await Promise.race([w.exited, sleep(left).then(() => "late" as const)]);
    if (code === "late") {
      killed++;
      w.kill();
      await w.exited;
    }
    everyWorker.delete(w);
    if (process.env.ISOLATES_DEBUG && w.stderr) log(`  worker stderr: ${w.stderr.trim()}`);
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
  const result: CaseResult = {
    spec,
    startupS,
    peakBackends: Math.max(0, ...samples),
    meanBackends: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : 0,
    opsPerS: ok.reduce((s, r) => s + r.ops / (r.elapsedMs / 1000), 0),
    ops: ok.reduce((s, r) => s + r.ops, 0),
    p50: quantile(all, 0.5),
    p99: quantile(all, 0.99),
    errors,
    messages,
    opened: ok.reduce((s, r) => s + r.opened, 0),
    connectErrors: ok.reduce((s, r) => s + r.connectErrors, 0),
    cpuUsPerOp: ok.reduce((s, r) => s + r.cpuUs, 0) / Math.max(1, ok.reduce((s, r) => s + r.ops, 0)),
    exited: list.length - killed - (list.length - ok.length),
    killed,
    failedWorkers: list.length - ok.length,
  };
  log(
    `  ${Math.round(result.opsPerS)} ops/s, p50 ${result.p50.toFixed(2)} ms, p99 ${
      result.p99.toFixed(2)
    } ms, ` +
      `peak ${result.peakBackends} backends, errors ${formatErrors(errors)}, ${killed} killed`,
  );
  // The next case starts from a server without our backends (a closed pool's backends take a moment).
  const quietBy = performance.now() + 10_000;
  while (spec.through === "server" && (await backends(admin)) > 0 && performance.now() < quietBy) {
    await sleep(50);
  }
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

function table(results: CaseResult[], version: string): string {
  const base = results.find((r) => r.spec.key === "direct");
  const lines = [
    `| ${version}: case | through | per-worker maxSize (× ${workers}) | server backends (peak / mean) | ops/s | vs direct | p50 ms | p99 ms | workers' CPU µs/op | errors (by code) | exited by themselves |`,
    "|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|",
  ];
  for (const r of results) {
    const vs = base && base.opsPerS > 0 ? `${(r.opsPerS / base.opsPerS).toFixed(2)}×` : "–";
    lines.push(
      `| ${r.spec.title} | ${
        r.spec.through === "server" ? "server" : `PgBouncer (transaction, pool ${bouncerPoolSize})`
      } | ` +
        `${r.spec.maxSize} (${r.spec.maxSize * workers}) | ${r.peakBackends} / ${fmt(r.meanBackends)} | ${
          fmt(r.opsPerS)
        } | ${vs} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.cpuUsPerOp)} | ${
          formatErrors(r.errors)
        } | ${r.exited}/${workers}${r.killed ? ` (${r.killed} killed)` : ""}${
          r.failedWorkers ? ` (${r.failedWorkers} failed)` : ""
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
  // Spawn, ready, run, report and exit per case, plus the servers: past this the run is a hang.
  const budgetMs = 60_000 + cases.length * (READY_TIMEOUT_MS + seconds * 1000 + 30_000 + EXIT_GRACE_MS);
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
    const results: CaseResult[] = [];
    for (const key of cases) {
      const spec = specs[key];
      if (spec.through === "PgBouncer") await bouncer!.restart(); // each case starts with no server connections
      results.push(await runCase(spec, spec.through === "PgBouncer" ? bouncer!.dsn : appServer.dsn, admin));
    }
    const loadAfter = os.loadavg().map((l) => l.toFixed(2)).join(" ");
    const tableText = table(results, version);
    const messages = new Map<string, string>();
    for (const r of results) {
      for (const [c, m] of Object.entries(r.messages)) if (!messages.has(c)) messages.set(c, m);
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
      "restarted before each of its cases.",
      `- Load: ${workers} ${runtime} processes, each with its own pool (minSize 0) and ${concurrency} tasks looping for ` +
      `${seconds} s over 3 one-shot \`SELECT id, name FROM isolates_items WHERE id = $1\` (pool.fetchRow) for 1 ` +
      "write transaction (acquire, BEGIN, UPDATE a counter, INSERT a history row, COMMIT, release), all started " +
      "together once every worker had its pool. Latency includes the wait for a connection; errors are " +
      "counted per failed operation (each failure then waits 5 ms). Server backends: the peak and mean of the " +
      `application role's client backends in pg_stat_activity, sampled every ${SAMPLE_EVERY_MS} ms.`,
      `- Worker start-up (spawn to pool created): ${
        results.map((r) => `${r.spec.title} ${r.startupS.toFixed(1)} s`).join(", ")
      }.`,
      `- Connections the workers opened (failed attempts): ${
        results.map((r) => `${r.spec.title} ${r.opened} (${r.connectErrors})`).join(", ")
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

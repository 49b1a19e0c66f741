/**
 * Benchmarks this pool against its peers on one local PostgreSQL, every
 * contender in the same run, repetitions round-robin, medians printed as
 * ratios to "ours (default reset)".
 *
 *   deno task bench:peers [--quick] [--scenarios=S1,S2] [--contenders=ours,postgresjs] [--reps=5] [--no-write]
 *                         [--depth=N]
 *   bun run bench:peers   [same flags]
 *
 * `--depth=N` (or `PGPOOL_BENCH_DEPTH=N`) gives "ours" and "ours (reset
 * disabled)" `pipelineDepth: N` instead of the pool's default, for a sweep
 * (`--depth=1` turns pipelining off); the report's header names it.
 *
 * Starts a throwaway server (tests/support/pg_server.ts) unless DATABASE_URL
 * is set (S5 then needs max_connections of about 650: one pool of 100 per
 * contender stays open through the scenario). Prints markdown on stdout (progress on stderr), writes
 * bench/results/<runtime>.json and regenerates bench/results/chart.svg.
 * Scenarios live in bench/harness/s*_*.ts, contenders in
 * bench/harness/contender_*.ts.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { type PostgresInstance, startPostgres, type TestServer } from "../tests/support/pg_server.ts";
import { RESULTS_DIR, writeChart } from "./harness/chart.ts";
import { type ContenderKind, runtime } from "./harness/contender.ts";
import { asyncpgUnavailable, asyncpgVersion, stopAsyncpg } from "./harness/contender_asyncpg.ts";
import { bunSql } from "./harness/contender_bun_sql.ts";
import { nodePg } from "./harness/contender_node_pg.ts";
import { benchDepth, ours, oursNoReset, oursPgjs } from "./harness/contender_ours.ts";
import { pgbenchUnavailable } from "./harness/contender_pgbench.ts";
import { postgresJs } from "./harness/contender_postgresjs.ts";
import { writeResultsReadme } from "./harness/results_readme.ts";
import { addRatios, aggregate, checkTargets, markdown, type ResultRecord } from "./harness/report.ts";
import { s1Checkout } from "./harness/s1_checkout.ts";
import { s2OneShot } from "./harness/s2_one_shot.ts";
import { s3Transaction } from "./harness/s3_transaction.ts";
import { s4Http, wrkUnavailable } from "./harness/s4_http.ts";
import { s5Scale } from "./harness/s5_scale.ts";
import { s6Page } from "./harness/s6_page.ts";
import type { Sample } from "./harness/stats.ts";
import type { Context, Scenario, Variant } from "./harness/variant.ts";

const SCENARIOS: Scenario[] = [s1Checkout, s2OneShot, s3Transaction, s4Http, s5Scale, s6Page];
const KINDS: ContenderKind[] = [ours, oursNoReset, oursPgjs, postgresJs, bunSql, nodePg];

function flag(name: string): string | undefined {
  const arg = process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (arg === undefined) return undefined;
  return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : "";
}

const quick = flag("quick") !== undefined;
const reps = Number(flag("reps") ?? (quick ? 3 : 5));
const write = flag("no-write") === undefined;
const onlyScenarios = flag("scenarios")?.split(",");
const onlyContenders = flag("contenders")?.split(",");
const depthFlag = flag("depth");
if (depthFlag !== undefined) process.env.PGPOOL_BENCH_DEPTH = depthFlag;
/** Ours' `pipelineDepth` for this run (a sweep), or undefined for the pool's default; throws when malformed. */
const depth = benchDepth();
const wanted = (key: string): boolean => onlyContenders === undefined || onlyContenders.includes(key);
const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

function runtimeVersion(): string {
  const g = globalThis as unknown as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  return g.Deno?.version.deno ?? g.Bun?.version ?? process.version;
}

/** The commit measured, and whether src/ or mod.ts had uncommitted changes (work in progress was measured). */
function gitState(): { commit: string; srcDirty: boolean } {
  const run = (args: string[]): string =>
    spawnSync("git", args, { cwd: fileURLToPath(new URL("..", import.meta.url)), encoding: "utf8" }).stdout
      ?.trim() ?? "";
  return {
    commit: run(["rev-parse", "--short", "HEAD"]),
    srcDirty: run(["status", "--porcelain", "--", "src", "mod.ts", "deno.ts", "bun.ts"]) !== "",
  };
}

function machine(): Record<string, unknown> {
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model ?? "unknown",
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

async function startServer(): Promise<
  { server: TestServer; password?: string; instance?: PostgresInstance }
> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const u = new URL(url);
    const server: TestServer = {
      dsn: url,
      host: u.hostname,
      port: Number(u.port || 5432),
      user: decodeURIComponent(u.username) || "postgres",
      database: decodeURIComponent(u.pathname.slice(1)) || "postgres",
      dsnFor: () => url,
    };
    return { server, password: u.password === "" ? undefined : decodeURIComponent(u.password) };
  }
  // S5 keeps one pool of 100 per contender open at once.
  const instance = await startPostgres({ config: { max_connections: "800" } });
  return { server: instance, instance };
}

async function timed<T>(what: string, work: () => Promise<T>): Promise<T | Error> {
  try {
    return await work();
  } catch (e) {
    log(`  ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof Error ? e : new Error(String(e));
  }
}

async function runScenario(scenario: Scenario, ctx: Context): Promise<ResultRecord[]> {
  await scenario.setup?.(ctx);
  const variants: Variant[] = scenario.variants(ctx);
  const samples = new Map<Variant, Sample[]>();
  const failed = new Map<Variant, string>();
  try {
    for (const v of variants) {
      const t0 = performance.now();
      const opened = await timed(`${v.label} open`, () => v.open());
      const t1 = performance.now();
      if (opened instanceof Error) failed.set(v, opened.message);
      else {
        const warmMs = scenario.warmMs(quick);
        const warmed = warmMs > 0 ? await timed(`${v.label} warm-up`, () => v.warm(warmMs)) : undefined;
        if (warmed instanceof Error) failed.set(v, warmed.message);
      }
      const t2 = performance.now();
      log(
        `  ${v.label} [${v.api}]: opened in ${(t1 - t0).toFixed(0)} ms, warmed in ${(t2 - t1).toFixed(0)} ms`,
      );
      samples.set(v, []);
    }
    const ms = scenario.durationMs(quick);
    const n = flag("reps") === undefined ? scenario.reps?.(quick) ?? reps : reps;
    for (let rep = 0; rep < n; rep++) {
      const order = variants.map((_, i) => variants[(i + rep) % variants.length]!);
      for (const v of order) {
        if (failed.has(v)) continue;
        const cpu = process.cpuUsage();
        const sample = await timed(`${v.label} run`, () => v.run(ms));
        const used = process.cpuUsage(cpu);
        if (sample instanceof Error) failed.set(v, sample.message);
        else {
          // This process's CPU per operation: steadier than throughput on a shared machine.
          if (!v.external) {
            sample.extra = { ...sample.extra, cpuUsPerOp: (used.user + used.system) / sample.ops };
          }
          samples.get(v)!.push(sample);
          log(
            `  ${scenario.id} rep ${rep + 1}/${n} ${v.label} [${v.api}]: ${
              Math.round(sample.ops / sample.seconds)
            } ops/s, p99 ${sample.p99.toFixed(2)} ms`,
          );
        }
      }
    }
  } finally {
    for (const v of variants) await timed(`${v.label} close`, () => v.close());
    await scenario.teardown?.();
  }
  return variants.map((v) => {
    const base = {
      scenario: scenario.id,
      scenarioTitle: scenario.title,
      contender: v.key,
      label: v.label,
      api: v.api,
    };
    const record = aggregate(base, samples.get(v) ?? [], v.once);
    if (failed.has(v)) record.error = failed.get(v);
    return record;
  });
}

async function serverInfo(dsn: string): Promise<string> {
  const sql = postgres(dsn, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`SELECT current_setting('server_version') AS v, current_setting('fsync') AS f,
      current_setting('synchronous_commit') AS s, current_setting('max_connections') AS m`;
    return `PostgreSQL ${row!.v} (fsync=${row!.f}, synchronous_commit=${row!.s}, max_connections=${row!.m})`;
  } finally {
    await sql.end();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const machineBefore = machine();
  const skipped: string[] = [];
  const kinds = KINDS.filter((k) => {
    if (!wanted(k.key)) return false;
    const why = k.unavailable();
    if (why !== undefined) skipped.push(`${k.label}: ${why}`);
    return why === undefined;
  });
  const asyncpgWhy = wanted("asyncpg") ? asyncpgUnavailable() : "not selected";
  const pgbenchWhy = wanted("pgbench") ? pgbenchUnavailable() : "not selected";
  const wrkWhy = wrkUnavailable();
  if (asyncpgWhy && wanted("asyncpg")) skipped.push(`asyncpg: ${asyncpgWhy}`);
  if (pgbenchWhy && wanted("pgbench")) skipped.push(`pgbench: ${pgbenchWhy}`);
  if (wrkWhy) skipped.push(`S4: ${wrkWhy}`);
  const { server, password, instance } = await startServer();
  const records: ResultRecord[] = [];
  let serverDescription = "";
  try {
    serverDescription = await serverInfo(server.dsn);
    log(
      `${runtime} ${runtimeVersion()}; ${serverDescription}; ${quick ? "quick" : "full"} run, ${reps} reps${
        depth === undefined ? "" : `; ours with pipelineDepth ${depth}`
      }`,
    );
    const ctx: Context = {
      dsn: server.dsn,
      host: server.host,
      port: server.port,
      user: server.user,
      database: server.database,
      password,
      quick,
      kinds,
      asyncpg: asyncpgWhy === undefined,
      pgbench: pgbenchWhy === undefined,
    };
    for (const scenario of SCENARIOS) {
      if (onlyScenarios !== undefined && !onlyScenarios.includes(scenario.id)) continue;
      if (scenario.id === "S4" && wrkWhy !== undefined) continue;
      log(`${scenario.id} ${scenario.title}: ${scenario.description}`);
      const t0 = performance.now();
      try {
        records.push(...await runScenario(scenario, ctx));
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        log(`${scenario.id} failed: ${message}`);
        skipped.push(`${scenario.id}: ${message}`);
      }
      log(`${scenario.id} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    stopAsyncpg();
    await instance?.destroy();
  }
  addRatios(records);
  const targets = checkTargets(records, runtime);
  const seconds = (performance.now() - started) / 1000;
  const machineAfter = machine();
  const name = runtime === "bun" ? "Bun" : runtime === "deno" ? "Deno" : "Node";
  const result = {
    runtime,
    runtimeVersion: runtimeVersion(),
    generatedAt: new Date().toISOString(),
    quick,
    reps,
    ...(depth === undefined ? {} : { pipelineDepth: depth }),
    seconds: Math.round(seconds),
    machine: { ...machineBefore, loadavgBefore: machineBefore.loadavg, loadavgAfter: machineAfter.loadavg },
    server: serverDescription,
    git: gitState(),
    versions: {
      asyncpg: asyncpgVersion(),
      postgresjs: "3.4.9",
      pg: JSON.parse(fs.readFileSync(new URL("../node_modules/pg/package.json", import.meta.url), "utf8"))
        .version,
    },
    skipped,
    scenarios: SCENARIOS.map((s) => ({ id: s.id, title: s.title, description: s.description })),
    records,
    targets,
  };
  const m = result.machine as Record<string, unknown>;
  console.log(markdown(
    `${name} ${result.runtimeVersion} — ${m.nproc} × ${m.cpu}, load ${
      (m.loadavgBefore as number[]).join(" ")
    } → ${(m.loadavgAfter as number[]).join(" ")}; ${serverDescription}; ${
      quick ? "--quick, " : ""
    }median of ${reps} reps${depth === undefined ? "" : `; ours with pipelineDepth ${depth}`}`,
    result.scenarios,
    records,
    targets,
  ));
  if (skipped.length > 0) console.log(`\nSkipped: ${skipped.join("; ")}`);
  if (write) {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${runtime}.json`);
    fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
    log(`wrote ${file}, ${writeChart()} and ${writeResultsReadme()} in ${seconds.toFixed(0)} s`);
  } else log(`done in ${seconds.toFixed(0)} s`);
}

await main();
process.exit(0);

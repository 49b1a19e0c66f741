/**
 * Soak: a mixed workload with injected faults for a configurable time, on
 * Deno (`deno task soak`) or Bun (`bun run soak`).
 *
 * Runs its own PostgreSQL (tests/support/pg_server.ts; with DATABASE_URL set it
 * uses that server and skips the server restarts) behind a fault proxy
 * (tests/support/fault_proxy.ts). 24 workers run one-shot queries, checkouts
 * with transactions, batches, COPY, listeners, and queries cancelled by
 * timeouts and aborts, and inserts recorded in a write ledger
 * (tests/support/ledger.ts), while a fault every ~2 s resets connections,
 * black-holes the network, adds latency, cuts connections mid-stream,
 * terminates backends or restarts the server.
 *
 * Prints throughput, error counts by code, faults and recovery times, and the
 * heap (after a forced GC, with the load paused) at the end of the warm-up and
 * at the end, and the ledger's count of lost, duplicated and phantom writes.
 * Exits non-zero when the heap grew 10% or more after warm-up, when the pool's
 * invariants do not hold at the end, when an operation hung, or when the
 * ledger finds an acknowledged write missing, a write twice, or a row whose
 * insert failed for sure.
 *
 * Environment: SOAK_SECONDS (default 60), SOAK_WORKERS (default 24), SOAK_FAULTS (a
 * comma-separated subset of reset, blackhole, latency, cut, terminate, restart).
 *
 * @module
 */

import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";
import { connect, createPool, PoolError } from "../mod.ts";
import {
  getTestServer,
  type PostgresInstance,
  startPostgres,
  type TestServer,
} from "../tests/support/pg_server.ts";
import { FaultProxy } from "../tests/support/fault_proxy.ts";
import { describeReport, Ledger, type LedgerReport } from "../tests/support/ledger.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const WORKERS = Number(process.env.SOAK_WORKERS ?? 24);
const WARMUP_MS = Math.max(5000, SECONDS * 1000 * 0.2);
const MAX_GROWTH = 0.10;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function forceGc(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(sync: boolean): void } };
  if (g.Bun) return g.Bun.gc(true);
  if (typeof g.gc === "function") return g.gc();
  try {
    v8.setFlagsFromString("--expose-gc");
    (vm.runInNewContext("gc") as () => void)();
  } catch { /* no GC hook: the measurement is noisier */ }
}

async function heapUsed(): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    forceGc();
    await sleep(50);
    best = Math.min(best, process.memoryUsage().heapUsed);
  }
  return best;
}

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`;
}

function codeOf(e: unknown): string {
  if (e instanceof Error && e.name === "SuppressedError") {
    return codeOf((e as unknown as { error: unknown }).error);
  }
  if (e instanceof PoolError) return e.code;
  if (e instanceof Error) return e.name;
  return "thrown";
}

// ------------------------------------------------------------------ setup

const unhandled: string[] = [];
process.on("unhandledRejection", (reason: unknown) => {
  const e = reason as Error & { code?: string; cause?: { code?: string } };
  unhandled.push(`${codeOf(reason)} (cause ${e?.cause?.code ?? "-"}): ${e?.stack ?? String(reason)}`);
});

let own: PostgresInstance | undefined;
let server: TestServer;
if (process.env.DATABASE_URL) server = await getTestServer();
// Acknowledged commits must survive the restarts (the harness turns this off for speed).
else server = own = await startPostgres({ config: { synchronous_commit: "on" } });
const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
const dsn = proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" }));
const admin = async <T>(f: (c: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> => {
  const c = await connect(server.dsn, { connectTimeout: 5 });
  try {
    return await f(c);
  } finally {
    await c.close({ timeout: 2 });
  }
};
await admin((c) =>
  c.execute("DROP TABLE IF EXISTS soak_t; CREATE UNLOGGED TABLE soak_t (id bigint, note text)")
);

// One ledger table per phase (warm-up, measured run, after), so an insert stalled in a black hole
// that reaches the server late cannot land in the next phase's table; the ledger's memory is
// dropped with its phase.
let ledgerPhase = 0;
let ledger = await admin((c) => Ledger.create(c, `soak_ledger_${ledgerPhase}`));
const ledgerReports: LedgerReport[] = [];

async function checkLedger(): Promise<void> {
  const done = ledger;
  const report = await admin((c) => done.verify(c));
  done.forget();
  ledgerReports.push(report);
  console.log(`ledger, phase ${ledgerPhase}: ${describeReport(report)}`);
  ledgerPhase++;
  ledger = await admin((c) => Ledger.create(c, `soak_ledger_${ledgerPhase}`));
}

const warnings = new Map<string, number>();
const app = `soak-${process.pid}`;
const pool = await createPool(dsn, {
  minSize: 2,
  maxSize: 8,
  connectTimeout: 2,
  releaseTimeout: 2,
  applicationName: app,
  onWarning: (w) => warnings.set(w.code, (warnings.get(w.code) ?? 0) + 1),
});

// ------------------------------------------------------------------ workload

const errors = new Map<string, number>();
let ok = 0;
let paused = false;
let stopped = false;
let inFlight = 0;
let seq = 0;

async function operation(n: number): Promise<void> {
  switch (n % 9) {
    case 0:
      if (await pool.fetchVal("SELECT $1::int", [n], { timeout: 3 }) !== n) throw new Error("wrong value");
      return;
    case 1:
      await pool.fetch("SELECT g, md5(g::text) FROM generate_series(1, 100) g", [], { timeout: 3 });
      return;
    case 2: {
      await using con = await pool.acquire({ timeout: 3 });
      await con.transaction(async (tx) => {
        await tx.execute("INSERT INTO soak_t VALUES ($1, $2)", [n, "tx"], { timeout: 2 });
        await tx.fetchVal("SELECT count(*) FROM soak_t WHERE id = $1", [n], { timeout: 2 });
      });
      return;
    }
    case 3:
      await pool.executeMany("INSERT INTO soak_t VALUES ($1, $2)", [[n, "a"], [n, "b"], [n, "c"]], {
        timeout: 3,
      });
      return;
    case 4:
      await pool.copyRecordsToTable("soak_t", { records: [[n, "copy"], [n, "copy2"]] });
      return;
    case 5: { // a query cancelled by its timeout, then the connection reused
      await using con = await pool.acquire({ timeout: 3 });
      try {
        await con.execute("SELECT pg_sleep(0.05)", [], { timeout: 0.01 });
      } catch (e) {
        if (codeOf(e) !== "QUERY_TIMEOUT") throw e;
      }
      if (await con.fetchVal("SELECT $1::int", [n], { timeout: 2 }) !== n) {
        throw new Error("wrong value after cancel");
      }
      return;
    }
    case 6: { // an acquire or query aborted at a random moment
      const ac = new AbortController();
      setTimeout(() => ac.abort(new DOMException("soak abort", "AbortError")), Math.random() * 8);
      try {
        await pool.fetchVal("SELECT pg_sleep(0.004)", [], { signal: ac.signal });
      } catch (e) {
        if (codeOf(e) !== "AbortError") throw e;
      }
      return;
    }
    case 7: // a one-shot insert recorded in the ledger
      await ledger.write((sql, args) => pool.execute(sql, args, { timeout: 3 }), "soak");
      return;
    default: { // a listener, released with it still active (the pool removes it)
      await using con = await pool.acquire({ timeout: 3 });
      await con.addListener("soak_channel", () => {});
      await con.execute("NOTIFY soak_channel, 'x'", [], { timeout: 2 });
    }
  }
}

async function worker(): Promise<void> {
  while (!stopped) {
    if (paused) {
      await sleep(20);
      continue;
    }
    const n = seq++;
    inFlight++;
    try {
      await operation(n);
      ok++;
    } catch (e) {
      const code = codeOf(e);
      errors.set(code, (errors.get(code) ?? 0) + 1);
      await sleep(10);
    } finally {
      inFlight--;
    }
  }
}

// ------------------------------------------------------------------ faults

const faults = new Map<string, number>();
const recoveries: number[] = [];
const recoveriesByKind = new Map<string, number[]>();

async function recoverAfter(kind: string, since: number): Promise<void> {
  const limit = since + 20_000;
  while (Date.now() < limit && !stopped) {
    try {
      if (await pool.fetchVal("SELECT 1", [], { timeout: 1 }) === 1) {
        const ms = Date.now() - since;
        recoveries.push(ms);
        recoveriesByKind.set(kind, [...recoveriesByKind.get(kind) ?? [], ms]);
        return;
      }
    } catch { /* not yet */ }
    await sleep(20);
  }
  if (stopped) return;
  errors.set("RECOVERY_TIMEOUT", (errors.get("RECOVERY_TIMEOUT") ?? 0) + 1);
}

async function injectFault(): Promise<void> {
  const all = ["reset", "blackhole", "latency", "cut", "terminate", ...(own ? ["restart"] : [])];
  const only = process.env.SOAK_FAULTS?.split(",").filter((k) => all.includes(k));
  const kinds = only !== undefined && only.length > 0 ? only : all;
  const kind = kinds[Math.floor(Math.random() * kinds.length)]!;
  faults.set(kind, (faults.get(kind) ?? 0) + 1);
  switch (kind) {
    case "reset":
      proxy.resetAll();
      break;
    case "blackhole":
      proxy.blackHole();
      await sleep(500);
      proxy.heal();
      break;
    case "latency":
      proxy.setLatency(50);
      await sleep(1000);
      proxy.setLatency(0);
      break;
    case "cut":
      proxy.cutAfterBytes(100 + Math.floor(Math.random() * 2000));
      await sleep(300);
      proxy.cutAfterBytes(undefined);
      break;
    case "terminate":
      await admin((c) =>
        c.execute(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND random() < 0.5",
          [app],
        )
      ).catch(() => {});
      break;
    case "restart":
      await own!.restart();
      break;
  }
  await recoverAfter(kind, Date.now());
}

/** The fault being injected (and recovered from), if any: nothing checks the server meanwhile. */
let injecting: Promise<void> | undefined;

async function faultLoop(): Promise<void> {
  while (!stopped) {
    await sleep(1500 + Math.random() * 1000);
    if (stopped || paused) continue;
    injecting = injectFault();
    await injecting;
    injecting = undefined;
  }
}

async function quiesce(): Promise<void> {
  paused = true;
  // A restart under way would answer the ledger check with 57P03 (the database system is starting up).
  await injecting;
  const limit = Date.now() + 15_000;
  while (inFlight > 0 && Date.now() < limit) await sleep(20);
  if (inFlight > 0) throw new Error(`${inFlight} operations still running 15 s after the load paused`);
  proxy.clearFaults();
}

// ------------------------------------------------------------------ run

const failures: string[] = [];
console.log(
  `soak: ${SECONDS} s on ${
    "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node"
  }, ${WORKERS} workers, ` +
    `pool max 8, warm-up ${(WARMUP_MS / 1000).toFixed(0)} s, faults ${
      own ? "with" : "without"
    } server restarts`,
);
const started = Date.now();
const workers = Array.from({ length: WORKERS }, () => worker());
const faulting = faultLoop();
await sleep(WARMUP_MS);
await quiesce();
await admin((c) => c.execute("TRUNCATE soak_t"));
await checkLedger();
const heapBefore = await heapUsed();
const okAtWarmup = ok;
const measuredFrom = Date.now();
paused = false;
await sleep(Math.max(0, SECONDS * 1000 - (Date.now() - started)));
await quiesce();
const measuredMs = Date.now() - measuredFrom;
stopped = true;
await Promise.race([
  Promise.all([...workers, faulting]),
  sleep(30_000).then(() => failures.push("workers or the fault loop did not stop within 30 s")),
]);
await admin((c) => c.execute("TRUNCATE soak_t"));
await checkLedger();
const heapAfter = await heapUsed();
const growth = (heapAfter - heapBefore) / heapBefore;

// Invariants at the end.
try {
  if (pool.getIdleSize() > pool.getSize() || pool.getSize() > pool.getMaxSize()) {
    failures.push(`sizes: idle ${pool.getIdleSize()}, size ${pool.getSize()}, max ${pool.getMaxSize()}`);
  }
  if (pool.getWaitingCount() !== 0) failures.push(`${pool.getWaitingCount()} waiters left`);
  const cons = await Promise.all(
    Array.from({ length: pool.getMaxSize() }, () => pool.acquire({ timeout: 10 })),
  );
  await Promise.all(cons.map((c) => c.fetchVal("SELECT 1", [], { timeout: 5 })));
  await Promise.all(cons.map((c) => pool.release(c)));
} catch (e) {
  failures.push(`invariant check failed: ${codeOf(e)} ${String(e)}`);
}
await pool.close({ timeout: 10 }).catch((e) => failures.push(`close failed: ${codeOf(e)}`));
await proxy.close();
await own?.destroy();

const sorted = (m: Map<string, number>): string =>
  [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
const rec = [...recoveries].sort((a, b) => a - b);
const pct = (p: number): number => rec[Math.min(rec.length - 1, Math.floor(p * rec.length))] ?? NaN;
const opsAfter = ok - okAtWarmup;
console.log(`duration            ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`operations ok       ${ok} (${(opsAfter / (measuredMs / 1000)).toFixed(0)} ops/s after warm-up)`);
console.log(`errors by code      ${sorted(errors)}`);
console.log(`warnings by code    ${sorted(warnings)}`);
console.log(`faults injected     ${sorted(faults)}`);
console.log(
  `recovery (ms)       n=${rec.length} median ${pct(0.5)} p95 ${pct(0.95)} max ${rec.at(-1) ?? NaN}`,
);
console.log(
  `recovery by fault   ${
    [...recoveriesByKind].sort().map(([k, v]) => `${k} max ${Math.max(...v)} ms (n=${v.length})`).join(
      ", ",
    ) ||
    "none"
  }`,
);
console.log(
  `heap                before ${mb(heapBefore)}, after ${mb(heapAfter)}, growth ${
    (growth * 100).toFixed(1)
  }% ` +
    `(limit ${MAX_GROWTH * 100}%); rss ${mb(process.memoryUsage().rss)}`,
);
const total = (count: (r: LedgerReport) => number): number => ledgerReports.reduce((n, r) => n + count(r), 0);
const lost = total((r) => r.lost.length);
const duplicated = total((r) => r.duplicates.length);
const phantoms = total((r) => r.phantoms.length);
const pending = total((r) => r.pending.length);
console.log(
  `ledger              ${total((r) => r.attempted)} inserts, ${total((r) => r.acked)} acknowledged, ` +
    `${total((r) => r.failed)} failed, ${total((r) => r.ambiguous)} ambiguous; ` +
    `lost ${lost}, duplicated ${duplicated}, phantoms ${phantoms}, unsettled ${pending}`,
);
if (lost + duplicated + phantoms + pending > 0) {
  failures.push(`ledger: lost ${lost}, duplicated ${duplicated}, phantoms ${phantoms}, unsettled ${pending}`);
}
console.log(`unhandled rejections ${unhandled.length}`);
if (unhandled.length > 0) {
  console.log(unhandled.slice(0, 3).join("\n---\n"));
  failures.push(`${unhandled.length} unhandled rejections`);
}
if (growth >= MAX_GROWTH) failures.push(`heap grew ${(growth * 100).toFixed(1)}% after warm-up`);
if (opsAfter === 0) failures.push("no operation succeeded after warm-up");
if ((errors.get("RECOVERY_TIMEOUT") ?? 0) > 0) {
  failures.push("the pool did not recover from a fault within 20 s");
}
if (failures.length > 0) {
  console.log(`FAIL: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("PASS");
process.exit(0);

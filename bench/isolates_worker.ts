/**
 * One worker of bench/isolates.ts: a process of its own (so an isolate of its own) with its own small
 * pool, as one Deno Deploy isolate or one Bun instance would have.
 *
 * Reads its settings from the `ISOLATES_WORKER` environment variable (JSON, see {@linkcode WorkerConfig}),
 * creates its pool, prints `{"type":"ready"}` on stdout, waits for a line on stdin (the parent's go), runs
 * `concurrency` tasks for `durationMs` — each loops over a fixed mix of a one-shot `SELECT` by id and a
 * short write transaction — closes the pool, prints `{"type":"result", …}` and exits by itself: nothing
 * of the pool may keep the process alive (the parent kills it if it does, and says so).
 *
 * @module
 */

import process from "node:process";
import { createPool, type PoolMode } from "../mod.ts";

/** What the parent tells a worker. */
export interface WorkerConfig {
  /** Worker number, from 0. */
  id: number;
  /** Where to connect: the server or PgBouncer. */
  dsn: string;
  /** The pool's `poolMode`. */
  poolMode: PoolMode;
  /** The pool's `maxSize`. */
  maxSize: number;
  /** Tasks running the load at once. */
  concurrency: number;
  /** How long the load runs, in milliseconds. */
  durationMs: number;
  /** Rows of `isolates_items` (ids 1..items). */
  items: number;
  /** Rows of `isolates_counters` (ids 1..counters). */
  counters: number;
  /** One in `writeEvery` operations is the write transaction; the others the one-shot read. */
  writeEvery: number;
}

/** What a worker reports. */
export interface WorkerResult {
  type: "result";
  id: number;
  /** Operations that succeeded. */
  ops: number;
  /** Reads and writes among them. */
  reads: number;
  writes: number;
  /** Milliseconds the load ran. */
  elapsedMs: number;
  /** Latency of every successful operation, ms (acquire wait included), rounded to 10 µs. */
  latencies: number[];
  /** Failed operations by error code (an SQLSTATE, a pool code or a network code). */
  errors: Record<string, number>;
  /** The first message seen for each code (for the report; never contains a password). */
  messages: Record<string, string>;
  /** Connections the pool opened, and connection attempts that failed (its stats at the end). */
  opened: number;
  connectErrors: number;
  /** CPU time (user + system) this process used while the load ran, µs. */
  cpuUs: number;
  /** Milliseconds `close()` took. */
  closeMs: number;
}

function send(message: object): void {
  process.stdout.write(JSON.stringify(message) + "\n");
}

/** Resolves on the first line (or the end) of stdin: the parent's go. */
function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.stdin.off("data", done);
      process.stdin.off("end", done);
      process.stdin.pause();
      resolve();
    };
    process.stdin.on("data", done);
    process.stdin.on("end", done);
    process.stdin.resume();
  });
}

async function main(): Promise<void> {
  const raw = process.env.ISOLATES_WORKER;
  if (!raw) throw new Error("ISOLATES_WORKER is not set: this file is started by bench/isolates.ts");
  const cfg = JSON.parse(raw) as WorkerConfig;
  // What a deployment would set per isolate: a small maxSize, no kept floor, idle connections closed soon.
  const pool = await createPool(cfg.dsn, {
    poolMode: cfg.poolMode,
    maxSize: cfg.maxSize,
    minSize: 0,
    maxInactiveConnectionLifetime: 30,
    onWarning: () => {},
  });
  send({ type: "ready", id: cfg.id });
  await waitForGo();

  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const messages: Record<string, string> = {};
  let reads = 0;
  let writes = 0;
  let seq = cfg.id * 7919;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + cfg.durationMs;

  const read = async (id: number): Promise<void> => {
    const row = await pool.fetchRow<{ id: number; name: string }>(
      "SELECT id, name FROM isolates_items WHERE id = $1",
      [id],
      { timeout: 10 },
    );
    if (row?.id !== id) throw new Error(`Read ${id} returned ${JSON.stringify(row)}`);
  };
  const write = async (id: number): Promise<void> => {
    await using con = await pool.acquire({ timeout: 10 });
    await con.transaction(async (tx) => {
      await tx.execute("UPDATE isolates_counters SET n = n + 1 WHERE id = $1", [id]);
      await tx.execute("INSERT INTO isolates_history (counter_id, worker) VALUES ($1, $2)", [id, cfg.id]);
    });
  };

  const task = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const n = seq++;
      const isWrite = n % cfg.writeEvery === 0;
      const t0 = performance.now();
      try {
        if (isWrite) await write((n % cfg.counters) + 1);
        else await read((n % cfg.items) + 1);
        latencies.push(Math.round((performance.now() - t0) * 100) / 100);
        if (isWrite) writes++;
        else reads++;
      } catch (e) {
        const code = String((e as { code?: unknown }).code ?? (e instanceof Error ? e.name : "UNKNOWN"));
        errors[code] = (errors[code] ?? 0) + 1;
        messages[code] ??= e instanceof Error ? e.message.slice(0, 200) : String(e).slice(0, 200);
        // A request that failed at once (the server refused a connection) is not retried in a tight loop.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, task));
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const { connectCount: opened, connectErrorCount: connectErrors } = pool.stats();
  if (process.env.ISOLATES_DEBUG) process.stderr.write(JSON.stringify(pool.stats()) + "\n");
  const c0 = performance.now();
  await pool.close({ timeout: 5 });
  const result: WorkerResult = {
    type: "result",
    id: cfg.id,
    ops: reads + writes,
    reads,
    writes,
    elapsedMs,
    latencies,
    errors,
    messages,
    opened,
    connectErrors,
    cpuUs: cpu.user + cpu.system,
    closeMs: performance.now() - c0,
  };
  send(result);
}

main().catch((e) => {
  process.stderr.write(`worker failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});

/**
 * One worker of bench/isolates.ts: a process of its own (so an isolate of its own) with its own small
 * pool, as one Deno Deploy isolate or one Bun instance would have.
 *
 * Reads its fixed settings from the `ISOLATES_WORKER` environment variable (JSON, see
 * {@linkcode WorkerConfig}), prints `{"type":"started"}`, then follows the parent's lines on stdin: for each
 * `{"type":"phase", …}` it creates a pool of its own (the phase's DSN, poolMode and maxSize), prints
 * `{"type":"ready"}`, waits for the next line (the go), runs `concurrency` tasks for the phase's duration —
 * each loops over a fixed mix of a one-shot `SELECT` by id and a short write transaction — closes the pool
 * and prints `{"type":"result", …}`. When stdin ends it exits by itself: nothing of a closed pool may keep
 * the process alive (the parent kills it if it does, and says so).
 *
 * @module
 */

import process from "node:process";
import { createPool, type PoolMode } from "../mod.ts";

/** What a worker is told once, at spawn (the `ISOLATES_WORKER` environment variable). */
export interface WorkerConfig {
  /** Worker number, from 0. */
  id: number;
  /** Tasks running the load at once. */
  concurrency: number;
  /** Rows of `isolates_items` (ids 1..items). */
  items: number;
  /** Rows of `isolates_counters` (ids 1..counters). */
  counters: number;
  /** One in `writeEvery` operations is the write transaction; the others the one-shot read. */
  writeEvery: number;
}

/** One phase: a pool of its own against `dsn`, the load for `durationMs`, the pool closed. */
export interface PhaseMessage {
  type: "phase";
  /** Phase number (echoed in the answers). */
  phase: number;
  /** Where to connect: the server or PgBouncer. */
  dsn: string;
  /** The pool's `poolMode`. */
  poolMode: PoolMode;
  /** The pool's `maxSize`. */
  maxSize: number;
  /** How long the load runs, in milliseconds. */
  durationMs: number;
}

/** What a worker reports at the end of a phase. */
export interface WorkerResult {
  type: "result";
  id: number;
  phase: number;
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

/** The lines the parent writes on stdin, one at a time; undefined once stdin ended. */
function stdinLines(): () => Promise<string | undefined> {
  const queue: string[] = [];
  let waiter: ((line: string | undefined) => void) | undefined;
  let ended = false;
  let buffered = "";
  const deliver = (line: string | undefined): void => {
    const w = waiter;
    waiter = undefined;
    if (w) w(line);
    else if (line !== undefined) queue.push(line);
  };
  process.stdin.on("data", (d: Uint8Array | string) => {
    buffered += typeof d === "string" ? d : new TextDecoder().decode(d);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      deliver(line);
    }
  });
  process.stdin.on("end", () => {
    ended = true;
    deliver(undefined);
  });
  return () => {
    if (queue.length > 0) return Promise.resolve(queue.shift());
    if (ended) return Promise.resolve(undefined);
    return new Promise((resolve) => waiter = resolve);
  };
}

async function runPhase(
  cfg: WorkerConfig,
  phase: PhaseMessage,
  next: () => Promise<string | undefined>,
): Promise<WorkerResult | undefined> {
  // What a deployment would set per isolate: a small maxSize, no kept floor, idle connections closed soon.
  const pool = await createPool(phase.dsn, {
    poolMode: phase.poolMode,
    maxSize: phase.maxSize,
    minSize: 0,
    maxInactiveConnectionLifetime: 30,
    onWarning: () => {},
  });
  send({ type: "ready", id: cfg.id, phase: phase.phase });
  const go = await next();
  if (go === undefined) {
    await pool.close({ timeout: 5 });
    return undefined;
  }

  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const messages: Record<string, string> = {};
  let reads = 0;
  let writes = 0;
  let seq = cfg.id * 7919 + phase.phase * 104729;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + phase.durationMs;

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
  return {
    type: "result",
    id: cfg.id,
    phase: phase.phase,
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
}

async function main(): Promise<void> {
  const raw = process.env.ISOLATES_WORKER;
  if (!raw) throw new Error("ISOLATES_WORKER is not set: this file is started by bench/isolates.ts");
  const cfg = JSON.parse(raw) as WorkerConfig;
  const next = stdinLines();
  send({ type: "started", id: cfg.id });
  for (let line = await next(); line !== undefined; line = await next()) {
    const msg = JSON.parse(line) as PhaseMessage | { type: "end" };
    if (msg.type !== "phase") break;
    const result = await runPhase(cfg, msg, next);
    if (result === undefined) break;
    send(result);
  }
  // Nothing else: with every pool closed and stdin at its end, the process exits by itself.
}

main().catch((e) => {
  process.stderr.write(`worker failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});

/**
 * What every in-process contender offers the scenarios, and the load loops
 * that drive it.
 *
 * A contender is one client library's pool, opened against the benchmark
 * server with a given size. Scenarios only use `checkout(fn)` (reserve a
 * connection, run `fn` on it, give it back), `oneShot(sql, args)` (let the pool
 * pick a connection for a single statement), `oneShotRow(sql, args)` where the
 * library has a one-shot that returns a row (our `pool.fetchRow()`), and
 * `close()`. SQL uses `$n`
 * placeholders in ascending order so each library can run it natively.
 *
 * @module
 */

import { LatencyLog, type Sample, sampleFrom } from "./stats.ts";

/** A reserved connection as seen inside `checkout(fn)`. */
export interface Querier {
  /** Runs one statement with parameters; resolves to whatever the library returns. */
  query(sql: string, args?: readonly unknown[]): Promise<unknown>;
}

/** One client library's pool. */
export interface Contender {
  /** Reserves a connection, runs `fn` with it, releases it (also when `fn` throws). */
  checkout<T>(fn: (q: Querier) => Promise<T>): Promise<T>;
  /** Runs one statement on any pooled connection. */
  oneShot(sql: string, args?: readonly unknown[]): Promise<unknown>;
  /**
   * Runs one statement on any pooled connection and resolves to its first row,
   * when the library has such a helper; else scenarios take the first row of
   * `oneShot`'s result (see `oneShotRow()` below).
   */
  oneShotRow?(sql: string, args?: readonly unknown[]): Promise<unknown>;
  /** Closes every connection. */
  close(): Promise<void>;
}

/** A library the harness knows how to open. */
export interface ContenderKind {
  /** Stable key used in the JSON and on the command line (`--contenders=`). */
  key: string;
  /** Label in tables, e.g. "postgres.js". */
  label: string;
  /** API used for checkouts, e.g. "reserve()/release()". */
  checkoutApi: string;
  /** API used for one-shots, e.g. "sql``". */
  oneShotApi: string;
  /** API of `Contender.oneShotRow`, e.g. "pool.fetchRow()"; `oneShotApi` when absent. */
  oneShotRowApi?: string;
  /** Why this contender cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  /** Opens a pool of `size` connections (lazily or eagerly, as the library does). */
  open(dsn: string, size: number): Promise<Contender>;
}

/** The runtime this process is: "deno", "bun" or "node". */
export const runtime: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** The first row of whatever a library returned (an array, pg's result, or a row already). */
export function firstRow(result: unknown): unknown {
  if (Array.isArray(result)) return result[0];
  if (result !== null && typeof result === "object" && "rows" in result) {
    return (result as { rows: unknown[] }).rows[0];
  }
  return result;
}

/** Runs `sql` as a one-shot and resolves to its first row, through the library's row helper when it has one. */
export async function oneShotRow(c: Contender, sql: string, args?: readonly unknown[]): Promise<unknown> {
  return c.oneShotRow ? await c.oneShotRow(sql, args) : firstRow(await c.oneShot(sql, args));
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `tasks` concurrent loops of `op(i)` for `ms` milliseconds and records
 * each operation's latency. A loop stops after the operation in flight at the
 * deadline; throughput counts every completed operation over the whole time.
 */
export async function runLoop(
  tasks: number,
  ms: number,
  op: (i: number) => Promise<unknown>,
): Promise<Sample> {
  const log = new LatencyLog();
  let ops = 0;
  let counter = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const one = async (): Promise<void> => {
    while (performance.now() < end) {
      const start = performance.now();
      await op(++counter);
      log.push(performance.now() - start);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: tasks }, one));
  return sampleFrom(ops, (performance.now() - t0) / 1000, log);
}

/**
 * Checks out every one of `size` connections at once (so a lazy pool opens
 * them all), runs `whileHeld` while all are held, then releases them.
 */
export async function holdAll(
  c: Contender,
  size: number,
  whileHeld: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  let held = 0;
  let allHeld!: () => void;
  const everyoneIn = new Promise<void>((resolve) => (allHeld = resolve));
  let letGo!: () => void;
  const released = new Promise<void>((resolve) => (letGo = resolve));
  const holders = Array.from({ length: size }, () =>
    c.checkout(async (q) => {
      await q.query("SELECT 1");
      if (++held === size) allHeld();
      await released;
    }));
  await everyoneIn;
  try {
    await whileHeld();
  } finally {
    letGo();
    await Promise.all(holders);
  }
}

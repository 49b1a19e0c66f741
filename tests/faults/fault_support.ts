/**
 * Shared pieces of the fault scenarios (tests/faults/*_test.ts): the pool
 * invariant check every scenario ends with, an unhandled-rejection trap, a
 * worker load with error tallies, recovery-time measurement and a report line.
 *
 * @module
 */

import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, type Pool } from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { codeOf } from "../support/ledger.ts";
import type { Clock, TimerHandle } from "../../src/core/clock.ts";

export { codeOf, errorParts } from "../support/ledger.ts";

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settles with `p`, or rejects after `ms` so a hang fails the test instead of stalling it. */
export function within<T>(ms: number, p: Promise<T>, what = "the operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Polls until `check` is truthy; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** The error `p` rejects with; fails when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  assert.fail("expected the promise to reject");
}

/** Catches unhandled rejections while installed. */
export interface RejectionTrap {
  /** Reasons caught so far. */
  readonly caught: unknown[];
  /** Uninstalls the trap and fails when anything was caught. */
  check(): void;
}

/** Installs a {@linkcode RejectionTrap} (works under Deno, Bun and Node). */
export function trapUnhandledRejections(): RejectionTrap {
  const caught: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    caught.push(reason);
  };
  process.on("unhandledRejection", onRejection);
  return {
    caught,
    check(): void {
      process.off("unhandledRejection", onRejection);
      assert.deepEqual(caught.map((r) => codeOf(r)), [], "no unhandled rejection");
    },
  };
}

/** Counts outcomes by code. */
export class Tally {
  ok = 0;
  readonly errors = new Map<string, number>();

  /** Records one error. */
  fail(e: unknown): string {
    const code = codeOf(e);
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    return code;
  }

  /** Errors in total. */
  get failed(): number {
    let n = 0;
    for (const v of this.errors.values()) n += v;
    return n;
  }

  /** Codes seen. */
  codes(): string[] {
    return [...this.errors.keys()].sort();
  }

  /** `ok 12, 57P01×3 ...`. */
  toString(): string {
    const parts = [...this.errors].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`);
    return `ok ${this.ok}${parts.length ? ", " + parts.join(" ") : ""}`;
  }
}

/** A running load of workers; `stop()` ends it and waits, bounded, for every worker. */
export interface Load {
  readonly tally: Tally;
  /** Milliseconds since the start of the last successful operation (Infinity before any). */
  lastOkAt(): number;
  /** Stops the workers and waits for all of them (fails if one hangs). */
  stop(boundMs?: number): Promise<void>;
}

/**
 * Starts `workers` loops of `op` until stopped. After a failure a worker pauses
 * `backoffMs`, so a dead server does not become a busy loop on a small machine.
 */
export function startLoad(
  workers: number,
  op: (worker: number, iteration: number) => Promise<unknown>,
  backoffMs = 10,
): Load {
  const tally = new Tally();
  let stopped = false;
  let lastOk = -Infinity;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      try {
        await op(w, i);
        tally.ok++;
        lastOk = Date.now();
      } catch (e) {
        tally.fail(e);
        await sleep(backoffMs);
      }
    }
  });
  const all = Promise.all(loops);
  return {
    tally,
    lastOkAt: () => lastOk,
    async stop(boundMs = 15_000): Promise<void> {
      stopped = true;
      await within(boundMs, all, `${workers} load workers`);
    },
  };
}

/**
 * Measures how long after `since` the pool answers `SELECT 1` again (polling
 * with short bounded queries); fails after `limitMs`.
 */
export async function recoveryTime(pool: Pool, since: number, limitMs = 15_000): Promise<number> {
  for (;;) {
    try {
      const v = await pool.fetchVal("SELECT 1", [], { timeout: 1 });
      if (v === 1) return Date.now() - since;
    } catch { /* not yet */ }
    if (Date.now() - since > limitMs) assert.fail(`the pool did not recover within ${limitMs} ms`);
    await sleep(20);
  }
}

/**
 * The invariant every fault scenario ends with:
 * `getIdleSize() ≤ getSize() ≤ maxSize`, no waiter left, no leaked slot (all
 * `maxSize` connections can be checked out at once, each answers a query), and
 * every connection comes back idle after release.
 */
export async function assertPoolInvariants(
  pool: Pool,
  opts: { label?: string; acquireTimeout?: number } = {},
): Promise<void> {
  const label = opts.label ? `${opts.label}: ` : "";
  const max = pool.getMaxSize();
  assert.ok(
    pool.getIdleSize() <= pool.getSize(),
    `${label}idle ${pool.getIdleSize()} ≤ size ${pool.getSize()}`,
  );
  assert.ok(pool.getSize() <= max, `${label}size ${pool.getSize()} ≤ max ${max}`);
  assert.equal(pool.getWaitingCount(), 0, `${label}no waiter left`);
  assert.equal(pool.isClosing(), false, `${label}the pool is still open`);
  const timeout = opts.acquireTimeout ?? 5;
  const cons = await within(
    (timeout + 2) * 1000,
    Promise.all(Array.from({ length: max }, () => pool.acquire({ timeout }))),
    `${label}checking out all ${max} connections`,
  );
  try {
    assert.equal(pool.getSize(), max, `${label}every slot could be used`);
    assert.equal(pool.getIdleSize(), 0);
    const pids = await Promise.all(
      cons.map((c) => c.fetchVal<number>("SELECT pg_backend_pid()", [], { timeout })),
    );
    assert.equal(new Set(pids).size, max, `${label}${max} distinct backends`);
  } finally {
    await within(
      (timeout + 2) * 1000,
      Promise.all(cons.map((c) => pool.release(c, { timeout }))),
      "releases",
    );
  }
  assert.equal(pool.getIdleSize(), pool.getSize(), `${label}all connections idle again`);
  assert.ok(pool.getSize() <= max);
  assert.equal(pool.getWaitingCount(), 0);
}

/**
 * Waits until the server lists exactly as many sessions of application `app` as the pool holds
 * (a dropped connection's backend may take a moment to exit).
 */
export async function waitForServerSessions(
  admin: Connection,
  app: string,
  pool: Pool,
  timeoutMs = 5000,
): Promise<void> {
  await waitFor(
    "the server's session count to match the pool",
    async () =>
      Number(
        await admin.fetchVal("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [app]),
      ) ===
        pool.getSize(),
    timeoutMs,
  );
}

/** One of a pool's sessions as the server lists it. */
export interface ServerSession {
  pid: number;
  state: string;
  query: string;
}

/**
 * The test server and an admin connection to it, both started on first use inside a test (Bun bounds
 * hooks at 5 s whatever they are given, and a cold start on a loaded machine can take that long).
 */
export class LazyAdmin {
  readonly #name: string;
  #server: TestServer | undefined;
  #con: Connection | undefined;

  /** @param name The admin connection's application_name. */
  constructor(name: string) {
    this.#name = name;
  }

  /** The server (started on first use). */
  async server(): Promise<TestServer> {
    return this.#server ??= await getTestServer();
  }

  /** The admin connection (opened on first use). */
  async connection(): Promise<Connection> {
    const server = await this.server();
    return this.#con ??= await connect(server.dsn, { applicationName: this.#name });
  }

  /** The sessions of application `app` on the server: pid, state and query. */
  async sessions(app: string): Promise<ServerSession[]> {
    return await (await this.connection()).fetch<ServerSession>(
      "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1",
      [app],
    );
  }

  /** Closes the admin connection, if it was opened. */
  async close(): Promise<void> {
    await this.#con?.close();
  }
}

/** Prints one line of scenario numbers (recovery times etc.) to the test output. */
export function note(scenario: string, text: string): void {
  console.log(`[fault] ${scenario}: ${text}`);
}

/** The DSN with `?key=value` parameters added. */
export function withParams(dsn: string, params: Record<string, string>): string {
  const url = new URL(dsn);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * The system clock, counting the timers armed on it that have neither fired nor
 * been cleared: with `pending === 0` and no socket open, nothing can wake a pool
 * that uses it (how a test proves "no background loop" without sleeping).
 */
export class TrackingClock implements Clock {
  #pending = new Set<ReturnType<typeof setTimeout>>();

  now(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = setTimeout(() => {
      this.#pending.delete(handle);
      fn();
    }, ms);
    this.#pending.add(handle);
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#pending.delete(handle as ReturnType<typeof setTimeout>);
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.#pending.size;
  }
}

/** A small deterministic PRNG (mulberry32), so a failing storm can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The abort reason of the cancellation storms. */
export class StormAbort extends Error {
  constructor() {
    super("storm abort");
    this.name = "StormAbort";
  }
}

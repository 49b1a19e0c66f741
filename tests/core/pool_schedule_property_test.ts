/**
 * The scheduler property test: fast-check generates a pool shape, how each hook
 * behaves (resolve, reject, hang, or take longer than the bounds) and a list of
 * commands (acquire with and without timeout or abort, release with and without
 * timeout, twice, of a stale proxy, aborts, dying connections,
 * `expireConnections()`, `close()`, `terminate()`, clock ticks); its scheduler
 * decides in which order the hooks' results reach the pool. Over the fake
 * driver and the fake clock, after every command and after every run:
 *
 * - every bounded operation settled within its bound, and every operation settled in the end;
 * - `0 <= idle <= size <= maxSize`, and the driver's open connections are the pool's size;
 * - no waiter left, and the pool still serves `maxSize` checkouts at once (no slot leaked);
 * - waiters were served in arrival order;
 * - no operation touched another checkout: two live checkouts never share a
 *   connection, and a live checkout's connection is closed by nobody but the test
 *   (`maxLifetime` never cuts a checkout);
 * - at most `maxConcurrentConnects` connection attempts run at once, and the kept
 *   floor is back to `minSize` once the hooks work again;
 * - `stats()` adds up: its counters never go down, every closed connection was
 *   opened (Σ closeCount <= connectCount, and = after close), `acquireCount` is the
 *   checkouts the test got, and the pool opened no connection the driver did not make.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BasePool as Pool } from "../../src/core/pool.ts";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import type { Connection } from "../../src/core/connection.ts";
import type { ConnectOptions } from "../../src/core/driver.ts";
import type { PoolStats } from "../../src/core/pool_stats.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";
import {
  FakeDriver,
  type FakeDriverConnection,
  type Outcome,
  type Script,
  ScriptedError,
} from "../support/fake_driver.ts";

const RUNS =
  Number((globalThis as { process?: { env?: Record<string, string> } }).process?.env?.SCHEDULE_RUNS) ||
  2000;

type HookName = "connect" | "init" | "setup" | "reset";
type HookOutcome = "ok" | "error" | "slow" | "hang";

interface Shape {
  maxSize: number;
  minSize: number;
  /** Seconds. */
  releaseTimeout: number;
  /** Seconds; 0 = none. */
  idleLifetime: number;
  /** Seconds (`maxLifetime`, jitter 30% of it); 0 = none. */
  lifetime: number;
  /** `maxConcurrentConnects`. */
  connects: number;
  /** `pingAfterIdle` in seconds (null = never). */
  ping: number | null;
  /** How the liveness pings answer, in turn (cycled): "never" ones end at the pool's release bound. */
  pings: Outcome[];
  useInit: boolean;
  useSetup: boolean;
  /** How long a "slow" hook takes (ms): longer than most bounds. */
  slowMs: number;
  /** Each hook's outcomes, used in turn (cycled). */
  hooks: Record<HookName, HookOutcome[]>;
}

type Command =
  | { kind: "acquire"; timeout: number | undefined; abortable: boolean }
  | { kind: "release"; pick: number; timeout: number | undefined; twice: boolean }
  | { kind: "abort"; pick: number }
  | { kind: "kill"; pick: number }
  | { kind: "expire" }
  | { kind: "close"; timeout: number | undefined }
  | { kind: "terminate" }
  | { kind: "tick"; ms: number }
  | { kind: "step"; n: number };

const outcomeArb: fc.Arbitrary<HookOutcome> = fc.oneof(
  { arbitrary: fc.constant("ok" as const), weight: 8 },
  { arbitrary: fc.constant("error" as const), weight: 1 },
  { arbitrary: fc.constant("slow" as const), weight: 2 },
  { arbitrary: fc.constant("hang" as const), weight: 1 },
);
const outcomesArb = fc.array(outcomeArb, { minLength: 1, maxLength: 5 });

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  maxSize: fc.integer({ min: 1, max: 3 }),
  minSize: fc.integer({ min: 0, max: 2 }),
  releaseTimeout: fc.constantFrom(0.2, 0.5, 1),
  idleLifetime: fc.constantFrom(0, 0, 0.4),
  lifetime: fc.constantFrom(0, 0, 0.5, 1.5),
  ping: fc.constantFrom(null, 0, 0.3),
  connects: fc.constantFrom(1, 2),
  pings: fc.array(
    fc.oneof(
      { arbitrary: fc.constant("ok" as const), weight: 6 },
      { arbitrary: fc.constant("error" as const), weight: 2 },
      { arbitrary: fc.constant("slow" as const), weight: 1 },
      { arbitrary: fc.constant("never" as const), weight: 1 },
    ),
    { minLength: 1, maxLength: 4 },
  ),
  useInit: fc.boolean(),
  useSetup: fc.boolean(),
  slowMs: fc.constantFrom(150, 600),
  hooks: fc.record({ connect: outcomesArb, init: outcomesArb, setup: outcomesArb, reset: outcomesArb }),
}).map((shape) => ({ ...shape, minSize: Math.min(shape.minSize, shape.maxSize) }));

const seconds = fc.constantFrom(0.1, 0.3, 0.8);
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("acquire" as const),
      timeout: fc.option(seconds, { nil: undefined }),
      abortable: fc.boolean(),
    }),
    weight: 12,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      pick: fc.nat(),
      timeout: fc.option(seconds, { nil: undefined }),
      twice: fc.boolean(),
    }),
    weight: 10,
  },
  { arbitrary: fc.record({ kind: fc.constant("abort" as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("kill" as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("expire" as const) }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("close" as const),
      timeout: fc.option(seconds, { nil: undefined }),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant("terminate" as const) }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.constantFrom(50, 100, 200, 400) }),
    weight: 8,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("step" as const), n: fc.integer({ min: 1, max: 4 }) }),
    weight: 12,
  },
);
const commandsArb = fc.array(commandArb, { minLength: 4, maxLength: 40, size: "max" });

/** One operation the test started: when, its bound, and how it ended. */
interface Op {
  what: string;
  startedAt: number;
  /** Ms within which it must settle; undefined when nothing bounds it. */
  bound: number | undefined;
  settledAt: number | undefined;
}

/** One acquire the test made. */
interface Acquire {
  op: Op;
  seq: number;
  timeoutMs: number | undefined;
  queued: boolean;
  controller: AbortController | undefined;
  settled: boolean;
}

/** One checkout the test got. */
interface Held {
  proxy: PoolConnection;
  pid: number;
  /** The test called `release()` on it. */
  released: boolean;
  /** The acquire's timeout (ms): the release's default bound. */
  timeoutMs: number | undefined;
  /** Clock time by which its first release must settle (a repeated release returns the same promise). */
  releasedBy: number;
}

/** The hooks: outcomes in turn; results reach the pool in the order the scheduler picks. */
class Hooks {
  readonly #s: fc.Scheduler;
  readonly #clock: FakeClock;
  readonly #shape: Shape;
  readonly #turn: Record<HookName, number> = { connect: 0, init: 0, setup: 0, reset: 0 };
  /** Rejects every hook that hangs (the end of a run lets them go). */
  readonly hung = new Set<(e: Error) => void>();
  /** From now on every hook succeeds at once (the recovery check). */
  healthy = false;
  #letGo = false;

  constructor(s: fc.Scheduler, clock: FakeClock, shape: Shape) {
    this.#s = s;
    this.#clock = clock;
    this.#shape = shape;
  }

  run(hook: HookName, signal?: AbortSignal): Promise<void> {
    const list = this.#shape.hooks[hook];
    let outcome = this.healthy ? "ok" : list[this.#turn[hook]++ % list.length]!;
    if (outcome === "hang" && this.#letGo) outcome = "error";
    const s = this.#s;
    switch (outcome) {
      case "ok":
        return s.schedule(Promise.resolve(), `${hook} ok`);
      case "error":
        return s.schedule(Promise.reject(new ScriptedError(hook)), `${hook} error`);
      case "slow":
        // Scheduled once its time has come: the scheduler only orders results that exist.
        return new Promise<void>((resolve) => this.#clock.setTimeout(resolve, this.#shape.slowMs))
          .then(() => s.schedule(Promise.resolve(), `${hook} slow`));
      case "hang":
        return new Promise<void>((_, reject) => {
          const fail = (e: Error): void => {
            this.hung.delete(fail);
            reject(e);
          };
          this.hung.add(fail);
          if (signal === undefined) return;
          const onAbort = (): void =>
            void s.schedule(Promise.resolve(), `${hook} aborted`).then(() => fail(signal.reason));
          if (signal.aborted) onAbort();
          else signal.addEventListener("abort", onAbort, { once: true });
        });
    }
  }

  /** Lets every hanging hook fail; from now on a hook that would hang fails. */
  release(): void {
    this.#letGo = true;
    for (const fail of [...this.hung]) fail(new ScriptedError("hung hook"));
  }
}

/** One run: builds the pool, plays the commands, checks after each one and at the end. */
class Run {
  readonly clock = new FakeClock();
  readonly driver: FakeDriver;
  readonly hooks: Hooks;
  readonly pool: Pool;
  readonly shape: Shape;
  readonly s: fc.Scheduler;
  readonly ops: Op[] = [];
  readonly acquires: Acquire[] = [];
  readonly held: Held[] = [];
  readonly killed = new Set<number>();
  ended = false;
  #seq = 0;
  /** Connect calls under way. */
  connecting = 0;
  /** Checkouts the test got (recovery ones included). */
  got = 0;
  #lastStats: Record<string, number> | undefined;
  /** The first broken rule, if any. */
  broken: string | undefined;

  constructor(s: fc.Scheduler, shape: Shape) {
    this.s = s;
    this.shape = shape;
    this.driver = new FakeDriver(this.clock);
    // The only statements the test runs are the pool's pings: they answer as the shape says.
    let ping = 0;
    this.driver.query = {
      next: (): Outcome => this.hooks.healthy ? "ok" : shape.pings[ping++ % shape.pings.length]!,
    } as Script;
    const hooks = this.hooks = new Hooks(s, this.clock, shape);
    const driver = this.driver;
    this.pool = new Pool({
      clock: this.clock,
      maxSize: shape.maxSize,
      minSize: shape.minSize,
      releaseTimeout: shape.releaseTimeout,
      maxInactiveConnectionLifetime: shape.idleLifetime,
      maxLifetime: shape.lifetime,
      maxLifetimeJitter: shape.lifetime * 0.3,
      pingAfterIdle: shape.ping,
      maxConcurrentConnects: shape.connects,
      connect: async (options: ConnectOptions): Promise<Connection> => {
        if (++this.connecting > shape.connects) {
          this.fail(`${this.connecting} connects at once, maxConcurrentConnects ${shape.connects}`);
        }
        try {
          await hooks.run("connect", options.signal);
          return await driver.hook(options);
        } finally {
          this.connecting--;
        }
      },
      init: shape.useInit ? () => hooks.run("init") : undefined,
      setup: shape.useSetup ? () => hooks.run("setup") : undefined,
      reset: () => hooks.run("reset"),
      onWarning: () => {},
    });
  }

  fail(message: string): void {
    this.broken ??= `${message} (at ${this.clock.now()} ms)`;
  }

  track<T>(what: string, promise: Promise<T>, bound: number | undefined, then?: (value: T) => void): Op {
    const op: Op = { what, startedAt: this.clock.now(), bound, settledAt: undefined };
    this.ops.push(op);
    promise.then((value) => {
      op.settledAt = this.clock.now();
      then?.(value);
    }, () => {
      op.settledAt = this.clock.now();
    });
    return op;
  }

  /** Lets the scheduler hand over up to `n` hook results, in the order it picks. */
  async step(n: number): Promise<void> {
    for (let i = 0; i < n && this.s.count() > 0; i++) {
      await this.s.waitOne();
      await flush(50);
    }
  }

  /** Everything the scheduler holds, and time enough for every bound and slow hook. */
  async drain(rounds: number): Promise<void> {
    for (let r = 0; r < rounds; r++) {
      await this.step(Infinity);
      await this.clock.tick(250);
      await this.step(Infinity);
    }
  }

  acquire(timeout: number | undefined, abortable: boolean): void {
    const controller = abortable ? new AbortController() : undefined;
    const options = timeout === undefined && controller === undefined
      ? undefined
      : { timeout, signal: controller?.signal };
    const before = this.pool.getWaitingCount();
    const promise = this.pool.acquire(options);
    const queued = this.pool.getWaitingCount() > before;
    const timeoutMs = timeout === undefined ? undefined : timeout * 1000;
    const a: Acquire = {
      op: undefined as unknown as Op,
      seq: this.#seq++,
      timeoutMs,
      queued,
      controller,
      settled: false,
    };
    this.acquires.push(a);
    a.op = this.track(`acquire #${a.seq}`, promise, timeoutMs, (proxy) => this.#got(a, proxy));
    promise.then(() => a.settled = true, () => a.settled = true);
  }

  #got(a: Acquire, proxy: PoolConnection): void {
    this.got++;
    // FIFO: once a queued acquire is served, every acquire still waiting must have come after it.
    if (a.queued) {
      let newer = 0;
      for (const b of this.acquires) if (b.queued && !b.settled && b.seq > a.seq) newer++;
      const waiting = this.pool.getWaitingCount();
      if (waiting > newer) {
        this.fail(`acquire #${a.seq} was served while ${waiting - newer} earlier acquire(s) still waited`);
      }
    }
    this.held.push({
      proxy,
      pid: proxy.getServerPid(),
      released: false,
      timeoutMs: a.timeoutMs,
      releasedBy: 0,
    });
  }

  release(pick: number, timeout: number | undefined, twice: boolean): void {
    if (this.held.length === 0) return;
    this.#release(this.held[pick % this.held.length]!, timeout, twice); // a live checkout, or a stale proxy
  }

  #release(h: Held, timeout: number | undefined, twice = false): void {
    const now = this.clock.now();
    if (!h.released) {
      h.released = true;
      h.releasedBy = now +
        ((timeout === undefined ? h.timeoutMs : timeout * 1000) ?? this.shape.releaseTimeout * 1000);
    }
    const bound = Math.max(0, h.releasedBy - now);
    const options = timeout === undefined ? undefined : { timeout };
    this.track(`release of ${h.pid}`, this.pool.release(h.proxy, options), bound);
    if (twice) this.track(`second release of ${h.pid}`, this.pool.release(h.proxy, options), bound);
  }

  async play(c: Command): Promise<void> {
    switch (c.kind) {
      case "acquire":
        this.acquire(c.timeout, c.abortable);
        break;
      case "release":
        this.release(c.pick, c.timeout, c.twice);
        break;
      case "abort": {
        const live = this.acquires.filter((a) => a.controller !== undefined && !a.controller.signal.aborted);
        if (live.length > 0) live[c.pick % live.length]!.controller!.abort(new Error("aborted by the test"));
        break;
      }
      case "kill": {
        const open = this.driver.connections.filter((d) => !d.isClosed());
        if (open.length > 0) {
          const d = open[c.pick % open.length]!;
          this.killed.add(d.pid);
          d.kill();
        }
        break;
      }
      case "expire":
        this.pool.expireConnections();
        break;
      case "close": {
        // A close() while one runs returns that one's promise: only the first close's timeout bounds it.
        const bound = c.timeout === undefined || this.pool.isClosing() ? undefined : c.timeout * 1000;
        this.ended = true;
        const options = c.timeout === undefined ? undefined : { timeout: c.timeout };
        this.track("close", this.pool.close(options), bound);
        break;
      }
      case "terminate":
        this.ended = true;
        this.pool.terminate();
        break;
      case "tick":
        await this.clock.tick(c.ms);
        break;
      case "step":
        await this.step(c.n);
        break;
    }
    await flush(50);
    this.checkNow();
  }

  #conn(pid: number): FakeDriverConnection | undefined {
    return this.driver.connections.find((d) => d.pid === pid);
  }

  /** What `stats()` says, checked against itself, its last snapshot and the test's own counts. */
  checkStats(final: boolean): void {
    const st = this.pool.stats();
    const flat = flatStats(st);
    const closes = Object.values(st.closeCount).reduce((x, y) => x + y, 0);
    if (closes > st.connectCount) this.fail(`stats: ${closes} closes of ${st.connectCount} connections`);
    if (st.size > st.connectCount - closes) {
      this.fail(`stats: size ${st.size} but ${st.connectCount} opened and ${closes} closed`);
    }
    if (st.connectCount > this.driver.connections.length) {
      this.fail(`stats: ${st.connectCount} connects but the driver made ${this.driver.connections.length}`);
    }
    if (st.waiting !== this.pool.getWaitingCount() || st.size !== st.idle + st.busy) {
      this.fail(`stats: gauges disagree ${JSON.stringify(st)}`);
    }
    if (st.acquireCount < this.got || (final && st.acquireCount !== this.got)) {
      this.fail(`stats: acquireCount ${st.acquireCount}, the test got ${this.got} checkouts`);
    }
    const last = this.#lastStats;
    if (last !== undefined) {
      for (const [k, v] of Object.entries(flat)) {
        if (v < last[k]!) this.fail(`stats: ${k} went down from ${last[k]} to ${v}`);
      }
    }
    this.#lastStats = flat;
    if (final && this.pool.isClosing() && this.driver.open === 0 && closes !== st.connectCount) {
      this.fail(`stats: closed pool counts ${closes} closes of ${st.connectCount} connections`);
    }
  }

  /** The rules that hold at every quiet point. */
  checkNow(): void {
    const { pool } = this;
    this.checkStats(false);
    const size = pool.getSize();
    const idle = pool.getIdleSize();
    if (!(idle >= 0 && idle <= size && size <= pool.getMaxSize())) {
      this.fail(`sizes out of range: idle ${idle}, size ${size}, max ${pool.getMaxSize()}`);
    }
    const now = this.clock.now();
    for (const op of this.ops) {
      if (op.bound !== undefined && op.settledAt === undefined && now - op.startedAt > op.bound) {
        this.fail(`${op.what} did not settle within ${op.bound} ms`);
      }
      if (op.bound !== undefined && op.settledAt !== undefined && op.settledAt - op.startedAt > op.bound) {
        this.fail(`${op.what} settled after ${op.settledAt - op.startedAt} ms, past its ${op.bound} ms`);
      }
    }
    if (this.ended) return;
    const pids = new Set<number>();
    for (const h of this.held) {
      if (h.released) continue;
      if (pids.has(h.pid)) this.fail(`two live checkouts share connection ${h.pid}`);
      pids.add(h.pid);
      if (!this.killed.has(h.pid) && this.#conn(h.pid)?.isClosed()) {
        this.fail(`the connection ${h.pid} of a live checkout was closed by someone else`);
      }
    }
  }

  /** Ends the run: releases everything, lets hung hooks go, and checks what is left. */
  async finish(): Promise<void> {
    const { pool, driver } = this;
    // Bounded operations settle within their bounds even while hooks hang.
    for (let r = 0; r < 8; r++) {
      for (const h of this.held.filter((x) => !x.released)) this.#release(h, undefined);
      await this.drain(2);
      this.checkNow();
    }
    this.hooks.release();
    for (let r = 0; r < 8; r++) {
      for (const h of this.held.filter((x) => !x.released)) this.#release(h, undefined);
      await this.drain(2);
    }
    this.checkNow();
    const pending = this.ops.filter((op) => op.settledAt === undefined);
    if (pending.length > 0) this.fail(`never settled: ${pending.map((op) => op.what).join(", ")}`);
    if (pool.getWaitingCount() !== 0) this.fail(`${pool.getWaitingCount()} waiter(s) left`);
    if (driver.open !== pool.getSize()) {
      this.fail(`the driver has ${driver.open} open connection(s), the pool counts ${pool.getSize()}`);
    }
    if (this.broken !== undefined) return;
    if (!pool.isClosing()) {
      // No slot leaked: the pool still serves maxSize checkouts at once.
      this.hooks.healthy = true;
      const all = Array.from({ length: this.shape.maxSize }, () => pool.acquire({ timeout: 1 }));
      const ok: PoolConnection[] = [];
      for (const p of all) {
        p.then((proxy) => {
          this.got++;
          ok.push(proxy);
        }, () => {});
      }
      await this.drain(6);
      if (ok.length !== this.shape.maxSize) {
        this.fail(`after the run only ${ok.length} of ${this.shape.maxSize} slots could be checked out`);
      }
      const pidsNow = new Set(ok.map((p) => p.getServerPid()));
      if (pidsNow.size !== ok.length) this.fail("the recovery checkouts share a connection");
      const aged = (): number => {
        const c = pool.stats().closeCount;
        return c.maxLifetime + c.idle;
      };
      const agedBefore = aged();
      for (const p of ok) void pool.release(p);
      await this.drain(2);
      // Each comes back idle, unless its lifetime (or idle lifetime) ended meanwhile; the floor may add some.
      const aging = aged() - agedBefore;
      if (pool.getIdleSize() !== pool.getSize() || pool.getSize() < ok.length - aging) {
        this.fail(
          `after recovery ${pool.getIdleSize()} idle, size ${pool.getSize()}, of ${ok.length} (${aging} aged out)`,
        );
      }
      // The kept floor: minSize connections open again once the floor's backoff (at most 5 s) is over.
      await this.drain(24);
      if (pool.getSize() < this.shape.minSize) {
        this.fail(`the floor was not restored: size ${pool.getSize()}, minSize ${this.shape.minSize}`);
      }
    }
    // Never await the pool itself: a broken pool must fail the run, not hang it.
    const closing = this.track("final close", pool.close({ timeout: 0.5 }), 500);
    await this.drain(3);
    if (closing.settledAt === undefined) this.fail("the final close({ timeout: 0.5 }) never settled");
    if (driver.open !== 0) this.fail(`${driver.open} connection(s) left open after close`);
    this.checkStats(true);
  }
}

/** The counters of a snapshot, flattened (gauges left out). */
function flatStats(s: PoolStats): Record<string, number> {
  const out: Record<string, number> = {
    acquireCount: s.acquireCount,
    acquireWaitCount: s.acquireWaitCount,
    acquireWaitTime: s.acquireWaitTime,
    acquireTimeoutCount: s.acquireTimeoutCount,
    acquireAbortCount: s.acquireAbortCount,
    connectCount: s.connectCount,
    connectErrorCount: s.connectErrorCount,
    pingFailCount: s.pingFailCount,
    leakCount: s.leakCount,
  };
  for (const [k, v] of Object.entries(s.closeCount)) out[`closeCount.${k}`] = v;
  return out;
}

describe("Pool scheduling", () => {
  it(
    "Pool keeps its invariants under any order of hook results, timeouts, aborts, deaths and shutdowns",
    { timeout: 240_000 },
    async () => {
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), shapeArb, commandsArb, async (s, shape, commands) => {
          runs++;
          const run = new Run(s, shape);
          run.hooks.healthy = true; // init() warms minSize connections with working hooks
          const init = run.track("init", run.pool.init(), undefined);
          await run.drain(1);
          if (init.settledAt === undefined) throw new Error("init() never settled");
          run.hooks.healthy = false;
          for (const c of commands) {
            await run.play(c);
            if (run.broken !== undefined) break;
          }
          if (run.broken === undefined) await run.finish();
          if (run.broken !== undefined) throw new Error(`${run.broken}\n${s.toString()}`);
        }),
        { numRuns: RUNS },
      );
      assert.ok(runs >= RUNS, `ran ${runs} schedules`);
    },
  );
});

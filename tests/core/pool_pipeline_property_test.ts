/**
 * The pipelining property test: fast-check generates a pool shape (size, `pipelineDepth`,
 * `maxQueries`, lifetime) and a list of commands — one-shots (unbounded, with a timeout, with an
 * abortable signal), acquires, releases, aborts, dying connections, `expireConnections()`, clock
 * ticks — and its scheduler decides in which order the statements' answers reach the pool. Over the
 * fake driver (with `pipelining`) and the fake clock:
 *
 * - a one-shot never runs on the connection of a live checkout;
 * - at most `pipelineDepth` one-shots are in flight on one connection;
 * - nothing is queued behind a one-shot with a timeout or signal until its reset was answered;
 * - every one-shot settles; an unbounded one on a connection nobody killed resolves with its own value;
 * - afterwards no waiter is left, the driver's open connections are the pool's size, and the pool
 *   still serves `maxSize` checkouts at once (no slot leaked).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BasePool as Pool } from "../../src/core/pool.ts";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";
import { FakeDriver, type FakeDriverConnection, type Outcome, type Script } from "../support/fake_driver.ts";

const RUNS =
  Number((globalThis as { process?: { env?: Record<string, string> } }).process?.env?.PIPELINE_RUNS) ||
  1000;

interface Shape {
  maxSize: number;
  minSize: number;
  depth: number;
  maxQueries: number;
  /** Seconds; 0 = none. */
  lifetime: number;
  /** Statement outcomes in turn (cycled). */
  queries: Outcome[];
}

type Command =
  | { kind: "oneShot"; bound: "none" | "timeout" | "signal" }
  | { kind: "acquire"; timeout: number | undefined }
  | { kind: "release"; pick: number }
  | { kind: "abort"; pick: number }
  | { kind: "kill"; pick: number }
  | { kind: "expire" }
  | { kind: "tick"; ms: number }
  | { kind: "step"; n: number };

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  maxSize: fc.integer({ min: 1, max: 3 }),
  minSize: fc.integer({ min: 0, max: 1 }),
  depth: fc.integer({ min: 1, max: 4 }),
  maxQueries: fc.constantFrom(50_000, 5, 9),
  lifetime: fc.constantFrom(0, 0, 0.5),
  queries: fc.array(
    fc.oneof(
      { arbitrary: fc.constant("ok" as const), weight: 8 },
      { arbitrary: fc.constant("error" as const), weight: 1 },
      { arbitrary: fc.constant("slow" as const), weight: 2 },
    ),
    { minLength: 1, maxLength: 5 },
  ),
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("oneShot" as const),
      bound: fc.constantFrom(
        "none" as const,
        "none" as const,
        "none" as const,
        "timeout" as const,
        "signal" as const,
      ),
    }),
    weight: 16,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("acquire" as const),
      timeout: fc.option(fc.constantFrom(0.1, 0.5), { nil: undefined }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("abort" as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("kill" as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("expire" as const) }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.constantFrom(50, 150, 400) }),
    weight: 6,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("step" as const), n: fc.integer({ min: 1, max: 6 }) }),
    weight: 12,
  },
);

const ONE_SHOT = "SELECT $1::int AS n -- one-shot";

interface Shot {
  n: number;
  bounded: boolean;
  pid: number | undefined;
  settled: boolean;
  value: unknown;
  error: unknown;
  controller: AbortController | undefined;
}

class Run {
  readonly clock = new FakeClock();
  readonly driver: FakeDriver;
  readonly pool: Pool;
  readonly shots: Shot[] = [];
  readonly held: { proxy: PoolConnection; pid: number; released: boolean }[] = [];
  readonly acquires: Promise<unknown>[] = [];
  readonly killed = new Set<number>();
  /** Connections with a bounded one-shot whose reset was not answered yet. */
  readonly boundedOpen = new Set<number>();
  broken: string | undefined;

  constructor(readonly s: fc.Scheduler, readonly shape: Shape) {
    const driver = this.driver = new FakeDriver(this.clock);
    driver.pipelining = true;
    driver.slowMs = 120;
    let turn = 0;
    driver.query = { next: (): Outcome => shape.queries[turn++ % shape.queries.length]! } as Script;
    driver.gate = (sql) => s.schedule(Promise.resolve(), sql);
    driver.onQuery = (con, sql, args, opts) => this.#started(con, sql, args, opts);
    driver.onResetDone = (con, pipelined) => {
      if (!pipelined) this.boundedOpen.delete(con.pid);
    };
    this.pool = new Pool({
      clock: this.clock,
      connect: driver.hook,
      maxSize: shape.maxSize,
      minSize: shape.minSize,
      pipelineDepth: shape.depth,
      maxQueries: shape.maxQueries,
      maxLifetime: shape.lifetime,
      maxLifetimeJitter: shape.lifetime * 0.3,
      pingAfterIdle: null,
      releaseTimeout: 1,
      onWarning: () => {},
    });
  }

  fail(message: string): void {
    this.broken ??= `${message} (at ${this.clock.now()} ms)`;
  }

  #started(con: FakeDriverConnection, sql: string, args: readonly unknown[], opts: unknown): void {
    if (sql !== ONE_SHOT) return;
    const shot = this.shots[args[0] as number]!;
    shot.pid = con.pid;
    for (const h of this.held) {
      if (!h.released && h.pid === con.pid) this.fail(`one-shot ${shot.n} ran on live checkout ${con.pid}`);
    }
    if (con.inFlight + 1 > this.shape.depth) {
      this.fail(`${con.inFlight + 1} one-shots in flight on ${con.pid}, pipelineDepth ${this.shape.depth}`);
    }
    if (this.boundedOpen.has(con.pid)) {
      this.fail(`one-shot ${shot.n} was queued behind a bounded one on ${con.pid}`);
    }
    const o = opts as { timeout?: number; signal?: AbortSignal } | undefined;
    if (o?.timeout !== undefined || o?.signal !== undefined) this.boundedOpen.add(con.pid);
  }

  oneShot(bound: "none" | "timeout" | "signal"): void {
    const n = this.shots.length;
    const controller = bound === "signal" ? new AbortController() : undefined;
    const shot: Shot = {
      n,
      bounded: bound !== "none",
      pid: undefined,
      settled: false,
      value: undefined,
      error: undefined,
      controller,
    };
    this.shots.push(shot);
    const opts = bound === "timeout"
      ? { timeout: 0.2 }
      : bound === "signal"
      ? { signal: controller!.signal }
      : undefined;
    this.pool.fetchVal(ONE_SHOT, [n], opts).then((value) => {
      shot.settled = true;
      shot.value = value;
    }, (error: unknown) => {
      shot.settled = true;
      shot.error = error;
    });
  }

  async step(n: number): Promise<void> {
    for (let i = 0; i < n && this.s.count() > 0; i++) {
      await this.s.waitOne();
      await flush(30);
    }
  }

  async drain(rounds: number): Promise<void> {
    for (let r = 0; r < rounds; r++) {
      await this.step(Infinity);
      await this.clock.tick(250);
      await this.step(Infinity);
    }
  }

  async play(c: Command): Promise<void> {
    switch (c.kind) {
      case "oneShot":
        this.oneShot(c.bound);
        break;
      case "acquire": {
        const p = this.pool.acquire(c.timeout === undefined ? undefined : { timeout: c.timeout });
        this.acquires.push(p.catch(() => {}));
        p.then((proxy) => this.held.push({ proxy, pid: proxy.getServerPid(), released: false }), () => {});
        break;
      }
      case "release": {
        const live = this.held.filter((h) => !h.released);
        if (live.length > 0) {
          const h = live[c.pick % live.length]!;
          h.released = true;
          void this.pool.release(h.proxy).catch(() => {});
        }
        break;
      }
      case "abort": {
        const live = this.shots.filter((s) => s.controller !== undefined && !s.controller.signal.aborted);
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
      case "tick":
        await this.clock.tick(c.ms);
        break;
      case "step":
        await this.step(c.n);
        break;
    }
    await flush(30);
    const size = this.pool.getSize();
    if (!(this.pool.getIdleSize() <= size && size <= this.pool.getMaxSize())) this.fail(`sizes out of range`);
  }

  async finish(): Promise<void> {
    // Each round releases every checkout the test holds; a later acquire may be served in the next one.
    for (let r = 0; r < 16; r++) {
      for (const h of this.held) {
        if (h.released) continue;
        h.released = true;
        void this.pool.release(h.proxy).catch(() => {});
      }
      await this.drain(2);
    }
    for (const shot of this.shots) {
      if (!shot.settled) {
        this.fail(`one-shot ${shot.n} never settled`);
        continue;
      }
      const lost = shot.pid !== undefined && this.killed.has(shot.pid);
      if (!shot.bounded && !lost && shot.error === undefined && shot.value !== shot.n) {
        this.fail(`one-shot ${shot.n} got ${String(shot.value)}`);
      }
    }
    if (this.pool.getWaitingCount() !== 0) this.fail(`${this.pool.getWaitingCount()} waiter(s) left`);
    if (this.driver.open !== this.pool.getSize()) {
      this.fail(
        `the driver has ${this.driver.open} open connection(s), the pool counts ${this.pool.getSize()}`,
      );
    }
    if (this.broken !== undefined) return;
    this.driver.query = { next: (): Outcome => "ok" } as Script;
    const all = Array.from({ length: this.shape.maxSize }, () => this.pool.acquire({ timeout: 1 }));
    const ok: PoolConnection[] = [];
    for (const p of all) p.then((proxy) => ok.push(proxy), () => {});
    await this.drain(6);
    if (ok.length !== this.shape.maxSize) {
      this.fail(`after the run only ${ok.length} of ${this.shape.maxSize} slots could be checked out`);
    }
    for (const p of ok) void this.pool.release(p);
    await this.drain(2);
    const closing = this.pool.close({ timeout: 0.5 }).catch(() => {});
    await this.drain(3);
    await closing;
    if (this.driver.open !== 0) this.fail(`${this.driver.open} connection(s) left open after close`);
  }
}

describe("Pool pipelining", () => {
  it(
    "Pool one-shots keep their invariants under any order of answers, timeouts, aborts, checkouts, deaths and expiry",
    { timeout: 240_000 },
    async () => {
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.scheduler(),
          shapeArb,
          fc.array(commandArb, { minLength: 4, maxLength: 40, size: "max" }),
          async (s, shape, commands) => {
            runs++;
            const run = new Run(s, shape);
            const init = run.pool.init();
            await run.drain(1);
            await init;
            for (const c of commands) {
              await run.play(c);
              if (run.broken !== undefined) break;
            }
            if (run.broken === undefined) await run.finish();
            if (run.broken !== undefined) throw new Error(`${run.broken}\n${s.toString()}`);
          },
        ),
        { numRuns: RUNS },
      );
      assert.ok(runs >= RUNS, `ran ${runs} schedules`);
    },
  );
});

/**
 * The pool: slots, the acquire/release state machine, hooks, lifetimes and
 * shutdown, after asyncpg's Pool. Runtime-neutral: time comes from a
 * {@linkcode Clock} and connections from a connect function.
 *
 * @module
 */

import { Checkout } from "./checkout.ts";
import { type Clock, systemClock } from "./clock.ts";
import { Connection, connectionInternals } from "./connection.ts";
import { Deadline } from "./deadline.ts";
import type { ConnectOptions, DriverConnection, QueryOptions } from "./driver.ts";
import { InterfaceError, PoolTimeoutError } from "./errors.ts";
import { type ListenCallback, type ListenOptions, ListenService, type Unlisten } from "./listen_service.ts";
import {
  checkConnectOptions,
  type ConnectHook,
  parsePoolOptions,
  type PoolOptions,
  type PoolSettings,
} from "./options.ts";
import { PoolConnection, poolConnectionInternals } from "./pool_connection.ts";
import { globalMeter, PoolMetrics } from "./pool_metrics.ts";
import { type CloseReason, PoolCounters, type PoolStats } from "./pool_stats.ts";
import {
  type ByName,
  defineMethods,
  METHODS,
  QUERY_METHODS,
  type QueryApi,
  type QueryMethod,
} from "./query_api.ts";
import { Release, type ReleaseHost } from "./release.ts";
import { Slot, type SlotState } from "./slot.ts";
import { consoleWarning, type PoolWarning, type WarningCode, type WarningHandler } from "./warnings.ts";
import { type Alarm, Watchdog } from "./watchdog.ts";

type PoolStatus = "new" | "initializing" | "ready" | "closing" | "closed";

/**
 * A queued acquire. A `direct` waiter (an acquire without options) is resolved
 * with its proxy at hand-off; the others receive the slot and continue.
 */
interface Waiter {
  state: "waiting" | "granted" | "cancelled";
  direct: boolean;
  /**
   * A one-shot waiting for a place on a connection running one-shots: resolved with a `shared`
   * slot holding its place, or with a slot moved to `acquiring` for it to check out as usual.
   */
  shared: boolean;
  /** A one-shot with a timeout or signal (see `Slot.bounded`). */
  bounded: boolean;
  /** When it was queued (clock ms). */
  since: number;
  /** The `acquire()` call's stack while leak detection is on (a direct waiter's checkout is made at hand-off). */
  site: Error | undefined;
  // deno-lint-ignore no-explicit-any
  resolve: (value: any) => void;
  reject: (error: unknown) => void;
}

/** An acquire waiting for a connect permit. */
interface PermitWaiter {
  /** False once granted or given up. */
  live: boolean;
  grant: () => void;
}

/** The floor's first pause after a failed attempt; it doubles per failure up to the cap, jittered to 50–100%. */
const FLOOR_BACKOFF_BASE_MS = 100;
const FLOOR_BACKOFF_CAP_MS = 5000;
/** Why a floor attempt was given up: an acquire needed its slot. */
const FLOOR_YIELD = new DOMException(
  "The kept floor gave its connection attempt to an acquire",
  "AbortError",
);

/** Options of `acquire()`. */
export interface AcquireOptions {
  /** Seconds to wait for a connection (queueing, connecting, `init`, `setup`); `<= 0` never takes one. */
  timeout?: number;
  /** Aborting gives up the acquire; it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options of `release()`. */
export interface ReleaseOptions {
  /** Seconds the reset may take (default: the acquire's timeout, else the pool's `releaseTimeout`). */
  timeout?: number;
}

/** Options of `close()`. */
export interface CloseOptions {
  /** Seconds to wait for checked-out connections; past it the pool terminates and `close()` rejects. */
  timeout?: number;
  /** Aborting terminates the pool; `close()` rejects with `signal.reason`. */
  signal?: AbortSignal;
}

const conInternals = connectionInternals();
const proxyInternals = poolConnectionInternals();
const noop = (): void => {};
const RESOLVED: Promise<void> = Promise.resolve();
/** The liveness round trip: the cheapest statement both drivers run as any other. */
const PING_SQL = "SELECT 1";
const NO_ARGS: readonly unknown[] = Object.freeze([]);
/** The one-shots that may be pipelined (the copy helpers need a connection to themselves). */
const PIPELINED: ReadonlySet<QueryMethod> = new Set<QueryMethod>([
  "execute",
  "executeMany",
  "fetch",
  "fetchRow",
  "fetchVal",
  "fetchMany",
]);

function validTimeout(where: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`${where} as 'timeout' must be a number of seconds: got ${typeof value}`);
  }
  return value * 1000;
}

function validSignal(where: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new TypeError(`${where} as 'signal' must be an AbortSignal`);
  return value;
}

/** A one-shot's `timeout` and `signal` as an acquire takes them, leaving it some time. */
function validBounds(opts: QueryOptions): boolean {
  const { timeout, signal } = opts;
  if (timeout !== undefined && (typeof timeout !== "number" || !(timeout > 0))) return false;
  return signal === undefined || (signal instanceof AbortSignal && !signal.aborted);
}

/** A DSN's `target_session_attrs` asking for a writable server (the drivers parse the DSN; this only looks). */
const WRITABLE_DSN = /(?:^|[?&\s])target_session_attrs\s*=\s*'?(?:read-write|primary)\b/;

/** True when the options ask for a writable server (`targetSessionAttrs` read-write or primary). */
function wantsWritable(options: ConnectOptions): boolean {
  const attrs = options.targetSessionAttrs;
  if (attrs !== undefined) return attrs === "read-write" || attrs === "primary";
  return options.dsn !== undefined && WRITABLE_DSN.test(options.dsn);
}

/** Internal access for tests. Not exported from `mod.ts`. */
export interface PoolInternals {
  /** Entries in the waiter queue's array, served and cancelled ones not yet dropped included. */
  waiterQueueLength(pool: BasePool): number;
}

let internals!: PoolInternals;

/** Internal access for tests. Not exported from `mod.ts`. */
export function poolInternals(): PoolInternals {
  return internals;
}

/**
 * The runtime-neutral pool of PostgreSQL connections with asyncpg's semantics:
 * LIFO reuse, FIFO waiters with direct hand-off, session reset on release,
 * `maxQueries` recycling, idle lifetime, generations, hooks and graceful close.
 * Every entry point's `Pool` extends it with the runtime's default connection.
 *
 * Build one with `createPool()` (initialized) or `new Pool()` + `init()`; a
 * `BasePool` needs a `connect` option (or the third constructor argument).
 *
 * @example Acquire, query, release
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point; a DSN can come
 * // first instead: createPool("postgres://user@host/db", { maxSize: 5 }).
 * await using pool = await createPool({ maxSize: 5 });
 * await using con = await pool.acquire(); // released before the pool closes
 * assert.equal(await con.fetchVal("SELECT 42"), 42);
 * ```
 */
export class BasePool {
  #settings: PoolSettings;
  #connectOptions: ConnectOptions;
  #connect: ConnectHook;
  #clock: Clock;
  /** Whether the clock offers `coarseNow()` (see {@linkcode BasePool.#bookTime}). */
  #coarse = false;
  #warn: WarningHandler;
  /** The pool's own release bound in seconds (`releaseTimeout`), or undefined for none. */
  #releaseBound: number | undefined;
  /** What `reset()` is told on every release: made once, not per release. */
  #resetOptions: { query: boolean; pipeline: true; timeout: number | undefined };
  #status: PoolStatus = "new";
  #generation = 0;
  #slots: Slot[] = [];
  #idle: Slot[] = [];
  #empty: Slot[] = [];
  #inUse = 0;
  /** Slots running pipelined one-shots. */
  #sharing: Slot[] = [];
  /** One-shots in flight per connection at most; 1 when one-shots are not pipelined. */
  #pipelineDepth: number;
  /** The reset behind a pipelined one-shot, and the awaited one behind a bounded one-shot. */
  #sharedReset: { query: boolean; pipeline: boolean; behind: true; timeout: number | undefined };
  #sharedResetAwaited: { query: boolean; pipeline: boolean; behind: true; timeout: number | undefined };
  #waiters: Waiter[] = [];
  #waiterHead = 0;
  #liveWaiters = 0;
  /** The one timer of the pool: release deadlines, idle lifetime, the close warning. */
  #watchdog: Watchdog;
  /** What every release tells the pool: made once. */
  #releaseHost: ReleaseHost;
  /** The maintenance alarm (idle expiry, lifetimes, ping staleness), armed for the earliest due instant. */
  #sweepAlarm: Alarm | undefined;
  /** When `#sweepAlarm` fires (Infinity when none is armed). */
  #sweepAt = Infinity;
  /** The first instant after going idle at which a connection needs the sweep (Infinity: never). */
  #idleDueMs: number;
  /** `pingAfterIdle` is 0: every idle connection is pinged before hand-out. */
  #pingAlways: boolean;
  /** The jitter source. */
  #random: () => number;
  /** Acquires waiting for a connect permit, first come first served. */
  #permits: PermitWaiter[] = [];
  /** The floor's pause after a failed attempt (its backoff), while armed. */
  #floorAlarm: Alarm | undefined;
  /** Floor attempts failed in a row. */
  #floorFailures = 0;
  /** Floor attempts under way. */
  #floorInFlight = 0;
  /** Aborts each floor attempt under way (it yields its slot to a queued acquire). */
  #floorAttempts: AbortController[] = [];
  /** A floor check is queued for the end of the current operation. */
  #floorQueued = false;
  /** `targetSessionAttrs` asks for a writable server: a connection that answers 25006 is dropped at release. */
  #watchReadOnly: boolean;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** What `stats()` reports: plain counters bumped in place. */
  #counters = new PoolCounters();
  /** Connection attempts under way. */
  #connecting = 0;
  /** `leakDetectionThreshold` in ms; 0 = off (no stack captured, no alarm armed). */
  #leakMs: number;
  /**
   * Notices a proxy collected while still checked out (the caller forgot to
   * release it). It holds the checkout, never the proxy, so it cannot keep one alive.
   */
  #leaks: FinalizationRegistry<Checkout>;
  /**
   * Checkouts handed out and not registered with `#leaks` yet, each after its proxy: registration waits
   * two microtasks, by when most checkouts (acquire, a statement, release) are over — registering and
   * unregistering one costs V8 more than the rest of an acquire and release.
   */
  #toRegister: (PoolConnection | Checkout)[] = [];
  #registering = false;
  readonly #registerSoon = (): void => queueMicrotask(this.#registerNow);
  readonly #registerNow = (): void => {
    this.#registering = false;
    const list = this.#toRegister;
    for (let i = 0; i < list.length; i += 2) {
      const checkout = list[i + 1] as Checkout;
      if (checkout.slot.holder !== checkout || (checkout.state !== "held" && checkout.state !== "setup")) {
        continue;
      }
      this.#leaks.register(list[i]!, checkout, checkout);
      checkout.registered = true;
    }
    list.length = 0;
  };
  /** The pool's OpenTelemetry instruments, when it has a meter (made at `init()`). */
  #metrics: PoolMetrics | undefined;
  /** `listen()`: one dedicated connection outside the slots (and outside `maxSize` and `stats()`). */
  #listens: ListenService;

  static {
    internals = { waiterQueueLength: (pool) => pool.#waiters.length };
  }

  /**
   * Builds a pool without connecting; call {@linkcode BasePool.init} next.
   *
   * @param dsnOrOptions A DSN, or the options.
   * @param options Options (when the first argument is a DSN).
   * @param defaultConnect Opens a connection when no `connect` hook is given (entry points supply it).
   * @throws {TypeError} For options of the wrong type or unknown names.
   * @throws {RangeError} For out-of-range numbers.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Pool } from "@x/pgpool";
   * const pool = new Pool({ minSize: 2 }); // or new Pool("postgres://user@host/db", { minSize: 2 })
   * assert.equal(pool.getSize(), 0); // not connected yet
   * await pool.init();
   * assert.equal(pool.getSize(), 2);
   * await pool.close();
   * ```
   */
  constructor(dsnOrOptions?: string | PoolOptions, options?: PoolOptions, defaultConnect?: ConnectHook) {
    let opts: PoolOptions;
    if (typeof dsnOrOptions === "string") opts = { ...options, dsn: dsnOrOptions };
    else if (dsnOrOptions === undefined) opts = options ?? {};
    else if (options !== undefined) {
      throw new TypeError("Cannot create pool as a DSN string must come first when two arguments are given");
    } else opts = dsnOrOptions;
    const { settings, connectOptions } = parsePoolOptions(opts);
    const connect = settings.connect ?? defaultConnect;
    if (connect === undefined) {
      throw new TypeError(
        "Cannot create pool as no 'connect' function was given and no default driver is set",
      );
    }
    this.#settings = settings;
    this.#connectOptions = connectOptions;
    this.#watchReadOnly = wantsWritable(connectOptions);
    this.#connect = connect;
    this.#clock = settings.clock ?? systemClock;
    this.#coarse = typeof this.#clock.coarseNow === "function";
    // Its alarms (idle lifetime, leak detection, release bounds, the close warning) never keep the process
    // alive on their own: a connection in use does, through its socket.
    this.#watchdog = new Watchdog(this.#clock, { unref: true });
    this.#releaseHost = {
      returned: (checkout) => this.#returned(checkout),
      dropped: (checkout) => this.#dropped(checkout),
    };
    this.#warn = settings.onWarning ?? consoleWarning;
    this.#random = this.#clock.random === undefined ? Math.random : () => this.#clock.random!();
    const ping = settings.pingAfterIdleMs;
    this.#pingAlways = ping === 0;
    this.#idleDueMs = Math.min(
      settings.maxInactiveMs > 0 ? settings.maxInactiveMs : Infinity,
      ping !== undefined && ping > 0 ? ping : Infinity,
    );
    this.#leakMs = settings.leakDetectionMs;
    this.#leaks = new FinalizationRegistry((checkout: Checkout) => this.#collected(checkout));
    this.#releaseBound = settings.releaseTimeoutMs / 1000 || undefined;
    // Behind a transaction pooler there is no session of ours to reset: only an open transaction is rolled back.
    const resetQuery = settings.reset === undefined && !settings.noReset && settings.poolMode === "session";
    this.#resetOptions = { query: resetQuery, pipeline: true, timeout: this.#releaseBound };
    // One-shots share connections only where the reset can be queued behind each: no hook of the caller's
    // runs per checkout or per release, and every connection is a session of its own.
    this.#pipelineDepth =
      settings.poolMode === "session" && settings.setup === undefined && settings.reset === undefined
        ? settings.pipelineDepth
        : 1;
    this.#sharedReset = { query: resetQuery, pipeline: true, behind: true, timeout: this.#releaseBound };
    this.#sharedResetAwaited = {
      query: resetQuery,
      pipeline: false,
      behind: true,
      timeout: this.#releaseBound,
    };
    this.#listens = new ListenService({
      clock: this.#clock,
      open: (signal) => this.#connect({ ...this.#connectOptions, signal }),
      onGap: settings.onListenGap,
      warn: (code, message) => this.#emit(code, message),
      timeoutMs: settings.listenTimeoutMs,
      closeTimeout: this.#releaseBound,
      transactionMode: settings.poolMode === "transaction",
    });
  }

  /**
   * Opens `minSize` connections (the first alone, the rest concurrently). A
   * no-op when already initialized. If a connection fails, the error is thrown
   * and the pool stays usable: later acquires open connections as needed.
   *
   * @throws {InterfaceError} `POOL_INITIALIZING` while another `init()` runs; `POOL_CLOSED` after close.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Pool } from "@x/pgpool";
   * await using pool = new Pool({ minSize: 1 });
   * await pool.init();
   * await pool.init(); // a no-op
   * assert.equal(pool.getIdleSize(), 1);
   * ```
   */
  async init(): Promise<void> {
    switch (this.#status) {
      case "ready":
        return;
      case "initializing":
        throw new InterfaceError(
          "POOL_INITIALIZING",
          "Cannot initialize the pool as it is being initialized",
        );
      case "closing":
      case "closed":
        throw new InterfaceError("POOL_CLOSED", "Cannot initialize the pool as it is closed");
    }
    const meter = this.#settings.meter ?? globalMeter();
    if (meter !== undefined) this.#metrics = new PoolMetrics(meter, this.#settings.name, () => this.stats());
    this.#status = "initializing";
    for (let i = 0; i < this.#settings.maxSize; i++) {
      const slot = new Slot();
      this.#slots.push(slot);
      this.#empty.push(slot);
    }
    try {
      const min = this.#settings.minSize;
      if (min > 0) {
        await this.#warmOne();
        const rest: Promise<void>[] = [];
        for (let i = 1; i < min; i++) rest.push(this.#warmOne());
        const results = await Promise.allSettled(rest);
        for (const r of results) if (r.status === "rejected") throw r.reason;
      }
    } finally {
      if (this.#status === "initializing") {
        this.#status = "ready";
        if (this.#settings.minSize > 0) this.#keepFloor(); // whatever init could not open
      }
    }
  }

  async #warmOne(): Promise<void> {
    const slot = this.#empty[this.#empty.length - 1]!;
    this.#move(slot, "acquiring");
    try {
      await this.#open(slot, undefined);
    } finally {
      this.#free(slot);
    }
  }

  /**
   * Checks out a connection: an idle one (most recently used first), a new one
   * while below `maxSize`, else the first to be released (waiters are served in
   * arrival order). Runs `setup` on it before resolving.
   *
   * @param options `timeout` (seconds) and `signal` bound the whole acquire.
   * @returns A new proxy for this checkout.
   * @throws {PoolTimeoutError} `ACQUIRE_TIMEOUT` when the timeout passes.
   * @throws {InterfaceError} `POOL_CLOSING`, `POOL_CLOSED`, `POOL_NOT_INITIALIZED`, `POOL_INITIALIZING`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ maxSize: 2 });
   * const con = await pool.acquire({ timeout: 5 });
   * try {
   *   assert.equal(await con.execute("SELECT 1"), "SELECT 1");
   * } finally {
   *   await pool.release(con);
   * }
   * ```
   */
  acquire(options?: AcquireOptions): Promise<PoolConnection> {
    return this.#metrics === undefined ? this.#acquire(options) : this.#metered(options, this.#metrics);
  }

  /** An acquire that feeds the `wait_time` histogram and marks when its checkout was handed out. */
  async #metered(options: AcquireOptions | undefined, metrics: PoolMetrics): Promise<PoolConnection> {
    const start = this.#clock.now();
    const con = await this.#acquire(options);
    const now = this.#clock.now();
    (proxyInternals.state(con).slot as Checkout).heldAt = now;
    metrics.waited(now - start);
    return con;
  }

  #acquire(options: AcquireOptions | undefined): Promise<PoolConnection> {
    if (this.#status !== "ready") return Promise.reject(this.#unusable("acquire a connection"));
    // Only with leakDetectionThreshold on: where this call came from, for CONNECTION_LEAK
    // (V8 and JavaScriptCore format the stack lazily, when the warning reads it).
    const site = this.#leakMs > 0 ? new Error("The connection was acquired here") : undefined;
    if (options === undefined) {
      if (this.#liveWaiters > 0) return this.#enqueue(true, site);
      const slot = this.#idle[this.#idle.length - 1];
      if (slot === undefined) {
        if (this.#empty.length === 0) return this.#enqueue(true, site);
      } else if (this.#ready(slot)) {
        this.#move(slot, "acquiring");
        return Promise.resolve(this.#handOut(slot, undefined, site));
      }
    }
    return this.#acquireSlow(options, site);
  }

  async #acquireSlow(options: AcquireOptions | undefined, site: Error | undefined): Promise<PoolConnection> {
    const where = "Cannot acquire a connection";
    const timeoutMs = validTimeout(where, options?.timeout);
    const signal = validSignal(where, options?.signal);
    if (timeoutMs !== undefined && timeoutMs <= 0) {
      this.#counters.acquireTimeoutCount++;
      throw new PoolTimeoutError(
        "ACQUIRE_TIMEOUT",
        `Timed out acquiring a connection: the timeout is ${timeoutMs / 1000}s`,
      );
    }
    const deadline = this.#acquireDeadline(timeoutMs, signal);
    try {
      deadline?.check();
      let slot: Slot | undefined;
      if (this.#liveWaiters === 0) {
        slot = this.#idle[this.#idle.length - 1] ?? this.#empty[this.#empty.length - 1];
        if (slot !== undefined) this.#move(slot, "acquiring");
      }
      if (slot === undefined) slot = await this.#wait(deadline);
      return await this.#claim(slot, deadline, timeoutMs, site);
    } catch (e) {
      this.#countGiveUp(deadline, e);
      throw e;
    } finally {
      deadline?.dispose();
    }
  }

  /** The bound of an acquire (and of a one-shot's wait for a place): undefined when it has none. */
  #acquireDeadline(timeoutMs: number | undefined, signal: AbortSignal | undefined): Deadline | undefined {
    return timeoutMs === undefined && signal === undefined ? undefined : new Deadline(
      this.#clock,
      timeoutMs,
      signal,
      "ACQUIRE_TIMEOUT",
      `Timed out after ${(timeoutMs ?? 0) / 1000}s acquiring a connection`,
    );
  }

  /** An acquire failed: counted as timed out or aborted when its own deadline ended it. */
  #countGiveUp(deadline: Deadline | undefined, e: unknown): void {
    if (!deadline?.fired || e !== deadline.reason) return;
    if (e instanceof PoolTimeoutError && e.code === "ACQUIRE_TIMEOUT") this.#counters.acquireTimeoutCount++;
    else this.#counters.acquireAbortCount++;
  }

  /** Checks out a slot moved to `acquiring` for this acquire: pinged when due, connected when empty, set up. */
  async #claim(
    slot: Slot,
    deadline: Deadline | undefined,
    timeoutMs: number | undefined,
    site: Error | undefined,
  ): Promise<PoolConnection> {
    if (slot.stale && slot.con !== undefined) await this.#pinged(slot, deadline);
    if (this.#ready(slot)) return this.#handOut(slot, timeoutMs, site);
    return await this.#checkout(slot, deadline, timeoutMs, site);
  }

  /** True when a slot can be checked out as it is: connected, current, no ping due and no `setup` to run. */
  #ready(slot: Slot): boolean {
    return slot.con !== undefined && !slot.stale && this.#settings.setup === undefined &&
      slot.generation === this.#generation &&
      !slot.driver!.isClosed();
  }

  /**
   * Pings a connection idle past `pingAfterIdle` (its acquire holds the slot).
   * A dead one is dropped and the acquire goes on to open a new one in its slot.
   * When the acquire's deadline fires first, the acquire rejects and the ping's
   * outcome gives the slot back when it comes.
   */
  #pinged(slot: Slot, deadline: Deadline | undefined): Promise<void> {
    slot.stale = false;
    const ping = this.#ping(slot);
    return deadline === undefined ? ping : deadline.race(ping, () => this.#free(slot));
  }

  /**
   * One liveness round trip, bounded by the pool's `releaseTimeout`; never rejects.
   * On failure the connection is terminated and counted (`pingFailCount`, `closeCount.broken`).
   */
  #ping(slot: Slot): Promise<void> {
    const con = slot.con!;
    const driver = slot.driver!;
    return new Promise<void>((resolve) => {
      let alarm: Alarm | undefined;
      let settled = false;
      const done = (alive: boolean): void => {
        if (settled) return;
        settled = true;
        alarm?.cancel();
        if (!alive && slot.con === con) {
          this.#counters.pingFailCount++;
          this.#discard(slot, true, "broken");
        }
        resolve();
      };
      const bound = this.#settings.releaseTimeoutMs;
      if (bound > 0) alarm = this.#watchdog.after(bound, () => done(false));
      let answer: Promise<unknown>;
      try {
        answer = driver.query(PING_SQL, NO_ARGS);
      } catch (e) {
        answer = Promise.reject(e);
      }
      answer.then(() => done(true), () => done(false));
    });
  }

  /** Queues a waiter; see {@linkcode Waiter}. */
  #enqueue<T>(direct: boolean, site: Error | undefined, shared = false, bounded = false): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.#waiters.push({
      state: "waiting",
      direct,
      shared,
      bounded,
      since: this.#bookTime(),
      site,
      resolve,
      reject,
    });
    this.#liveWaiters++;
    this.#counters.acquireWaitCount++;
    // A floor attempt holds a slot this acquire could connect in itself, within its own deadline.
    if (this.#floorAttempts.length > 0) this.#floorAttempts.pop()!.abort(FLOOR_YIELD);
    return promise;
  }

  /**
   * Queues a waiter that resolves with a slot already moved to `acquiring` for it (or, for a one-shot
   * waiting with `shared`, possibly a `shared` slot holding its place).
   */
  #wait(deadline: Deadline | undefined, shared = false, bounded = false): Promise<Slot> {
    const promise = this.#enqueue<Slot>(false, undefined, shared, bounded);
    const waiter = this.#waiters[this.#waiters.length - 1]!;
    if (deadline === undefined) return promise;
    const late = (slot: Slot): void => {
      if (slot.state === "shared") this.#sharedDone(slot, bounded);
      else this.#free(slot);
    };
    return deadline.race(promise, late).catch((e: unknown) => {
      if (waiter.state === "waiting") {
        waiter.state = "cancelled";
        this.#counters.acquireWaitMs += this.#bookTime() - waiter.since;
        this.#liveWaiters--;
        this.#compactWaiters();
      }
      throw e;
    });
  }

  /** Completes a checkout of a connected slot that needs no `setup`. */
  #handOut(slot: Slot, timeoutMs: number | undefined, site: Error | undefined): PoolConnection {
    const checkout = new Checkout(slot, slot.con!, timeoutMs, "held", site);
    const proxy = proxyInternals.create(this, checkout, checkout.con, this.#watchReadOnly);
    this.#hold(checkout, proxy);
    this.#move(slot, "busy");
    this.#counters.acquireCount++;
    return proxy;
  }

  /** A checkout is handed out: its slot points at it, and a forgotten proxy will be noticed. */
  #hold(checkout: Checkout, proxy: PoolConnection): void {
    checkout.slot.holder = checkout;
    this.#toRegister.push(proxy, checkout);
    if (!this.#registering) {
      this.#registering = true;
      queueMicrotask(this.#registerSoon);
    }
    if (this.#leakMs > 0) {
      // No WeakRef to the proxy for the warning's `connection`: V8 makes one cost more than a whole
      // acquire; the message names the backend instead.
      checkout.leakAlarm = this.#watchdog.after(this.#leakMs, () => this.#heldTooLong(checkout));
    }
  }

  /** The caller released its proxy: no leak to notice any more. */
  #letGo(checkout: Checkout): void {
    if (checkout.registered) {
      checkout.registered = false;
      this.#leaks.unregister(checkout);
    }
    const alarm = checkout.leakAlarm;
    if (alarm !== undefined) {
      checkout.leakAlarm = undefined;
      alarm.cancel();
    }
  }

  /** `leakDetectionThreshold` passed with the checkout still held: one warning, with the acquire's stack. */
  #heldTooLong(checkout: Checkout): void {
    checkout.leakAlarm = undefined;
    if (checkout.state !== "held" || checkout.slot.holder !== checkout) return;
    this.#countLeak(checkout);
    this.#emit(
      "CONNECTION_LEAK",
      `A connection (backend pid ${checkout.con.getServerPid()}) has been checked out for more than ` +
        `${this.#leakMs / 1000}s without being released (leakDetectionThreshold); ` +
        "the stack shows where it was acquired",
      undefined,
      checkout.site?.stack,
    );
  }

  /**
   * A proxy was garbage-collected while its checkout was still held: the caller
   * forgot to release it. The slot comes back at once; the connection is closed,
   * not reset: the forgotten session is in an unknown state (an open transaction
   * holding locks, a half-done COPY, session state the reset does not cover), so
   * none of it may reach the next caller, and the server rolls back and frees its
   * locks when the session ends. A leak is a bug path: one reconnect is a small
   * price for that certainty. The close waits for the last statement started
   * through the proxy (bounded by `releaseTimeout`): a proxy can be collected
   * while that statement runs and its caller still awaits the answer (`await
   * (await pool.acquire()).fetchVal(...)`), and that caller must get its answer,
   * not an error that depends on when the collector ran.
   */
  #collected(checkout: Checkout): void {
    if (checkout.state !== "held" || checkout.slot.holder !== checkout) return; // released, lost or terminated
    const alarm = checkout.leakAlarm;
    checkout.leakAlarm = undefined;
    alarm?.cancel();
    this.#countLeak(checkout);
    const slot = checkout.slot;
    const con = checkout.con;
    checkout.to("over");
    slot.holder = undefined;
    if (slot.con === con) {
      this.#forget(slot, "broken");
      const last = checkout.lastStatement;
      if (last === undefined || this.#status === "closed") this.#closeDropped(con);
      else {
        const ended = last.then(noop, noop);
        const bound = this.#settings.releaseTimeoutMs;
        (bound > 0 ? this.#within(ended, bound) : ended).then(() => this.#closeDropped(con));
      }
    }
    this.#free(slot);
    this.#emit(
      "CONNECTION_LEAK",
      "A connection was never released: its PoolConnection was garbage-collected while checked out; " +
        "the connection was closed and its slot returned to the pool" +
        (checkout.site === undefined
          ? " (set leakDetectionThreshold to capture the stack of its acquire() call)"
          : "; the stack shows where it was acquired"),
      undefined,
      checkout.site?.stack,
    );
  }

  /** Counts a leaked checkout once, whichever way it was noticed first. */
  #countLeak(checkout: Checkout): void {
    if (checkout.leaked) return;
    checkout.leaked = true;
    this.#counters.leakCount++;
  }

  /** Drops served and cancelled waiters from the front of the queue (so it cannot grow without bound). */
  #compactWaiters(): void {
    const w = this.#waiters;
    if (this.#liveWaiters === 0) {
      w.length = 0;
      this.#waiterHead = 0;
    } else if (this.#waiterHead > 1024 && this.#waiterHead * 2 > w.length) {
      this.#waiters = w.slice(this.#waiterHead);
      this.#waiterHead = 0;
    }
  }

  async #checkout(
    slot: Slot,
    deadline: Deadline | undefined,
    timeoutMs: number | undefined,
    site: Error | undefined,
  ): Promise<PoolConnection> {
    let checkout: Checkout | undefined;
    let proxy: PoolConnection | undefined;
    try {
      let con = slot.con;
      if (con !== undefined && (slot.driver!.isClosed() || slot.generation !== this.#generation)) {
        this.#discard(slot, false, slot.driver!.isClosed() ? "broken" : "expired");
        con = undefined;
      }
      if (con === undefined) {
        this.#stillOpen(slot, undefined);
        con = await this.#open(slot, deadline);
      }
      checkout = new Checkout(slot, con, timeoutMs, "setup", site);
      proxy = proxyInternals.create(this, checkout, con, this.#watchReadOnly);
      const setup = this.#settings.setup;
      if (setup !== undefined) {
        const done = setup(proxy);
        await (deadline === undefined ? done : deadline.race(done));
        this.#stillOpen(slot, con);
      }
      checkout.to("held");
      this.#hold(checkout, proxy);
      this.#move(slot, "busy");
      this.#counters.acquireCount++;
      return proxy;
    } catch (e) {
      if (checkout !== undefined) {
        checkout.to("over");
        proxyInternals.state(proxy!).released = true;
      }
      if (slot.con !== undefined) this.#discard(slot, true, "broken");
      this.#free(slot);
      throw e;
    }
  }

  /** Connects a slot (and runs `init`); on failure the half-made connection is dropped. */
  async #open(slot: Slot, deadline: Deadline | undefined): Promise<Connection> {
    if (this.#connecting < this.#settings.maxConcurrentConnects) this.#connecting++;
    else await this.#permit(deadline);
    if (this.#status === "closed") {
      this.#connectDone();
      this.#stillOpen(slot, undefined);
    }
    const options = deadline === undefined
      ? this.#connectOptions
      : { ...this.#connectOptions, signal: deadline.signal };
    const start = this.#metrics === undefined ? 0 : this.#clock.now();
    let connecting: Promise<Connection>;
    try {
      connecting = this.#connect(options);
    } catch (e) {
      connecting = Promise.reject(e);
    }
    const attempt = (): void => this.#connectDone();
    connecting.then(attempt, attempt);
    let result: unknown;
    try {
      result = await (deadline === undefined ? connecting : deadline.race(connecting, (late: unknown) => {
        if (late instanceof Connection) late.terminate();
      }));
    } catch (e) {
      this.#counters.connectErrorCount++;
      throw e;
    }
    if (!(result instanceof Connection)) {
      this.#counters.connectErrorCount++;
      const got = result === null
        ? "null"
        : typeof result === "object"
        ? result.constructor?.name
        : typeof result;
      throw new InterfaceError(
        "BAD_CONNECT_RESULT",
        `Expected the connect hook to return a Connection, got ${got ?? "an object"}`,
      );
    }
    if (this.#status === "closed") {
      result.terminate();
      this.#stillOpen(slot, undefined);
    }
    const con = result;
    this.#counters.connectCount++;
    slot.con = con;
    slot.driver = conInternals.driver(con);
    const lifetime = this.#settings.maxLifetimeMs;
    const fallback = slot.driver.fallback === true ? this.#settings.fallbackLifetimeMs : 0;
    if (lifetime > 0 || fallback > 0) {
      // Each connection draws its own lifetime, so connections opened together do not close together.
      // A prefer-standby fallback (on the primary while no standby answered) lives shortly: the next
      // connect tries the standbys again.
      const now = this.#clock.now();
      const at = slot.expiresAt = Math.min(
        lifetime > 0 ? now + lifetime - this.#random() * this.#settings.maxLifetimeJitterMs : Infinity,
        fallback > 0 ? now + fallback - this.#random() * fallback / 10 : Infinity,
      );
      if (at < this.#sweepAt) this.#armSweep(at);
    }
    slot.generation = this.#generation;
    conInternals.onClose(con, () => this.#closedUnder(slot, con));
    if (this.#settings.poolMode === "transaction") conInternals.useTransactionPoolMode(con);
    const init = this.#settings.init;
    if (init !== undefined) {
      try {
        const done = init(con);
        await (deadline === undefined ? done : deadline.race(done));
      } catch (e) {
        if (slot.con === con) this.#discard(slot, true, "broken");
        throw e;
      }
      this.#stillOpen(slot, con);
    }
    this.#metrics?.created(this.#clock.now() - start);
    return con;
  }

  /**
   * Waits for a connect permit (`maxConcurrentConnects` are in use), first come
   * first served, bounded by the deadline. A permit handed over after the
   * deadline fired is passed on.
   */
  #permit(deadline: Deadline | undefined): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const entry: PermitWaiter = { live: true, grant: resolve };
    this.#permits.push(entry);
    if (deadline === undefined) return promise;
    return deadline.race(promise, () => this.#connectDone()).catch((e: unknown) => {
      entry.live = false;
      throw e;
    });
  }

  /** A connect attempt settled: its permit goes to the next waiting acquire, else back to the pool. */
  #connectDone(): void {
    const permits = this.#permits;
    while (permits.length > 0) {
      const next = permits.shift()!;
      if (!next.live) continue;
      next.live = false;
      next.grant();
      return;
    }
    this.#connecting--;
    if (this.#settings.minSize > 0) this.#keepFloor();
  }

  /**
   * Keeps `minSize` connections: opens connections in empty slots in the
   * background while fewer slots than `minSize` hold (or are getting) one,
   * within the free connect permits (acquires waiting for one go first). After
   * a failure only one attempt runs at a time, each after a capped, jittered,
   * exponentially growing pause.
   */
  #keepFloor(): void {
    if (this.#status !== "ready" || this.#floorAlarm !== undefined) return;
    const { minSize, maxSize, maxConcurrentConnects } = this.#settings;
    while (
      maxSize - this.#empty.length < minSize && this.#connecting < maxConcurrentConnects &&
      (this.#floorFailures === 0 || this.#floorInFlight === 0)
    ) {
      const slot = this.#empty[this.#empty.length - 1]!;
      this.#move(slot, "acquiring");
      this.#floorInFlight++;
      void this.#openFloor(slot);
    }
  }

  /**
   * One floor attempt. It yields to acquires: when an acquire has to queue, the
   * newest floor attempt is given up and its slot goes to that acquire, which
   * connects within its own deadline (a floor attempt stuck on a dead network
   * never holds a caller hostage).
   */
  async #openFloor(slot: Slot): Promise<void> {
    const yielding = new AbortController();
    this.#floorAttempts.push(yielding);
    const deadline = new Deadline(
      this.#watchdog,
      undefined,
      yielding.signal,
      "CONNECT_TIMEOUT",
      "The kept floor gave its attempt up to an acquire",
    );
    try {
      await this.#open(slot, deadline);
      this.#floorFailures = 0;
    } catch {
      // Counted in connectErrorCount; the floor tries again after its pause (unless it yielded).
      if (slot.con !== undefined) this.#discard(slot, true, "broken");
      if (!yielding.signal.aborted) this.#floorFailures++;
      if (!yielding.signal.aborted && this.#status === "ready" && this.#floorAlarm === undefined) {
        const pause = Math.min(FLOOR_BACKOFF_CAP_MS, FLOOR_BACKOFF_BASE_MS * 2 ** (this.#floorFailures - 1)) *
          (0.5 + 0.5 * this.#random());
        this.#floorAlarm = this.#watchdog.after(pause, () => {
          this.#floorAlarm = undefined;
          this.#keepFloor();
        });
      }
    } finally {
      deadline.dispose();
      const attempts = this.#floorAttempts;
      const i = attempts.indexOf(yielding);
      if (i >= 0) attempts.splice(i, 1);
      this.#floorInFlight--;
      this.#free(slot);
    }
    this.#keepFloor();
  }

  /** Asks for the floor to be checked once the current operation is over (a slot just emptied). */
  #wantFloor(): void {
    if (this.#floorQueued || this.#status !== "ready") return;
    this.#floorQueued = true;
    queueMicrotask(() => {
      this.#floorQueued = false;
      this.#keepFloor();
    });
  }

  /**
   * Throws when `terminate()` ran while an acquire awaited (it took the slot's connection):
   * the acquire fails instead of handing out a dead connection or connecting for a closed pool.
   */
  #stillOpen(slot: Slot, con: Connection | undefined): void {
    if (this.#status === "closed" || slot.con !== con) {
      throw new InterfaceError("POOL_CLOSED", "Cannot acquire a connection as the pool was terminated");
    }
  }

  /** Closes a connection no slot holds any more, gracefully, in the background. */
  #closeDropped(con: Connection): void {
    if (this.#status === "closed") return con.terminate();
    con.close({ timeout: this.#releaseBound }).catch((e: unknown) => {
      this.#emit("BACKGROUND_CLOSE_FAILED", `Closing a dropped connection failed: ${String(e)}`);
    });
  }

  /** Forgets a slot's connection and counts its close (the reason decided earlier wins). */
  #forget(slot: Slot, reason: CloseReason): void {
    slot.con = undefined;
    slot.driver = undefined;
    slot.expiresAt = Infinity;
    slot.lifeOver = false;
    slot.stale = false;
    this.#counters.closed(slot.closeReason ?? reason);
    slot.closeReason = undefined;
  }

  /** Drops a slot's connection: terminated now, or closed gracefully in the background. */
  #discard(slot: Slot, now: boolean, reason: CloseReason): void {
    const con = slot.con!;
    this.#forget(slot, reason);
    if (now || this.#status === "closed") con.terminate();
    else this.#closeDropped(con);
  }

  /** The driver reported that a slot's connection closed. */
  #closedUnder(slot: Slot, con: Connection): void {
    if (slot.con !== con) return;
    switch (slot.state) {
      case "idle":
        this.#forget(slot, "broken");
        this.#free(slot);
        return;
      case "busy":
        this.#forget(slot, "broken");
        slot.holder!.to("over");
        slot.holder = undefined;
        this.#free(slot);
        return;
      case "shared":
        // Its one-shots fail with the driver's error; the last one to finish frees the slot.
        this.#forget(slot, "broken");
        return;
      default:
        // acquiring / releasing: the operation in flight fails and frees the slot.
        return;
    }
  }

  /**
   * Hands a free slot to the longest waiter, else parks it (idle or empty).
   * Every path that gives a slot back comes through here.
   */
  #free(slot: Slot): void {
    if (slot.con !== undefined && (this.#status === "closed" || slot.driver!.isClosed())) {
      const con = slot.con;
      const open = !slot.driver!.isClosed();
      this.#forget(slot, open ? "closed" : "broken");
      if (open) con.terminate();
    } else if (slot.lifeOver && slot.con !== undefined) this.#discard(slot, false, "maxLifetime");
    while (this.#liveWaiters > 0) {
      const waiter = this.#waiters[this.#waiterHead]!;
      this.#waiters[this.#waiterHead++] = undefined as unknown as Waiter;
      if (waiter.state !== "waiting") continue;
      this.#granted(waiter);
      if (waiter.shared && this.#shareable(slot)) {
        this.#move(slot, "shared");
        waiter.resolve(this.#reserve(slot, waiter.bounded));
        this.#serveShared(slot); // the one-shots next in line may join it
        return;
      }
      this.#move(slot, "acquiring");
      if (!waiter.direct) waiter.resolve(slot);
      else if (this.#ready(slot)) waiter.resolve(this.#handOut(slot, undefined, waiter.site));
      else waiter.resolve(this.#checkout(slot, undefined, undefined, waiter.site));
      return;
    }
    this.#move(slot, slot.con === undefined ? "empty" : "idle");
  }

  /**
   * The time for bookkeeping (wait statistics, idle timestamps): the clock's `coarseNow()` where it has
   * one (the system clock reads `performance.now()` once per turn of microtasks: on Deno a reading costs
   * about 100 ns, and a waiting acquire and its release took three).
   */
  #bookTime(): number {
    return this.#coarse ? this.#clock.coarseNow!() : this.#clock.now();
  }

  /** A waiter taken off the queue to be served (its wait counted). */
  #granted(waiter: Waiter): void {
    waiter.state = "granted";
    this.#counters.acquireWaitMs += this.#bookTime() - waiter.since;
    this.#liveWaiters--;
    this.#compactWaiters();
  }

  /** The one place a slot changes state. */
  #move(slot: Slot, to: SlotState): void {
    const from = slot.state;
    if (from === to) return;
    if (from === "idle") {
      const idle = this.#idle;
      if (idle[idle.length - 1] === slot) idle.pop();
      else idle.splice(idle.indexOf(slot), 1);
      slot.driver?.ref(); // in use again: it keeps the process alive until it is idle again
    } else if (from === "empty") {
      const empty = this.#empty;
      if (empty[empty.length - 1] === slot) empty.pop();
      else empty.splice(empty.indexOf(slot), 1);
    } else {
      this.#inUse--;
      if (from === "shared") {
        const sharing = this.#sharing;
        if (sharing[sharing.length - 1] === slot) sharing.pop();
        else sharing.splice(sharing.indexOf(slot), 1);
        slot.depth = 0;
        slot.bounded = false;
        slot.readOnly = false;
      }
    }
    slot.state = to;
    if (to === "idle") {
      this.#idle.push(slot);
      slot.driver!.unref(); // an idle pool never keeps the process alive
      slot.stale = this.#pingAlways;
      if (this.#idleDueMs !== Infinity) {
        const due = (slot.idleSince = this.#bookTime()) + this.#idleDueMs;
        if (due < this.#sweepAt) this.#armSweep(due);
      }
    } else if (to === "empty") {
      this.#empty.push(slot);
      if (this.#settings.minSize > 0) this.#wantFloor();
    } else {
      this.#inUse++;
      if (to === "shared") this.#sharing.push(slot);
    }
    if (this.#inUse === 0 && this.#drained !== undefined) this.#drained();
  }

  #armSweep(at: number): void {
    this.#sweepAlarm?.cancel();
    this.#sweepAt = at;
    this.#sweepAlarm = this.#watchdog.at(at, () => this.#sweep());
  }

  /**
   * The maintenance pass, run when something falls due: closes idle connections
   * past `maxInactiveConnectionLifetime` or their lifetime, marks checked-out ones
   * past their lifetime (closed at release), marks idle ones past `pingAfterIdle`
   * for a ping, and arms itself for the next instant anything falls due.
   */
  #sweep(): void {
    this.#sweepAlarm = undefined;
    this.#sweepAt = Infinity;
    if (this.#status === "closed") return;
    const { maxInactiveMs, pingAfterIdleMs, minSize, maxSize } = this.#settings;
    const now = this.#clock.now();
    let next = Infinity;
    /** Slots holding (or getting) a connection: idleness never takes the pool below `minSize`. */
    let held = maxSize - this.#empty.length;
    for (const slot of this.#slots) {
      if (slot.con === undefined) continue;
      if (slot.expiresAt !== Infinity && !slot.lifeOver) {
        if (now >= slot.expiresAt) slot.lifeOver = true;
        else if (slot.expiresAt < next) next = slot.expiresAt;
      }
      if (slot.state !== "idle") continue;
      if (slot.lifeOver) {
        this.#discard(slot, false, "maxLifetime");
        this.#move(slot, "empty");
        held--;
        continue;
      }
      if (maxInactiveMs > 0) {
        const due = slot.idleSince + maxInactiveMs;
        if (now < due) {
          if (due < next) next = due;
        } else if (held > minSize) {
          this.#discard(slot, true, "idle");
          this.#move(slot, "empty");
          held--;
          continue;
        }
      }
      if (pingAfterIdleMs !== undefined && pingAfterIdleMs > 0 && !slot.stale) {
        const due = slot.idleSince + pingAfterIdleMs;
        if (now >= due) slot.stale = true;
        else if (due < next) next = due;
      }
    }
    if (next !== Infinity) this.#armSweep(next);
  }

  /**
   * Gives a connection back: listeners are removed and an open transaction is
   * rolled back (each with a warning), the session is reset, then the
   * connection goes to the longest waiter or back to the idle set. A release
   * that fails or times out terminates the connection; the slot always comes back.
   *
   * @param con The proxy `acquire()` returned.
   * @param options `timeout` in seconds (default: the acquire's timeout, else `releaseTimeout`).
   * @throws {InterfaceError} `FOREIGN_CONNECTION` for anything but this pool's proxy.
   * @throws {InterfaceError} `RELEASE_IN_SETUP` when called from the `setup` hook on the connection being set up.
   * @throws {PoolTimeoutError} `RELEASE_TIMEOUT` when the reset takes too long.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ maxSize: 2 });
   * const con = await pool.acquire();
   * await pool.release(con);
   * await pool.release(con); // a no-op
   * assert.equal(pool.getIdleSize(), 1);
   * assert.throws(() => con.fetchVal("SELECT 1"), { code: "CONNECTION_RELEASED" }); // synchronously
   * ```
   */
  release(con: PoolConnection, options?: ReleaseOptions): Promise<void> {
    if (!(con instanceof PoolConnection)) return Promise.reject(this.#foreign(con));
    const state = proxyInternals.state(con);
    if (state.pool !== this) return Promise.reject(this.#foreign(con));
    if (state.released) return state.releasing ?? RESOLVED;
    let timeoutMs: number | undefined;
    if (options?.timeout !== undefined) {
      try {
        timeoutMs = validTimeout("Cannot release the connection", options.timeout);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const checkout = state.slot as Checkout;
    if (checkout.state === "setup") {
      // The acquire has not handed the proxy out yet: a release now would leave the caller a dead proxy
      // whose own release is a no-op, and the slot busy for good. The setup hook gets the error instead.
      return Promise.reject(
        new InterfaceError(
          "RELEASE_IN_SETUP",
          "Cannot release the connection inside the setup hook as the acquire has not returned it yet",
        ),
      );
    }
    state.released = true;
    this.#letGo(checkout);
    const slot = checkout.slot;
    if (slot.holder !== checkout || checkout.state !== "held") return state.releasing = RESOLVED;
    timeoutMs ??= checkout.timeoutMs ?? (this.#settings.releaseTimeoutMs || undefined);
    this.#metrics?.used(this.#clock.now() - checkout.heldAt);
    checkout.to("releasing");
    this.#move(slot, "releasing");
    return state.releasing = this.#releaseSlot(checkout, con, timeoutMs);
  }

  #releaseSlot(checkout: Checkout, proxy: PoolConnection, timeoutMs: number | undefined): Promise<void> {
    const slot = checkout.slot;
    const con = checkout.con;
    const driver = slot.driver!;
    if (driver.isClosed()) {
      checkout.to("over");
      slot.holder = undefined;
      this.#free(slot);
      return RESOLVED;
    }
    const listeners = conInternals.listenerCount(con);
    conInternals.clearSessionState(con);
    if (listeners > 0) {
      this.#emit(
        "RELEASED_WITH_LISTENERS",
        `A connection was released with ${listeners} active listener${
          listeners === 1 ? "" : "s"
        }; they were removed`,
        proxy,
      );
    }
    if (driver.transactionStatus !== "idle") {
      this.#emit(
        "RELEASED_IN_TRANSACTION",
        "A connection was released with an open transaction; it was rolled back",
        proxy,
      );
    }
    let work: Promise<void>;
    try {
      const reason = this.#retire(slot, driver, proxy);
      if (reason !== undefined) {
        slot.closeReason = reason;
        work = con.close({ timeout: timeoutMs === undefined ? undefined : timeoutMs / 1000 });
      } else work = this.#reset(con, driver);
    } catch (e) {
      work = Promise.reject(e);
    }
    const release = new Release(this.#releaseHost, checkout, work, this.#watchdog, timeoutMs);
    checkout.release = release;
    return release.promise;
  }

  /** Why a released connection is closed instead of reused, or undefined to reuse it. */
  #retire(slot: Slot, driver: DriverConnection, proxy: PoolConnection): CloseReason | undefined {
    if (slot.generation !== this.#generation) return "expired";
    if (this.#watchReadOnly && proxyInternals.state(proxy).readOnly) return "broken"; // a failover left it on a read-only server
    if (slot.lifeOver) return "maxLifetime";
    if (driver.queryCount >= this.#settings.maxQueries) return "maxQueries";
    return undefined;
  }

  /** A release succeeded: its slot goes back (called by that release only, once). */
  #returned(checkout: Checkout): void {
    const slot = checkout.slot;
    slot.holder = undefined;
    this.#free(slot);
  }

  /** A release failed, timed out or was abandoned: its connection is dropped and its slot goes back. */
  #dropped(checkout: Checkout): void {
    const slot = checkout.slot;
    slot.holder = undefined;
    if (slot.con === checkout.con) this.#discard(slot, true, "resetFailed");
    this.#free(slot);
  }

  /**
   * The reset is pipelined: it resolves once the statements are on their way
   * and the next checkout's first statement queues behind them; the releasing
   * caller never waits for the server. The pool's `releaseTimeout` still bounds
   * it: the driver closes a connection whose reset is not answered in time. (A
   * caller's short timeout is no measure of a healthy server, so it does not
   * apply here; it bounds what release itself waits for: a custom reset, a
   * pending cancellation, a close at `maxQueries`.)
   */
  #reset(con: Connection, driver: DriverConnection): Promise<void> {
    const custom = this.#settings.reset;
    const done = driver.reset(this.#resetOptions);
    return custom === undefined ? done : done.then(() => custom(con));
  }

  /**
   * Waits for every checked-out connection to be released, then closes all
   * connections. New acquires and queued waiters are rejected with
   * `POOL_CLOSING`. Warns with `SLOW_CLOSE` when it waits longer than
   * `closeWarningAfter`. If it fails, times out or is aborted, the pool is
   * terminated.
   *
   * @param options `timeout` (seconds) and `signal` bound the wait.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * const pool = await createPool({ minSize: 1 });
   * await pool.close({ timeout: 10 });
   * assert.equal(pool.getSize(), 0);
   * await assert.rejects(pool.fetchVal("SELECT 1"), { code: "POOL_CLOSED" });
   * ```
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.#status === "closed") return RESOLVED;
    if (this.#closing !== undefined) return this.#closing;
    if (this.#status === "new") {
      this.#status = "closed";
      return RESOLVED;
    }
    if (this.#status === "initializing") {
      return Promise.reject(
        new InterfaceError("POOL_INITIALIZING", "Cannot close the pool as it is being initialized"),
      );
    }
    let timeoutMs: number | undefined;
    let signal: AbortSignal | undefined;
    try {
      timeoutMs = validTimeout("Cannot close the pool", options?.timeout);
      signal = validSignal("Cannot close the pool", options?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#status = "closing";
    void this.#listens.close(); // awaited with the slots' connections below
    this.#floorAlarm?.cancel();
    this.#floorAlarm = undefined;
    this.#rejectWaiters(
      new InterfaceError("POOL_CLOSING", "Cannot acquire a connection as the pool is closing"),
    );
    return this.#closing = this.#closeSlots(timeoutMs, signal);
  }

  async #closeSlots(timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    const deadline = timeoutMs === undefined && signal === undefined ? undefined : new Deadline(
      this.#clock,
      timeoutMs,
      signal,
      "CLOSE_TIMEOUT",
      `Timed out after ${(timeoutMs ?? 0) / 1000}s closing the pool`,
    );
    let warning: Alarm | undefined;
    try {
      if (this.#inUse > 0) {
        const waitMs = this.#settings.closeWarningMs;
        warning = this.#watchdog.after(waitMs, () => {
          this.#emit(
            "SLOW_CLOSE",
            `Pool.close() has waited ${waitMs / 1000}s for ${this.#inUse} connection(s) to be released; ` +
              "check for connections that are never released, or pass a timeout to close()",
          );
        });
        const drained = new Promise<void>((resolve) => this.#drained = resolve);
        await (deadline === undefined ? drained : deadline.race(drained));
      }
      const closing: Promise<void>[] = [this.#listens.close()];
      for (const slot of this.#slots) {
        if (slot.con === undefined) continue;
        const con = slot.con;
        this.#forget(slot, "closed");
        if (slot.state === "idle") this.#move(slot, "empty");
        closing.push(con.close());
      }
      const all = Promise.all(closing).then(noop);
      await (deadline === undefined ? all : deadline.race(all));
      this.#finish();
    } catch (e) {
      this.terminate();
      throw e;
    } finally {
      warning?.cancel();
      deadline?.dispose();
      this.#drained = undefined;
    }
  }

  /** Closed: no release runs any more (close drained them; terminate abandoned them), so the timer goes. */
  #finish(): void {
    this.#status = "closed";
    this.#sweepAlarm = undefined;
    this.#sweepAt = Infinity;
    this.#floorAlarm = undefined;
    this.#watchdog.stop();
    this.#metrics?.dispose();
    this.#metrics = undefined;
  }

  #rejectWaiters(error: InterfaceError): void {
    const waiters = this.#waiters;
    const now = this.#clock.now();
    for (let i = this.#waiterHead; i < waiters.length; i++) {
      const w = waiters[i]!;
      if (w.state !== "waiting") continue;
      w.state = "cancelled";
      this.#counters.acquireWaitMs += now - w.since;
      w.reject(error);
    }
    this.#waiters = [];
    this.#waiterHead = 0;
    this.#liveWaiters = 0;
  }

  /**
   * Drops every connection now, checked out or not, and closes the pool.
   * Queued acquires reject with `POOL_CLOSED`. A no-op on a closed pool.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * const pool = await createPool({ minSize: 1 });
   * const con = await pool.acquire();
   * pool.terminate(); // checked out or not
   * assert.equal(con.isClosed(), true);
   * assert.equal(pool.getSize(), 0);
   * ```
   */
  terminate(): void {
    if (this.#status === "closed") return;
    this.#status = "closed";
    this.#listens.terminate();
    this.#rejectWaiters(
      new InterfaceError("POOL_CLOSED", "Cannot acquire a connection as the pool was terminated"),
    );
    for (const slot of this.#slots) {
      const con = slot.con;
      if (con !== undefined) {
        this.#forget(slot, con.isClosed() ? "broken" : "closed");
        con.terminate();
      }
      if (slot.state === "idle" || slot.state === "shared") this.#move(slot, "empty");
      else if (slot.state === "busy" && con !== undefined) {
        slot.holder!.to("over");
        slot.holder = undefined;
        this.#move(slot, "empty");
      } else if (slot.state === "releasing") {
        // Its connection is gone: the release ends now instead of waiting for work that cannot finish.
        // (No release yet when a warning handler terminated the pool while the release was starting.)
        slot.holder?.release?.abandon(
          new InterfaceError(
            "POOL_CLOSED",
            "Cannot finish releasing the connection as the pool was terminated",
          ),
        );
      }
    }
    this.#finish();
    this.#drained?.();
  }

  /**
   * Marks every current connection expired: idle ones are replaced at their
   * next acquire, checked-out ones are closed at release.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ minSize: 1, maxSize: 1 });
   * pool.setConnectArgs(undefined, { applicationName: "v2" });
   * pool.expireConnections(); // the open connection is replaced at its next acquire
   * assert.equal(await pool.fetchVal("SHOW application_name"), "v2");
   * ```
   */
  expireConnections(): void {
    this.#generation++;
  }

  /**
   * Replaces the connection options used for new connections.
   *
   * @param dsn A DSN, or `undefined`.
   * @param options Connection options.
   * @throws {TypeError} For unknown option names.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ maxSize: 2 });
   * // For new connections; a DSN can come first: setConnectArgs("postgres://user@host/other").
   * pool.setConnectArgs(undefined, { applicationName: "reports" });
   * assert.equal(await pool.fetchVal("SHOW application_name"), "reports");
   * ```
   */
  setConnectArgs(dsn?: string, options?: ConnectOptions): void {
    if (dsn !== undefined && typeof dsn !== "string") {
      throw new TypeError("Cannot set connect arguments as 'dsn' must be a string");
    }
    const next: ConnectOptions = dsn === undefined ? { ...options } : { ...options, dsn };
    checkConnectOptions(next, "Cannot set connect arguments");
    this.#connectOptions = next;
    this.#watchReadOnly = wantsWritable(next);
  }

  /** Open connections (checked out or idle). @returns The count. */
  getSize(): number {
    let n = 0;
    for (const slot of this.#slots) if (slot.driver !== undefined && !slot.driver.isClosed()) n++;
    return n;
  }

  /** Open connections not checked out. @returns The count. */
  getIdleSize(): number {
    let n = 0;
    for (const slot of this.#idle) if (!slot.driver!.isClosed()) n++;
    return n;
  }

  /** The configured `minSize`. @returns The value. */
  getMinSize(): number {
    return this.#settings.minSize;
  }

  /** The configured `maxSize`. @returns The value. */
  getMaxSize(): number {
    return this.#settings.maxSize;
  }

  /**
   * A plain snapshot of the pool: gauges (`size`, `idle`, `busy`, `waiting`,
   * `connecting`, `maxSize`, `minSize`) and counters since the pool was made,
   * which only grow. Cheap: nothing on the acquire path allocates to feed it.
   *
   * @returns A new object, the caller's to keep.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ minSize: 1, maxSize: 2 });
   * await pool.fetchVal("SELECT 1");
   * const s = pool.stats();
   * assert.equal(s.acquireCount, 1);
   * assert.equal(s.connectCount, 1);
   * assert.equal(s.size, s.idle + s.busy);
   * ```
   */
  stats(): PoolStats {
    const c = this.#counters;
    const size = this.getSize();
    const idle = this.getIdleSize();
    return {
      size,
      idle,
      busy: size - idle,
      waiting: this.#liveWaiters,
      connecting: this.#connecting,
      maxSize: this.#settings.maxSize,
      minSize: this.#settings.minSize,
      acquireCount: c.acquireCount,
      acquireWaitCount: c.acquireWaitCount,
      acquireWaitTime: c.acquireWaitMs / 1000,
      acquireTimeoutCount: c.acquireTimeoutCount,
      acquireAbortCount: c.acquireAbortCount,
      connectCount: c.connectCount,
      connectErrorCount: c.connectErrorCount,
      closeCount: c.closeCounts(),
      pingFailCount: c.pingFailCount,
      leakCount: c.leakCount,
    };
  }

  /**
   * Subscribes to a notification channel (`LISTEN`). The pool keeps **one
   * dedicated connection** for all its channels, opened through its `connect`
   * hook with its connect options (no `init`/`setup` hooks run on it). That
   * connection is **not** one of the pool's `maxSize` connections and is not
   * counted by `getSize()` or `stats()`; it is opened by the first `listen()`
   * and closed when the last subscription ends. While a subscription is active
   * it keeps the process alive. Several callbacks may listen on one channel;
   * `UNLISTEN` is sent when the last one goes. When the connection is lost
   * (server restart, `pg_terminate_backend`, network), the pool reconnects with
   * capped, jittered backoff, LISTENs every channel again and then calls the
   * `onListenGap` option (else warns `LISTEN_GAP`): notifications sent while it
   * was down are lost. A callback that throws is reported as a
   * `LISTEN_CALLBACK_FAILED` warning. `close()` and `terminate()` end every
   * subscription.
   *
   * @param channel The channel name (an identifier, quoted on the wire; at most 63 bytes).
   * @param callback Receives each notification's payload and channel.
   * @param options `timeout` (seconds, default the pool's `listenTimeout`) and `signal` bound the wait for the connection.
   * @returns Resolves, once the channel is LISTENed, to the function that ends this subscription.
   * @throws {InterfaceError} `UNSUPPORTED` in transaction pool mode; `POOL_CLOSED`, `POOL_CLOSING`,
   *   `POOL_NOT_INITIALIZED`, `INVALID_ARGUMENT`.
   * @throws {PoolTimeoutError} `LISTEN_TIMEOUT` when the connection is not back within the timeout.
   * @example Listen, get a notification, stop
   * ```ts
   * import assert from "node:assert/strict";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({
   *   maxSize: 2,
   *   onListenGap: (gap) => console.log(`missed notifications on ${gap.channels}? re-read them`),
   * });
   * const got = Promise.withResolvers<string>();
   * const unlisten = await pool.listen("jobs", (payload, channel) => got.resolve(`${channel}: ${payload}`));
   * await pool.execute("SELECT pg_notify('jobs', 'job 1')");
   * assert.equal(await got.promise, "jobs: job 1");
   * assert.equal(pool.getSize(), 1); // the execute()'s connection: the listen connection is not counted
   * await unlisten(); // the last callback of "jobs": UNLISTEN, and the listen connection closes
   * ```
   */
  listen(channel: string, callback: ListenCallback, options?: ListenOptions): Promise<Unlisten> {
    if (this.#status !== "ready") return Promise.reject(this.#unusable("listen"));
    return this.#listens.listen(channel, callback, options);
  }

  /** Acquires waiting for a connection. @returns The count. */
  getWaitingCount(): number {
    return this.#liveWaiters;
  }

  /** True from the moment `close()` or `terminate()` starts, and forever after. @returns The flag. */
  isClosing(): boolean {
    return this.#status === "closing" || this.#status === "closed";
  }

  static {
    // The one-shots, one per method of the query API's list: acquire, run, release.
    defineMethods(
      BasePool.prototype,
      QUERY_METHODS,
      Connection.prototype,
      (name) =>
        function (this: BasePool, a: unknown, b: unknown, c: unknown): Promise<unknown> {
          return this.#oneShot(name, a, b, c);
        },
    );
  }

  /**
   * A one-shot: placed on a connection that runs one-shots when the pool pipelines them (see
   * `pipelineDepth`), else acquire, run, release.
   */
  #oneShot(method: QueryMethod, a: unknown, b: unknown, c: unknown): Promise<unknown> {
    if (this.#pipelineDepth > 1 && this.#status === "ready" && PIPELINED.has(method)) {
      const opts = (METHODS[method] === 1 ? b : c) as QueryOptions | undefined;
      const bounded = opts !== undefined && opts !== null &&
        (opts.timeout !== undefined || opts.signal !== undefined);
      // A bound that is not one, or leaves no time, fails as the acquire it stands for would.
      if (bounded && !validBounds(opts)) return this.#exclusive(method, a, b, c);
      const place = this.#place(bounded);
      if (place === null) return this.#queued(method, a, b, c, bounded ? opts : undefined);
      if (place !== undefined) {
        if (this.#metrics === undefined) return this.#runShared(place, method, a, b, c, bounded);
        this.#metrics.waited(0);
        return this.#timedShared(place, method, a, b, c, bounded, this.#metrics);
      }
    }
    return this.#exclusive(method, a, b, c);
  }

  /** `#runShared` feeding the `use_time` histogram (the place's time until its statement settled). */
  #timedShared(
    slot: Slot,
    method: QueryMethod,
    a: unknown,
    b: unknown,
    c: unknown,
    bounded: boolean,
    metrics: PoolMetrics,
  ): Promise<unknown> {
    const start = this.#clock.now();
    const used = (): void => metrics.used(this.#clock.now() - start);
    const result = this.#runShared(slot, method, a, b, c, bounded);
    result.then(used, used);
    return result;
  }

  /**
   * Where a one-shot goes now: a slot holding its place (an idle connection, else — at `maxSize` — the
   * least loaded one running one-shots that takes more), `undefined` to acquire as usual (a connection
   * to open, or an idle one that needs a ping first), or `null` to wait in line (behind any waiting
   * acquire).
   */
  #place(bounded: boolean): Slot | null | undefined {
    if (this.#liveWaiters > 0) return null;
    const idle = this.#idle[this.#idle.length - 1];
    if (idle !== undefined) {
      if (!this.#shareable(idle)) return undefined;
      this.#move(idle, "shared");
      return this.#reserve(idle, bounded);
    }
    if (this.#empty.length > 0) return undefined; // below maxSize: a connection of its own, as an acquire
    let best: Slot | undefined;
    const sharing = this.#sharing;
    for (let i = 0; i < sharing.length; i++) {
      const slot = sharing[i]!;
      if ((best === undefined || slot.depth < best.depth) && this.#joinable(slot)) best = slot;
    }
    return best === undefined ? null : this.#reserve(best, bounded);
  }

  /** A connected, current slot whose driver pipelines: it may run one-shots. */
  #shareable(slot: Slot): boolean {
    return this.#ready(slot) && slot.driver!.capabilities?.pipelining === true;
  }

  /** A slot running one-shots that takes one more. */
  #joinable(slot: Slot): boolean {
    const driver = slot.driver;
    return !slot.bounded && slot.depth < this.#pipelineDepth && !slot.lifeOver && !slot.readOnly &&
      slot.generation === this.#generation && this.#status === "ready" && driver !== undefined &&
      driver.queryCount < this.#settings.maxQueries && !driver.isClosed();
  }

  /** Takes a place on a `shared` slot. */
  #reserve(slot: Slot, bounded: boolean): Slot {
    slot.depth++;
    if (bounded) slot.bounded = true;
    this.#counters.acquireCount++;
    return slot;
  }

  /**
   * Runs a one-shot on a `shared` slot: its statement, then the reset queued right behind it (both
   * written in this very turn, so no other one-shot's statement comes between). The caller gets its
   * statement's outcome; a failed reset closes the connection before any later answer is delivered. A
   * bounded one-shot keeps its place until its reset is answered, so that nothing is queued behind it
   * while a cancel request for it may still land.
   */
  #runShared(
    slot: Slot,
    method: QueryMethod,
    a: unknown,
    b: unknown,
    c: unknown,
    bounded: boolean,
  ): Promise<unknown> {
    const driver = slot.driver!;
    let result: Promise<unknown>;
    try {
      result = (slot.con as unknown as ByName)[method](a, b, c) as Promise<unknown>;
    } catch (e) {
      result = Promise.reject(e);
    }
    let reset: Promise<void>;
    try {
      reset = driver.reset(bounded ? this.#sharedResetAwaited : this.#sharedReset);
    } catch (e) {
      reset = Promise.reject(e);
    }
    if (bounded) {
      // Its place is given up once both its statement and its reset are over (whatever order a driver
      // settles them in).
      let left = 2;
      const done = (): void => {
        if (--left === 0) this.#sharedDone(slot, true);
      };
      reset.then(done, done);
      return result.then((value) => {
        done();
        return value;
      }, (e: unknown) => {
        this.#sawError(slot, e);
        done();
        throw e;
      });
    }
    reset.catch(noop);
    return result.then((value) => {
      this.#sharedDone(slot, false);
      return value;
    }, (e: unknown) => {
      this.#sawError(slot, e);
      this.#sharedDone(slot, false);
      throw e;
    });
  }

  /** A one-shot failed: a read-only answer where the pool wants a writable server retires its connection. */
  #sawError(slot: Slot, e: unknown): void {
    if (this.#watchReadOnly && (e as { code?: unknown } | null)?.code === "25006") slot.readOnly = true;
  }

  /**
   * A one-shot on a `shared` slot is over: its place goes to the next one-shot in line, and the slot
   * goes back (idle, or to the next waiter) once no one-shot runs on it.
   */
  #sharedDone(slot: Slot, bounded: boolean): void {
    if (slot.state !== "shared") return; // the pool was terminated meanwhile
    slot.depth--;
    if (bounded) slot.bounded = false;
    if (this.#liveWaiters > 0) this.#serveShared(slot);
    if (slot.depth === 0) this.#endShared(slot);
  }

  /** Places the one-shots first in line on a `shared` slot while it takes more; a waiting acquire first in line stops it. */
  #serveShared(slot: Slot): void {
    while (this.#liveWaiters > 0 && this.#joinable(slot)) {
      const waiter = this.#waiters[this.#waiterHead]!;
      if (waiter.state === "waiting" && !waiter.shared) return; // the connection drains for it
      this.#waiters[this.#waiterHead++] = undefined as unknown as Waiter;
      if (waiter.state !== "waiting") continue;
      this.#granted(waiter);
      waiter.resolve(this.#reserve(slot, waiter.bounded));
    }
  }

  /** No one-shot runs on a `shared` slot any more: retired if it must be, then given back. */
  #endShared(slot: Slot): void {
    const driver = slot.driver;
    if (driver !== undefined && !driver.isClosed() && this.#status !== "closed") {
      const reason: CloseReason | undefined = slot.generation !== this.#generation
        ? "expired"
        : slot.readOnly
        ? "broken"
        : driver.queryCount >= this.#settings.maxQueries
        ? "maxQueries"
        : undefined;
      if (reason !== undefined) this.#discard(slot, false, reason);
    }
    this.#free(slot);
  }

  /**
   * A one-shot waits in line for a place; its `timeout` and `signal` bound the wait. Given a slot of
   * its own instead of a place (one to connect or ping first), it checks it out as an acquire would.
   */
  async #queued(
    method: QueryMethod,
    a: unknown,
    b: unknown,
    c: unknown,
    opts: QueryOptions | undefined,
  ): Promise<unknown> {
    const bounded = opts !== undefined;
    const where = "Cannot acquire a connection";
    const timeoutMs = bounded ? validTimeout(where, opts.timeout) : undefined;
    const signal = bounded ? validSignal(where, opts.signal) : undefined;
    if (timeoutMs !== undefined && timeoutMs <= 0) return this.#exclusive(method, a, b, c);
    const deadlineAt = timeoutMs === undefined ? undefined : this.#clock.now() + timeoutMs;
    const deadline = this.#acquireDeadline(timeoutMs, signal);
    let slot: Slot;
    let con: PoolConnection | undefined;
    const metrics = this.#metrics;
    const start = metrics === undefined ? 0 : this.#clock.now();
    try {
      slot = await this.#wait(deadline, true, bounded);
      if (slot.state !== "shared") con = await this.#claim(slot, deadline, timeoutMs, undefined);
    } catch (e) {
      this.#countGiveUp(deadline, e);
      throw e;
    } finally {
      deadline?.dispose();
    }
    if (con !== undefined) {
      metrics?.waited(this.#clock.now() - start);
      if (metrics !== undefined) (proxyInternals.state(con).slot as Checkout).heldAt = this.#clock.now();
      return this.#runOn(con, method, a, b, c, opts, deadlineAt);
    }
    if (slot.con === undefined) {
      // Its connection was lost before this one-shot's turn: nothing of it ran; it is placed again.
      this.#sharedDone(slot, bounded);
      return this.#oneShot(method, a, b, c);
    }
    if (deadlineAt !== undefined) {
      const q = { ...opts, timeout: Math.max(0.001, (deadlineAt - this.#clock.now()) / 1000) };
      if (METHODS[method] === 1) b = q;
      else c = q;
    }
    if (metrics === undefined) return this.#runShared(slot, method, a, b, c, bounded);
    metrics.waited(this.#clock.now() - start);
    return this.#timedShared(slot, method, a, b, c, bounded, metrics);
  }

  /**
   * Acquires, runs `method` with the connection, releases — even when it throws
   * (its error wins over a release error). The method's options (`timeout`,
   * `signal`) bound the whole call: acquire, query and release share one budget.
   */
  async #exclusive(method: QueryMethod, a: unknown, b: unknown, c: unknown): Promise<unknown> {
    const opts = (METHODS[method] === 1 ? b : c) as QueryOptions | undefined;
    if (opts === undefined || (opts.timeout === undefined && opts.signal === undefined)) {
      return this.#runOn(await this.acquire(), method, a, b, c, undefined, undefined);
    }
    const deadlineAt = opts.timeout === undefined ? undefined : this.#clock.now() + opts.timeout * 1000;
    const con = await this.acquire({ timeout: opts.timeout, signal: opts.signal });
    return this.#runOn(con, method, a, b, c, opts, deadlineAt);
  }

  /**
   * Runs `method` on a checked-out connection and releases it. With `opts` (a timeout or signal) the
   * query gets what is left of the budget ending at `deadlineAt`, and so does the wait for the release.
   */
  async #runOn(
    con: PoolConnection,
    method: QueryMethod,
    a: unknown,
    b: unknown,
    c: unknown,
    opts: QueryOptions | undefined,
    deadlineAt: number | undefined,
  ): Promise<unknown> {
    if (opts === undefined) {
      let result: unknown;
      try {
        result = await (con as unknown as ByName)[method](a, b, c);
      } catch (e) {
        await this.release(con).catch(noop); // the query's error wins over a release error
        throw e;
      }
      await this.release(con).catch((e: unknown) => this.#releaseFailedAfter(e, con));
      return result;
    }
    const at = METHODS[method];
    const left = (): number | undefined =>
      deadlineAt === undefined ? undefined : Math.max(0.001, (deadlineAt - this.#clock.now()) / 1000);
    let result: unknown;
    try {
      const q = deadlineAt === undefined ? opts : { ...opts, timeout: left() };
      result = await (con as unknown as ByName)[method](a, at === 1 ? q : b, at === 1 ? c : q);
    } catch (e) {
      // Wait for the release while the budget lasts; past it the release goes on in the background,
      // under the pool's own bound.
      const releasing = this.release(con, { timeout: this.#releaseBound })
        .catch(noop);
      if (deadlineAt === undefined) await releasing;
      else await this.#within(releasing, deadlineAt - this.#clock.now());
      throw e;
    }
    await this.release(con, { timeout: left() }).catch((e: unknown) => this.#releaseFailedAfter(e, con));
    return result;
  }

  /**
   * A one-shot's statement succeeded but its release failed (the connection was
   * dropped): the statement's outcome stands — a committed write must not look
   * failed to a caller who would then retry it — and the failure becomes a warning.
   */
  #releaseFailedAfter(error: unknown, con: PoolConnection): void {
    this.#emit(
      "RELEASE_FAILED",
      `A connection failed to reset after a one-shot statement succeeded; it was dropped: ${String(error)}`,
      con,
    );
  }

  /** Waits for `promise`, but no longer than `ms` (an alarm on the watchdog). */
  #within(promise: Promise<void>, ms: number): Promise<void> {
    if (ms <= 0) return RESOLVED;
    const watchdog = this.#watchdog;
    return new Promise<void>((resolve) => {
      const alarm = watchdog.after(ms, resolve);
      promise.then(() => {
        alarm.cancel();
        resolve();
      });
    });
  }

  /** Closes the pool (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A description without secrets. */
  toString(): string {
    return `Pool(${this.#status}, size ${this.getSize()}/${this.#settings.maxSize}, idle ${this.getIdleSize()})`;
  }

  /** Deno's inspect. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Node's and Bun's inspect. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  #emit(code: WarningCode, message: string, connection?: PoolConnection, stack?: string): void {
    const warning: PoolWarning = connection === undefined ? { code, message } : { code, message, connection };
    if (stack !== undefined) warning.stack = stack;
    try {
      this.#warn(warning);
    } catch {
      // a throwing warning handler must not break the pool
    }
  }

  #foreign(con: unknown): InterfaceError {
    const what = con instanceof PoolConnection ? "another pool's connection" : typeof con;
    return new InterfaceError(
      "FOREIGN_CONNECTION",
      `Cannot release ${what} as it is not a connection of this pool`,
    );
  }

  #unusable(action: string): InterfaceError {
    switch (this.#status) {
      case "new":
        return new InterfaceError("POOL_NOT_INITIALIZED", `Cannot ${action} as the pool is not initialized`);
      case "initializing":
        return new InterfaceError(
          "POOL_INITIALIZING",
          `Cannot ${action} as the pool is being initialized; await init() or createPool() first`,
        );
      case "closing":
        return new InterfaceError("POOL_CLOSING", `Cannot ${action} as the pool is closing`);
      default:
        return new InterfaceError("POOL_CLOSED", `Cannot ${action} as the pool is closed`);
    }
  }
}

/**
 * The pool's one-shots: each method of {@linkcode QueryApi} acquires a
 * connection, runs the query and releases it; the options' `timeout` and
 * `signal` bound the whole call. A statement that succeeded stands even when the
 * release fails (that becomes a `RELEASE_FAILED` warning); a statement's error
 * wins over a release error.
 */
export interface BasePool extends QueryApi {}

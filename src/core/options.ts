/**
 * Pool options and their validation.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import type { Connection } from "./connection.ts";
import { CONNECT_OPTION_NAMES, type ConnectOptions } from "./driver.ts";
import type { PoolConnection } from "./pool_connection.ts";
import type { ListenGapHandler } from "./listen_service.ts";
import { checkRowFactory } from "./row_factory.ts";
import { defaultPoolName, isPoolMeter, type PoolMeter } from "./pool_metrics.ts";
import type { WarningHandler } from "./warnings.ts";

/** Opens one connection for the pool. */
export type ConnectHook = (options: ConnectOptions) => Promise<Connection>;

/**
 * Options of a pool: the pool's own settings plus the connection options passed
 * to every new connection. Durations are in seconds.
 */
export interface PoolOptions extends ConnectOptions {
  /**
   * Connections opened by `init()`.
   * @default {0}
   */
  minSize?: number;
  /**
   * Hard upper bound on open connections.
   * @default {10}
   */
  maxSize?: number;
  /**
   * A connection that ran this many queries is closed at release instead of reused.
   * @default {50000}
   */
  maxQueries?: number;
  /**
   * Seconds an idle connection may stay open; `0` disables.
   * @default {300}
   */
  maxInactiveConnectionLifetime?: number;
  /**
   * Seconds a connection may live: past its lifetime it is closed at release or
   * while idle, never under a checkout. `0` disables.
   * @default {3600}
   */
  maxLifetime?: number;
  /**
   * Seconds by which each connection's lifetime is shortened at random (drawn at
   * connect), so connections opened together do not all close together. At most `maxLifetime`.
   * @default {10% of maxLifetime}
   */
  maxLifetimeJitter?: number;
  /**
   * Seconds a connection may live when `targetSessionAttrs: "prefer-standby"` found no standby
   * and opened it on any server (the primary, while the standbys are down): past it the
   * connection is closed at release or while idle, never under a checkout, so the next connect
   * tries the standbys again. Shortened at random by up to 10%; `maxLifetime` still applies
   * when shorter. `0` keeps such connections like any other.
   * @default {30}
   */
  fallbackLifetime?: number;
  /**
   * A connection idle longer than this many seconds is checked with a round trip
   * before `acquire()` returns it; a dead one is replaced without the caller
   * seeing its error. `0` checks every time, `null` never.
   * @default {1}
   */
  pingAfterIdle?: number | null;
  /**
   * Connections being opened at once, by acquires and by the kept `minSize` floor together.
   * @default {2}
   */
  maxConcurrentConnects?: number;
  /**
   * Seconds a release may take when neither `release()` nor the acquire gave a
   * timeout; past it the connection is terminated. `0` means no bound.
   * @default {60}
   */
  releaseTimeout?: number;
  /**
   * Seconds `close()` waits on unreleased connections before it warns with `SLOW_CLOSE`.
   * @default {60}
   */
  closeWarningAfter?: number;
  /**
   * Seconds a checkout may be held before the pool warns once with
   * `CONNECTION_LEAK`, carrying the stack of the `acquire()` call; `0` turns it
   * off (and no stack is captured: no cost on `acquire()`).
   * @default {0}
   */
  leakDetectionThreshold?: number;
  /** Opens each new connection instead of the default `connect`. */
  connect?: ConnectHook;
  /** Runs once per new physical connection, before any `setup`. */
  init?: (con: Connection) => Promise<void>;
  /** Runs on every acquire with the very object `acquire()` returns. */
  setup?: (con: PoolConnection) => Promise<void>;
  /**
   * Replaces the reset statements on release (the rollback and listener clearing still happen);
   * `null` sends no reset statements at all (an open transaction is still rolled back), and unlike a
   * hook keeps one-shots pipelined (see `pipelineDepth`).
   */
  reset?: ((con: Connection) => Promise<void>) | null;
  /**
   * How many one-shots (`pool.fetch`, `fetchRow`, `fetchVal`, `fetchMany`, `execute`,
   * `executeMany`) may run at once on one connection once no idle connection is free, each followed
   * by the session reset, so every one still sees a freshly reset session; `1` runs them one at a
   * time. A one-shot never shares a checked-out connection, waiting `acquire()` calls keep their
   * place in line, and a one-shot with a `timeout` or `signal` is never followed by another on its
   * connection until it and its reset are answered (a cancel request hits whatever the server runs).
   * Applies with a driver that can pipeline (the native one), in session pool mode, without a
   * `setup` hook or a `reset` hook; otherwise one-shots run one at a time. The default was chosen by
   * measurement (`bench/peers.ts --depth=N`: 16 served S6's pages 10% faster than 8, and S2 alike).
   * @default {16}
   */
  pipelineDepth?: number;
  /** Receives every warning. Default: `console.warn`. */
  onWarning?: WarningHandler;
  /**
   * Called after the connection of `pool.listen()` was lost and every channel
   * is LISTENed again: notifications sent in between may have been missed, so
   * re-read whatever they announce. Without it, a gap is a `LISTEN_GAP` warning.
   */
  onListenGap?: ListenGapHandler;
  /**
   * Seconds `pool.listen()` waits for its connection and `LISTEN` (also while
   * that connection reconnects) before it rejects with `LISTEN_TIMEOUT`; `0` waits without bound.
   * @default {30}
   */
  listenTimeout?: number;
  /** Time source for every timer of the pool. Default: the system clock. */
  clock?: Clock;
  /**
   * How the server sessions behind the pool's connections are shared. `"session"`: each
   * connection is a session of its own (a server, or a pooler in session mode), reset at release.
   * `"transaction"`: a transaction pooler (PgBouncer or Supavisor in transaction mode) lends a
   * server session per transaction, so there is no session reset at release (a connection
   * released inside a transaction is rolled back, or dropped if that fails), statements are
   * unnamed unless `poolerPreparedStatements` is set, and `addListener` and the copy methods
   * reject with `UNSUPPORTED`. The DSN key `pool_mode` sets it too (this option wins).
   * @default {"session"}
   */
  poolMode?: PoolMode;
  /**
   * In transaction pool mode, whether the pooler keeps protocol-level prepared statements
   * across server sessions (PgBouncer 1.21 or later with `max_prepared_statements` above 0):
   * then statements are prepared as usual (`prepare`, `statementCacheSize`); else every
   * statement is unnamed. No effect in session mode.
   * @default {false}
   */
  poolerPreparedStatements?: boolean;
  /**
   * The pool's name in its metrics (the `db.client.connection.pool.name` attribute).
   * @default {"pgpool-<n>", n counting the pools made}
   */
  name?: string;
  /**
   * Where the pool's OpenTelemetry metrics go (any `Meter` of `@opentelemetry/api`).
   * Without it, `init()` takes the meter `@x/pgpool` from the global meter
   * provider, if the application registered one (Deno's `OTEL_DENO=true` does);
   * with neither, the pool records no metrics.
   *
   * @example Metrics to an explicit meter
   * ```ts
   * import { metrics } from "@opentelemetry/api";
   * import { createPool } from "@x/pgpool";
   * await using pool = await createPool({ name: "orders", meter: metrics.getMeter("my-app") });
   * ```
   */
  meter?: PoolMeter;
}

/** How server sessions are shared behind a pool: see {@linkcode PoolOptions.poolMode}. */
export type PoolMode = "session" | "transaction";

/** The validated pool settings, times in milliseconds. */
export interface PoolSettings {
  minSize: number;
  maxSize: number;
  maxQueries: number;
  maxInactiveMs: number;
  /** 0 = off. */
  maxLifetimeMs: number;
  maxLifetimeJitterMs: number;
  /** `fallbackLifetime` in ms; 0 = off. */
  fallbackLifetimeMs: number;
  /** Undefined = never. */
  pingAfterIdleMs: number | undefined;
  maxConcurrentConnects: number;
  releaseTimeoutMs: number;
  closeWarningMs: number;
  /** `leakDetectionThreshold` in ms; 0 = off. */
  leakDetectionMs: number;
  connect: ConnectHook | undefined;
  init: ((con: Connection) => Promise<void>) | undefined;
  setup: ((con: PoolConnection) => Promise<void>) | undefined;
  reset: ((con: Connection) => Promise<void>) | undefined;
  /** `reset: null`: no reset statements. */
  noReset: boolean;
  /** One-shots in flight per connection at most (1 = no pipelining). */
  pipelineDepth: number;
  onWarning: WarningHandler | undefined;
  onListenGap: ListenGapHandler | undefined;
  /** 0 = no bound. */
  listenTimeoutMs: number;
  clock: Clock | undefined;
  poolMode: PoolMode;
  poolerPreparedStatements: boolean;
  name: string;
  meter: PoolMeter | undefined;
}

/** One-shots in flight per connection by default (see `PoolOptions.pipelineDepth`). */
const DEFAULT_PIPELINE_DEPTH = 16;

const POOL_OPTION_NAMES: ReadonlySet<string> = new Set([
  "minSize",
  "maxSize",
  "maxQueries",
  "maxInactiveConnectionLifetime",
  "maxLifetime",
  "maxLifetimeJitter",
  "fallbackLifetime",
  "pingAfterIdle",
  "maxConcurrentConnects",
  "releaseTimeout",
  "closeWarningAfter",
  "leakDetectionThreshold",
  "connect",
  "init",
  "setup",
  "reset",
  "pipelineDepth",
  "onWarning",
  "onListenGap",
  "listenTimeout",
  "clock",
  "poolMode",
  "poolerPreparedStatements",
  "name",
  "meter",
]);

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return String(value);
  return typeof value;
}

function integer(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(`Cannot create pool as '${name}' must be a number: got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min) {
    const rule = min === 0 ? "a non-negative integer" : "a positive integer";
    throw new RangeError(`Cannot create pool as '${name}' must be ${rule}: got ${value}`);
  }
  return value;
}

/**
 * Validates a duration in seconds (`>= 0`, finite) and returns milliseconds.
 * Throws `TypeError`/`RangeError` naming `where`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { durationMs } from "./options.ts";
 * assert.equal(durationMs("Cannot acquire", "timeout", 1.5, 0), 1500);
 * assert.equal(durationMs("Cannot acquire", "timeout", undefined, 250), 250);
 * assert.throws(() => durationMs("Cannot acquire", "timeout", "1s", 0), TypeError);
 * ```
 */
export function durationMs(where: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(`${where} as '${name}' must be a number of seconds: got ${describe(value)}`);
  }
  if (Number.isNaN(value) || value < 0 || value === Infinity) {
    throw new RangeError(`${where} as '${name}' must be a finite number of seconds >= 0: got ${value}`);
  }
  return value * 1000;
}

function boolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new TypeError(`Cannot create pool as '${name}' must be a boolean: got ${describe(value)}`);
  }
  return value;
}

function poolMode(value: unknown): PoolMode {
  if (value === undefined) return "session";
  if (value !== "session" && value !== "transaction") {
    throw new TypeError(
      `Cannot create pool as 'poolMode' must be session or transaction: got ${
        typeof value === "string" ? `'${value}'` : describe(value)
      }`,
    );
  }
  return value;
}

function hook<T>(name: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new TypeError(`Cannot create pool as '${name}' must be a function: got ${describe(value)}`);
  }
  return value as T;
}

const SSL_MODES: ReadonlySet<string> = new Set(["disable", "prefer", "require", "verify-ca", "verify-full"]);
const SESSION_ATTRS: ReadonlySet<string> = new Set([
  "any",
  "read-write",
  "read-only",
  "primary",
  "standby",
  "prefer-standby",
]);
const STRING_OPTIONS = [
  "dsn",
  "host",
  "user",
  "password",
  "database",
  "sslrootcert",
  "applicationName",
] as const;

/**
 * Checks the names, types and ranges of connection options (not their
 * meaning, which the driver checks at connect). `signal` is accepted only with
 * `allowSignal` (a per-call option, not a pool setting). Throws `TypeError` /
 * `RangeError` naming `where`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkConnectOptions } from "./options.ts";
 * checkConnectOptions({ host: "db", port: 5432 }, "Cannot create pool");
 * assert.throws(() => checkConnectOptions({ signal: AbortSignal.timeout(1) }, "Cannot create pool"), TypeError);
 * ```
 */
export function checkConnectOptions(options: ConnectOptions, where: string, allowSignal = false): void {
  for (const key of Object.keys(options)) {
    if (!CONNECT_OPTION_NAMES.has(key) || (key === "signal" && !allowSignal)) {
      throw new TypeError(`${where} as '${key}' is not a known option`);
    }
  }
  for (const name of STRING_OPTIONS) {
    const value = options[name];
    if (value !== undefined && typeof value !== "string") {
      throw new TypeError(`${where} as '${name}' must be a string: got ${describe(value)}`);
    }
  }
  if (options.host === "") throw new TypeError(`${where} as 'host' must not be empty`);
  const port: unknown = options.port;
  if (port !== undefined) {
    if (typeof port !== "number") {
      throw new TypeError(`${where} as 'port' must be a number: got ${describe(port)}`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`${where} as 'port' must be an integer from 1 to 65535: got ${port}`);
    }
  }
  durationMs(where, "connectTimeout", options.connectTimeout, 0);
  if (options.sslmode !== undefined && !SSL_MODES.has(options.sslmode)) {
    throw new TypeError(
      `${where} as 'sslmode' must be disable, prefer, require, verify-ca or verify-full: got ${
        describe(options.sslmode)
      }`,
    );
  }
  if (options.targetSessionAttrs !== undefined && !SESSION_ATTRS.has(options.targetSessionAttrs)) {
    throw new TypeError(
      `${where} as 'targetSessionAttrs' must be any, read-write, read-only, primary, standby or prefer-standby`,
    );
  }
  if (
    options.loadBalanceHosts !== undefined && options.loadBalanceHosts !== "disable" &&
    options.loadBalanceHosts !== "random"
  ) {
    const value: unknown = options.loadBalanceHosts;
    throw new TypeError(
      `${where} as 'loadBalanceHosts' must be disable or random: got ${
        typeof value === "string" ? `'${value}'` : describe(value)
      }`,
    );
  }
  if (options.driver !== undefined && options.driver !== "native" && options.driver !== "postgres") {
    throw new TypeError(`${where} as 'driver' must be native or postgres: got ${describe(options.driver)}`);
  }
  if (options.prepare !== undefined && typeof options.prepare !== "boolean") {
    throw new TypeError(`${where} as 'prepare' must be a boolean: got ${describe(options.prepare)}`);
  }
  const cacheSize: unknown = options.statementCacheSize;
  if (cacheSize !== undefined) {
    if (typeof cacheSize !== "number") {
      throw new TypeError(`${where} as 'statementCacheSize' must be a number: got ${describe(cacheSize)}`);
    }
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new RangeError(
        `${where} as 'statementCacheSize' must be an integer of 0 or more: got ${cacheSize}`,
      );
    }
  }
  const params: unknown = options.params;
  if (params !== undefined) {
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      throw new TypeError(`${where} as 'params' must be an object of strings: got ${describe(params)}`);
    }
    for (const [key, value] of Object.entries(params)) {
      if (typeof value !== "string") {
        throw new TypeError(`${where} as 'params.${key}' must be a string: got ${describe(value)}`);
      }
    }
  }
  checkRowFactory(options.rowFactory, where);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(`${where} as 'signal' must be an AbortSignal`);
  }
}

/**
 * Splits and validates pool options. Connection options are returned unchanged, except in
 * transaction pool mode without `poolerPreparedStatements`, where `prepare` is `false`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePoolOptions } from "./options.ts";
 * const { settings, connectOptions } = parsePoolOptions({ maxSize: 4, host: "db" });
 * assert.equal(settings.maxSize, 4);
 * assert.deepEqual(connectOptions, { host: "db" });
 * assert.throws(() => parsePoolOptions({ minSize: 5, maxSize: 4 }), RangeError);
 * const tx = parsePoolOptions({ poolMode: "transaction", host: "pgbouncer" });
 * assert.deepEqual(tx.connectOptions, { host: "pgbouncer", prepare: false });
 * ```
 */
export function parsePoolOptions(
  options: PoolOptions,
): { settings: PoolSettings; connectOptions: ConnectOptions } {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot create pool as the options must be an object: got ${describe(options)}`);
  }
  const connectOptions: Record<string, unknown> = {};
  for (const key of Object.keys(options)) {
    if (!POOL_OPTION_NAMES.has(key)) connectOptions[key] = (options as Record<string, unknown>)[key];
  }
  const o = options;
  const maxSize = integer("maxSize", o.maxSize, 10, 1);
  const minSize = integer("minSize", o.minSize, 0, 0);
  if (minSize > maxSize) {
    throw new RangeError(
      `Cannot create pool as 'minSize' (${minSize}) is greater than 'maxSize' (${maxSize})`,
    );
  }
  const where = "Cannot create pool";
  const clock = o.clock;
  if (
    clock !== undefined &&
    (typeof clock !== "object" || clock === null || typeof clock.now !== "function" ||
      typeof clock.setTimeout !== "function" || typeof clock.clearTimeout !== "function")
  ) {
    throw new TypeError(`${where} as 'clock' must have now(), setTimeout() and clearTimeout()`);
  }
  if (clock?.random !== undefined && typeof clock.random !== "function") {
    throw new TypeError(`${where} as 'clock.random' must be a function`);
  }
  const maxLifetimeMs = durationMs(where, "maxLifetime", o.maxLifetime, 3_600_000);
  const maxLifetimeJitterMs = durationMs(where, "maxLifetimeJitter", o.maxLifetimeJitter, maxLifetimeMs / 10);
  if (maxLifetimeJitterMs > maxLifetimeMs && maxLifetimeMs > 0) {
    throw new RangeError(
      `${where} as 'maxLifetimeJitter' (${maxLifetimeJitterMs / 1000}) is greater than 'maxLifetime' (${
        maxLifetimeMs / 1000
      })`,
    );
  }
  if (o.name !== undefined && (typeof o.name !== "string" || o.name === "")) {
    throw new TypeError(`${where} as 'name' must be a non-empty string: got ${describe(o.name)}`);
  }
  if (o.meter !== undefined && !isPoolMeter(o.meter)) {
    throw new TypeError(
      `${where} as 'meter' must be an OpenTelemetry Meter (with createHistogram, createObservableUpDownCounter, ` +
        "createObservableCounter, addBatchObservableCallback and removeBatchObservableCallback)",
    );
  }
  const pingAfterIdleMs = o.pingAfterIdle === null
    ? undefined
    : durationMs(where, "pingAfterIdle", o.pingAfterIdle, 1000);
  const settings: PoolSettings = {
    minSize,
    maxSize,
    maxQueries: integer("maxQueries", o.maxQueries, 50000, 1),
    maxInactiveMs: durationMs(
      where,
      "maxInactiveConnectionLifetime",
      o.maxInactiveConnectionLifetime,
      300_000,
    ),
    maxLifetimeMs,
    maxLifetimeJitterMs,
    fallbackLifetimeMs: durationMs(where, "fallbackLifetime", o.fallbackLifetime, 30_000),
    pingAfterIdleMs,
    maxConcurrentConnects: integer("maxConcurrentConnects", o.maxConcurrentConnects, 2, 1),
    releaseTimeoutMs: durationMs(where, "releaseTimeout", o.releaseTimeout, 60_000),
    closeWarningMs: durationMs(where, "closeWarningAfter", o.closeWarningAfter, 60_000),
    leakDetectionMs: durationMs(where, "leakDetectionThreshold", o.leakDetectionThreshold, 0),
    connect: hook("connect", o.connect),
    init: hook("init", o.init),
    setup: hook("setup", o.setup),
    reset: o.reset === null ? undefined : hook("reset", o.reset),
    noReset: o.reset === null,
    pipelineDepth: integer("pipelineDepth", o.pipelineDepth, DEFAULT_PIPELINE_DEPTH, 1),
    onWarning: hook("onWarning", o.onWarning),
    onListenGap: hook("onListenGap", o.onListenGap),
    listenTimeoutMs: durationMs(where, "listenTimeout", o.listenTimeout, 30_000),
    clock,
    poolMode: poolMode(o.poolMode),
    poolerPreparedStatements: boolean("poolerPreparedStatements", o.poolerPreparedStatements, false),
    name: "",
    meter: o.meter,
  };
  checkConnectOptions(connectOptions as ConnectOptions, where);
  if (settings.poolMode === "transaction") {
    if (settings.reset !== undefined || settings.noReset) {
      throw new TypeError(
        `${where} as 'reset' cannot be used in transaction pool mode: there is no session to reset ` +
          "(the pooler lends a server session per transaction)",
      );
    }
    if (!settings.poolerPreparedStatements) {
      if (connectOptions.prepare === true) {
        throw new TypeError(
          `${where} as 'prepare: true' needs 'poolerPreparedStatements: true' in transaction pool mode ` +
            "(a named statement would be missing on the next transaction's server session)",
        );
      }
      connectOptions.prepare = false;
    }
  }
  settings.name = o.name ?? defaultPoolName(); // drawn last, so a pool that fails validation takes no number
  return { settings, connectOptions: connectOptions as ConnectOptions };
}

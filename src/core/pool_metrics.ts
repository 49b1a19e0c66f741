/**
 * OpenTelemetry metrics of a pool, after the database client semantic
 * conventions (`db.client.connection.*`), with no dependency on OpenTelemetry:
 * the pool takes a meter from its `meter` option, else from the global meter
 * provider an application registered with `@opentelemetry/api` (Deno's
 * built-in OpenTelemetry, `OTEL_DENO=true`, registers one the same way). With
 * neither, nothing is created and nothing is recorded.
 *
 * The gauges and the timeout count are read from `pool.stats()` when the
 * reader collects; only the three histograms are recorded as things happen
 * (at connect, acquire and release).
 *
 * @module
 */

import type { PoolStats } from "./pool_stats.ts";

/** Attributes of one measurement (OpenTelemetry's `Attributes`, as far as the pool uses them). */
export type MetricAttributes = Record<string, string>;

/** Options of a new instrument (OpenTelemetry's `MetricOptions`, as far as the pool uses them). */
export interface MetricOptions {
  /** What it measures. */
  description?: string;
  /** Its unit (UCUM), e.g. `s` or `{connection}`. */
  unit?: string;
  /** Hints for the SDK, e.g. histogram bucket boundaries. */
  advice?: { explicitBucketBoundaries?: number[] };
}

/** A histogram (OpenTelemetry's `Histogram`, as far as the pool uses it). */
export interface MetricHistogram {
  /** Records one value. */
  record(value: number, attributes?: MetricAttributes): void;
}

/** An asynchronous instrument, observed in a batch callback (OpenTelemetry's `Observable`). */
export type MetricObservable = object;

/** What a batch callback writes to (OpenTelemetry's `BatchObservableResult`). */
export interface MetricBatchResult {
  /** Reports the current value of one asynchronous instrument. */
  observe(observable: MetricObservable, value: number, attributes?: MetricAttributes): void;
}

/** A batch observation callback. */
export type MetricBatchCallback = (result: MetricBatchResult) => void;

/**
 * The part of an OpenTelemetry `Meter` the pool uses: any `Meter` from
 * `@opentelemetry/api` (or Deno's built-in one) fits.
 *
 * @example Give a pool its own meter
 * ```ts
 * import { metrics } from "@opentelemetry/api";
 * import { createPool, type PoolMeter } from "@x/pgpool";
 * const meter: PoolMeter = metrics.getMeter("my-app");
 * await using pool = await createPool({ name: "orders", meter });
 * ```
 */
export interface PoolMeter {
  /** Creates a histogram. */
  createHistogram(name: string, options?: MetricOptions): MetricHistogram;
  /** Creates an asynchronous up-down counter. */
  createObservableUpDownCounter(name: string, options?: MetricOptions): MetricObservable;
  /** Creates an asynchronous (monotonic) counter. */
  createObservableCounter(name: string, options?: MetricOptions): MetricObservable;
  /** Registers a callback observing several asynchronous instruments at once. */
  addBatchObservableCallback(callback: MetricBatchCallback, observables: MetricObservable[]): void;
  /** Unregisters a batch callback. */
  removeBatchObservableCallback(callback: MetricBatchCallback, observables: MetricObservable[]): void;
}

/** The key under which `@opentelemetry/api` 1.x keeps its global state. */
const OTEL_API_KEY = Symbol.for("opentelemetry.js.api.1");
/** The meter's (instrumentation scope's) name. */
const SCOPE = "@x/pgpool";
const POOL_NAME = "db.client.connection.pool.name";
const STATE = "db.client.connection.state";
/** Seconds; the bucket boundaries the semantic conventions advise for durations. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

let pools = 0;

/**
 * A name for a pool that was given none: `pgpool-1`, `pgpool-2`, … in order of creation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultPoolName } from "./pool_metrics.ts";
 * assert.match(defaultPoolName(), /^pgpool-\d+$/);
 * ```
 */
export function defaultPoolName(): string {
  return `pgpool-${++pools}`;
}

/** True for an object with every method of {@linkcode PoolMeter}. */
export function isPoolMeter(value: unknown): value is PoolMeter {
  if (typeof value !== "object" || value === null) return false;
  const m = value as Record<string, unknown>;
  return typeof m.createHistogram === "function" && typeof m.createObservableUpDownCounter === "function" &&
    typeof m.createObservableCounter === "function" && typeof m.addBatchObservableCallback === "function" &&
    typeof m.removeBatchObservableCallback === "function";
}

/**
 * The meter `@x/pgpool` from the global meter provider an application
 * registered through `@opentelemetry/api` (or Deno's `OTEL_DENO=true`), or
 * undefined when none is registered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { globalMeter } from "./pool_metrics.ts";
 * const meter = globalMeter(); // undefined unless a provider was registered
 * assert.ok(meter === undefined || typeof meter.createHistogram === "function");
 * ```
 */
export function globalMeter(): PoolMeter | undefined {
  const api = (globalThis as Record<symbol, unknown>)[OTEL_API_KEY];
  if (typeof api !== "object" || api === null) return undefined;
  const provider = (api as { metrics?: unknown }).metrics;
  // Deno's built-in OpenTelemetry (OTEL_DENO=true) registers a function object as the provider.
  if ((typeof provider !== "object" && typeof provider !== "function") || provider === null) return undefined;
  const getMeter = (provider as { getMeter?: unknown }).getMeter;
  if (typeof getMeter !== "function") return undefined;
  const meter: unknown = getMeter.call(provider, SCOPE);
  return isPoolMeter(meter) ? meter : undefined;
}

/**
 * A pool's instruments. The pool makes one at `init()` when it has a meter,
 * feeds the histograms, and disposes of it when it closes. Internal.
 */
export class PoolMetrics {
  #meter: PoolMeter;
  #observables: MetricObservable[];
  #callback: MetricBatchCallback;
  #attributes: MetricAttributes;
  #createTime: MetricHistogram;
  #waitTime: MetricHistogram;
  #useTime: MetricHistogram;

  /**
   * @param meter Where the instruments are made.
   * @param name The pool's name (`db.client.connection.pool.name`).
   * @param stats Reads the pool's snapshot when the reader collects.
   */
  constructor(meter: PoolMeter, name: string, stats: () => PoolStats) {
    this.#meter = meter;
    const attributes = this.#attributes = { [POOL_NAME]: name };
    const idle = { [POOL_NAME]: name, [STATE]: "idle" };
    const used = { [POOL_NAME]: name, [STATE]: "used" };
    const connections = (metric: string, description: string): MetricObservable =>
      meter.createObservableUpDownCounter(metric, { description, unit: "{connection}" });
    const duration = (metric: string, description: string): MetricHistogram =>
      meter.createHistogram(metric, {
        description,
        unit: "s",
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      });
    const count = connections(
      "db.client.connection.count",
      "The number of connections that are currently in the state described by the state attribute",
    );
    const idleMax = connections(
      "db.client.connection.idle.max",
      "The maximum number of idle open connections allowed",
    );
    const idleMin = connections(
      "db.client.connection.idle.min",
      "The minimum number of idle open connections allowed",
    );
    const max = connections("db.client.connection.max", "The maximum number of open connections allowed");
    const limit = connections("db.client.connection.limit", "The maximum number of open connections allowed");
    const pending = meter.createObservableUpDownCounter("db.client.connection.pending_requests", {
      description: "The number of current pending requests for an open connection",
      unit: "{request}",
    });
    const timeouts = meter.createObservableCounter("db.client.connection.timeouts", {
      description:
        "The number of connection timeouts that have occurred trying to obtain a connection from the pool",
      unit: "{timeout}",
    });
    this.#observables = [count, idleMax, idleMin, max, limit, pending, timeouts];
    this.#callback = (result) => {
      const s = stats();
      result.observe(count, s.idle, idle);
      result.observe(count, s.busy, used);
      // Nothing closes a connection for being one idle too many: up to maxSize may be idle.
      result.observe(idleMax, s.maxSize, attributes);
      result.observe(idleMin, s.minSize, attributes);
      result.observe(max, s.maxSize, attributes);
      result.observe(limit, s.maxSize, attributes);
      result.observe(pending, s.waiting, attributes);
      result.observe(timeouts, s.acquireTimeoutCount, attributes);
    };
    meter.addBatchObservableCallback(this.#callback, this.#observables);
    this.#createTime = duration(
      "db.client.connection.create_time",
      "The time it took to create a new connection",
    );
    this.#waitTime = duration(
      "db.client.connection.wait_time",
      "The time it took to obtain an open connection from the pool",
    );
    this.#useTime = duration(
      "db.client.connection.use_time",
      "The time between borrowing a connection and returning it to the pool",
    );
  }

  /** A connection was opened (and its `init` ran) in this many milliseconds. */
  created(ms: number): void {
    this.#createTime.record(ms / 1000, this.#attributes);
  }

  /** An acquire returned a connection after this many milliseconds. */
  waited(ms: number): void {
    this.#waitTime.record(ms / 1000, this.#attributes);
  }

  /** A connection was given back after being checked out this many milliseconds. */
  used(ms: number): void {
    this.#useTime.record(ms / 1000, this.#attributes);
  }

  /** The pool closed: its gauges stop being reported. */
  dispose(): void {
    this.#meter.removeBatchObservableCallback(this.#callback, this.#observables);
  }
}

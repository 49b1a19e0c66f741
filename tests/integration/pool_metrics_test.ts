/**
 * OpenTelemetry metrics against a real PostgreSQL, on the driver PGPOOL_DRIVER
 * picks, read with the OpenTelemetry SDK: the `meter` option, the global meter
 * provider, and no provider at all.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { metrics, type Observable } from "@opentelemetry/api";
import {
  DataPointType,
  MeterProvider,
  type MetricData,
  MetricReader,
  type ScopeMetrics,
} from "@opentelemetry/sdk-metrics";
import { Pool, type PoolMeter } from "../../mod.ts";
import { createTestPool, getTestServer, rejection, type TestServer } from "./pool_support.ts";

/** A reader the test collects from when it wants (no export timer). */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const POOL_NAME = "db.client.connection.pool.name";
const STATE = "db.client.connection.state";

/** The gauges and counts: name → unit. */
const OBSERVED: Record<string, string> = {
  "db.client.connection.count": "{connection}",
  "db.client.connection.idle.max": "{connection}",
  "db.client.connection.idle.min": "{connection}",
  "db.client.connection.max": "{connection}",
  "db.client.connection.limit": "{connection}",
  "db.client.connection.pending_requests": "{request}",
  "db.client.connection.timeouts": "{timeout}",
};
const HISTOGRAMS = [
  "db.client.connection.create_time",
  "db.client.connection.wait_time",
  "db.client.connection.use_time",
];

/** The metrics of one instrumentation scope, by name (after one collection). */
async function collect(reader: MetricReader, scope: string): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  const found = new Map<string, MetricData>();
  const scopes: ScopeMetrics[] = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === scope);
  for (const s of scopes) for (const m of s.metrics) found.set(m.descriptor.name, m);
  return found;
}

/** The single value of a sum instrument for a pool (and a state, for the count). */
function value(found: Map<string, MetricData>, name: string, pool: string, state?: string): number {
  const m = found.get(name);
  assert.ok(m !== undefined, `${name} is reported`);
  assert.equal(m.dataPointType, DataPointType.SUM, `${name} is a sum`);
  const points = m.dataPoints.filter((p) =>
    p.attributes[POOL_NAME] === pool && (state === undefined || p.attributes[STATE] === state)
  );
  assert.equal(points.length, 1, `one ${name} point for ${pool} ${state ?? ""}`);
  return points[0]!.value as number;
}

/** Count and sum of a histogram for a pool. */
function histogram(
  found: Map<string, MetricData>,
  name: string,
  pool: string,
): { count: number; sum: number } {
  const m = found.get(name);
  assert.ok(m !== undefined, `${name} is reported`);
  assert.equal(m.dataPointType, DataPointType.HISTOGRAM, `${name} is a histogram`);
  assert.equal(m.descriptor.unit, "s");
  const points = m.dataPoints.filter((p) => p.attributes[POOL_NAME] === pool);
  assert.equal(points.length, 1, `one ${name} point for ${pool}`);
  const h = points[0]!.value as { count: number; sum?: number };
  return { count: h.count, sum: h.sum ?? 0 };
}

/**
 * Every instrument is there (a histogram only once something was recorded), with its unit,
 * and every point carries exactly the pool's attributes.
 */
function assertInstruments(found: Map<string, MetricData>, pool: string, histograms = HISTOGRAMS): void {
  for (const [name, unit] of Object.entries(OBSERVED)) {
    const m = found.get(name);
    assert.ok(m !== undefined, `${name} is reported`);
    assert.equal(m.descriptor.unit, unit, `${name} unit`);
    for (const p of m.dataPoints) {
      const expected = name === "db.client.connection.count" ? [POOL_NAME, STATE] : [POOL_NAME];
      assert.deepEqual(Object.keys(p.attributes).sort(), expected.sort(), `${name} attributes`);
      assert.equal(p.attributes[POOL_NAME], pool);
    }
  }
  for (const name of histograms) {
    const m = found.get(name);
    assert.ok(m !== undefined, `${name} is reported`);
    for (const p of m.dataPoints) assert.deepEqual(p.attributes, { [POOL_NAME]: pool }, `${name} attributes`);
  }
  const states = found.get("db.client.connection.count")!.dataPoints.map((p) => p.attributes[STATE]).sort();
  assert.deepEqual(states, ["idle", "used"]);
}

let server: TestServer;

describe("Pool OpenTelemetry metrics on a real server", () => {
  before(async () => {
    server = await getTestServer();
  });

  after(() => {
    metrics.disable();
  });

  it("Pool with a meter reports every db.client.connection instrument with its pool name after a known sequence", async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    try {
      await using pool = await createTestPool(server.dsn, {
        name: "orders",
        meter: provider.getMeter("app"),
        minSize: 1,
        maxSize: 2,
        pingAfterIdle: null,
      });
      const a = await pool.acquire();
      const b = await pool.acquire(); // the second connection
      const waiting = pool.acquire({ timeout: 5 });
      waiting.catch(() => {}); // if an assertion below fails first, close() rejects it
      let found = await collect(reader, "app");
      assertInstruments(found, "orders", HISTOGRAMS.slice(0, 2)); // nothing given back yet: no use_time
      assert.equal(value(found, "db.client.connection.count", "orders", "used"), 2);
      assert.equal(value(found, "db.client.connection.count", "orders", "idle"), 0);
      assert.equal(value(found, "db.client.connection.pending_requests", "orders"), 1);
      assert.equal((await rejection(pool.acquire({ timeout: 0.05 }))).code, "ACQUIRE_TIMEOUT");
      await pool.release(a); // to the waiter, which waited past the 50 ms timeout
      const c = await waiting;
      assert.equal(await c.fetchVal("SELECT 41 + 1"), 42);
      await pool.release(c);
      await pool.release(b);

      found = await collect(reader, "app");
      assertInstruments(found, "orders");
      assert.equal(value(found, "db.client.connection.count", "orders", "idle"), 2);
      assert.equal(value(found, "db.client.connection.count", "orders", "used"), 0);
      assert.equal(value(found, "db.client.connection.idle.max", "orders"), 2);
      assert.equal(value(found, "db.client.connection.idle.min", "orders"), 1);
      assert.equal(value(found, "db.client.connection.max", "orders"), 2);
      assert.equal(value(found, "db.client.connection.limit", "orders"), 2);
      assert.equal(value(found, "db.client.connection.pending_requests", "orders"), 0);
      assert.equal(value(found, "db.client.connection.timeouts", "orders"), 1);
      const created = histogram(found, "db.client.connection.create_time", "orders");
      assert.equal(created.count, 2, "two connections opened");
      assert.ok(created.sum > 0 && created.sum < 10, `create time ${created.sum}`);
      const waited = histogram(found, "db.client.connection.wait_time", "orders");
      assert.equal(waited.count, 3, "three acquires returned a connection (the timed-out one did not)");
      assert.ok(waited.sum >= 0.04 && waited.sum < 10, `wait time ${waited.sum}`);
      const used = histogram(found, "db.client.connection.use_time", "orders");
      assert.equal(used.count, 3, "three checkouts given back");
      assert.ok(used.sum >= 0.04 && used.sum < 10, `use time ${used.sum}`);
    } finally {
      await provider.shutdown();
    }
  });

  it("Pool.close() removes the pool's observation callback from its meter", async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const real = provider.getMeter("app");
    const removed: unknown[] = [];
    const meter: PoolMeter = {
      createHistogram: (n, o) => real.createHistogram(n, o),
      createObservableUpDownCounter: (n, o) => real.createObservableUpDownCounter(n, o),
      createObservableCounter: (n, o) => real.createObservableCounter(n, o),
      addBatchObservableCallback: (cb, obs) => real.addBatchObservableCallback(cb, obs as Observable[]),
      removeBatchObservableCallback: (cb, obs) => {
        removed.push(cb);
        real.removeBatchObservableCallback(cb, obs as Observable[]);
      },
    };
    try {
      const pool = await createTestPool(server.dsn, { name: "closing", meter, minSize: 1 });
      assert.equal(value(await collect(reader, "app"), "db.client.connection.count", "closing", "idle"), 1);
      await pool.close();
      assert.equal(removed.length, 1);
      await pool.close(); // a no-op: nothing removed twice
      assert.equal(removed.length, 1);
    } finally {
      await provider.shutdown();
    }
  });

  it("Pool without a meter reports to the global meter provider under the scope @x/pgpool with a default name", async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    assert.equal(metrics.setGlobalMeterProvider(provider), true);
    try {
      await using pool = await createTestPool(server.dsn, { maxSize: 3 });
      assert.equal(await pool.fetchVal("SELECT 1"), 1);
      const found = await collect(reader, "@x/pgpool");
      const names = found.get("db.client.connection.max")!.dataPoints.map((p) =>
        String(p.attributes[POOL_NAME])
      );
      assert.equal(names.length, 1);
      const name = names[0]!;
      assert.match(name, /^pgpool-\d+$/);
      assertInstruments(found, name);
      assert.equal(value(found, "db.client.connection.max", name), 3);
      assert.equal(value(found, "db.client.connection.count", name, "idle"), 1);
      assert.equal(histogram(found, "db.client.connection.create_time", name).count, 1);
      assert.equal(histogram(found, "db.client.connection.wait_time", name).count, 1);
      assert.equal(histogram(found, "db.client.connection.use_time", name).count, 1);
    } finally {
      metrics.disable();
      await provider.shutdown();
    }
  });

  it("Pool without a meter and with no global provider at init() creates no instruments", async () => {
    metrics.disable();
    await using pool = await createTestPool(server.dsn, { name: "quiet", maxSize: 2 });
    // Registered after init(): the pool looked once, found nothing, and stays silent.
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    assert.equal(metrics.setGlobalMeterProvider(provider), true);
    try {
      assert.equal(await pool.fetchVal("SELECT 1"), 1);
      const { resourceMetrics } = await reader.collect();
      assert.deepEqual(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics), []);
    } finally {
      metrics.disable();
      await provider.shutdown();
    }
  });

  it("new Pool() rejects a name that is not a non-empty string and a meter that is not a Meter", () => {
    assert.throws(() => new Pool({ name: "" }), {
      name: "TypeError",
      message: /'name' must be a non-empty string/,
    });
    assert.throws(
      () => new Pool({ name: 7 as unknown as string }),
      { name: "TypeError", message: /'name' must be a non-empty string: got 7/ },
    );
    assert.throws(
      () => new Pool({ meter: {} as PoolMeter }),
      { name: "TypeError", message: /'meter' must be an OpenTelemetry Meter/ },
    );
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type {
  MetricAttributes,
  MetricBatchCallback,
  MetricHistogram,
  MetricObservable,
  PoolMeter,
} from "../../src/core/pool_metrics.ts";
import { fakePool, readyPool, settle } from "../support/core_pool.ts";

/** A meter that keeps what the pool records and lets the test run the observation callback. */
class RecordingMeter implements PoolMeter {
  readonly recorded = new Map<string, [number, MetricAttributes | undefined][]>();
  readonly units = new Map<string, string | undefined>();
  callbacks: MetricBatchCallback[] = [];

  createHistogram(name: string, options?: { unit?: string }): MetricHistogram {
    this.units.set(name, options?.unit);
    const values: [number, MetricAttributes | undefined][] = [];
    this.recorded.set(name, values);
    return { record: (value, attributes) => values.push([value, attributes]) };
  }
  createObservableUpDownCounter(name: string, options?: { unit?: string }): MetricObservable {
    this.units.set(name, options?.unit);
    return { name };
  }
  createObservableCounter(name: string, options?: { unit?: string }): MetricObservable {
    this.units.set(name, options?.unit);
    return { name };
  }
  addBatchObservableCallback(callback: MetricBatchCallback): void {
    this.callbacks.push(callback);
  }
  removeBatchObservableCallback(callback: MetricBatchCallback): void {
    this.callbacks = this.callbacks.filter((c) => c !== callback);
  }

  /** Runs the callbacks once: `name [state]` → value. */
  observe(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const cb of this.callbacks) {
      cb({
        observe: (observable, value, attributes) => {
          assert.equal(attributes?.["db.client.connection.pool.name"], "p");
          const state = attributes?.["db.client.connection.state"];
          out[(observable as { name: string }).name + (state === undefined ? "" : ` ${state}`)] = value;
        },
      });
    }
    return out;
  }

  /** The seconds recorded on a histogram (each with the pool's name as its only attribute). */
  seconds(name: string): number[] {
    const values = this.recorded.get(name) ?? [];
    for (const [, attributes] of values) {
      assert.deepEqual(attributes, { "db.client.connection.pool.name": "p" });
    }
    return values.map(([v]) => v);
  }
}

describe("Pool metrics", () => {
  it("Pool metrics record wait and use times of pipelined one-shots too", async () => {
    const meter = new RecordingMeter();
    const h = fakePool({ name: "p", meter, minSize: 1, maxSize: 1, pipelineDepth: 2 });
    h.driver.pipelining = true;
    await h.pool.init();
    h.driver.query.fallback = "slow";
    const calls = [1, 2, 3].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await h.clock.tick(100);
    await h.clock.tick(100);
    assert.deepEqual(await Promise.all(calls), [1, 2, 3]);
    assert.deepEqual(
      meter.seconds("db.client.connection.wait_time"),
      [0, 0, 0.1],
      "the third waited for a place",
    );
    assert.deepEqual(meter.seconds("db.client.connection.use_time"), [0.1, 0.1, 0.1]);
    await h.pool.close();
  });

  it("Pool metrics record create, wait and use times in seconds on the pool's clock", async () => {
    const meter = new RecordingMeter();
    const h = await readyPool({ name: "p", meter, maxSize: 1 });
    const { pool, clock, driver } = h;
    driver.slowMs = 100;
    driver.connect.push("slow");
    const first = settle(pool.acquire());
    await clock.tick(100);
    const a = await first;
    assert.ok(a.ok);
    assert.deepEqual(meter.seconds("db.client.connection.create_time"), [0.1]);
    assert.deepEqual(
      meter.seconds("db.client.connection.wait_time"),
      [0.1],
      "the acquire waited for the connect",
    );

    const queued = pool.acquire();
    const timedOut = settle(pool.acquire({ timeout: 0.05 }));
    await clock.tick(250);
    assert.equal((await timedOut).ok, false);
    await pool.release(a.value);
    const b = await queued;
    assert.deepEqual(meter.seconds("db.client.connection.use_time"), [0.25]);
    assert.deepEqual(
      meter.seconds("db.client.connection.wait_time"),
      [0.1, 0.25],
      "no value for the timeout",
    );
    await clock.tick(40);
    await pool.release(b);
    assert.deepEqual(meter.seconds("db.client.connection.use_time"), [0.25, 0.04]);
    assert.deepEqual(meter.seconds("db.client.connection.create_time"), [0.1], "one connection opened");
    await pool.close();
  });

  it("Pool metrics observe the stats() gauges and timeouts, and close() stops the observation", async () => {
    const meter = new RecordingMeter();
    const h = await readyPool({ name: "p", meter, minSize: 1, maxSize: 2 });
    const { pool, clock } = h;
    assert.equal(meter.callbacks.length, 1);
    const a = await pool.acquire();
    const b = await pool.acquire();
    const queued = pool.acquire();
    const timedOut = settle(pool.acquire({ timeout: 0.1 }));
    assert.deepEqual(meter.observe(), {
      "db.client.connection.count idle": 0,
      "db.client.connection.count used": 2,
      "db.client.connection.idle.max": 2,
      "db.client.connection.idle.min": 1,
      "db.client.connection.max": 2,
      "db.client.connection.limit": 2,
      "db.client.connection.pending_requests": 2,
      "db.client.connection.timeouts": 0,
    });
    await clock.tick(100);
    assert.equal((await timedOut).ok, false);
    await pool.release(a);
    await pool.release(await queued);
    await pool.release(b);
    const now = meter.observe();
    assert.equal(now["db.client.connection.count idle"], 2);
    assert.equal(now["db.client.connection.count used"], 0);
    assert.equal(now["db.client.connection.pending_requests"], 0);
    assert.equal(now["db.client.connection.timeouts"], 1);
    assert.deepEqual(Object.fromEntries(meter.units), {
      "db.client.connection.count": "{connection}",
      "db.client.connection.idle.max": "{connection}",
      "db.client.connection.idle.min": "{connection}",
      "db.client.connection.max": "{connection}",
      "db.client.connection.limit": "{connection}",
      "db.client.connection.pending_requests": "{request}",
      "db.client.connection.timeouts": "{timeout}",
      "db.client.connection.create_time": "s",
      "db.client.connection.wait_time": "s",
      "db.client.connection.use_time": "s",
    });
    await pool.close();
    assert.equal(meter.callbacks.length, 0);
  });

  it("Pool without a meter takes the meter @x/pgpool from the global OpenTelemetry API at init(), and none when none is registered", async () => {
    const key = Symbol.for("opentelemetry.js.api.1");
    const g = globalThis as Record<symbol, unknown>;
    const saved = g[key];
    const meter = new RecordingMeter();
    const asked: string[] = [];
    try {
      delete g[key];
      const silent = await readyPool({ name: "p", maxSize: 1 });
      g[key] = { version: "1.10.0", metrics: { getMeter: (name: string) => (asked.push(name), meter) } };
      const h = await readyPool({ name: "p", maxSize: 1 });
      assert.deepEqual(asked, ["@x/pgpool"]);
      assert.equal(meter.callbacks.length, 1, "only the pool made after registration observes");
      await h.pool.release(await h.pool.acquire());
      await silent.pool.release(await silent.pool.acquire());
      assert.equal(meter.seconds("db.client.connection.wait_time").length, 1);
      assert.equal(meter.seconds("db.client.connection.use_time").length, 1);
      await h.pool.close();
      await silent.pool.close();
      assert.equal(meter.callbacks.length, 0);
    } finally {
      if (saved === undefined) delete g[key];
      else g[key] = saved;
    }
  });

  it("Pool without a meter finds it when the global provider is a function object (as Deno's OTEL_DENO=true registers it)", async () => {
    const key = Symbol.for("opentelemetry.js.api.1");
    const g = globalThis as Record<symbol, unknown>;
    const saved = g[key];
    const meter = new RecordingMeter();
    const provider = Object.assign(function DenoMeterProvider(): void {}, {
      getMeter: (name: string) => (assert.equal(name, "@x/pgpool"), meter),
    });
    try {
      g[key] = { version: "1.999.999", metrics: provider };
      const h = await readyPool({ name: "p", maxSize: 1 });
      assert.equal(meter.callbacks.length, 1);
      await h.pool.release(await h.pool.acquire());
      assert.equal(meter.seconds("db.client.connection.use_time").length, 1);
      await h.pool.close();
    } finally {
      if (saved === undefined) delete g[key];
      else g[key] = saved;
    }
  });
});

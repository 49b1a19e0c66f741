import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BasePool as Pool } from "../../src/core/pool.ts";
import type { Connection } from "../../src/core/connection.ts";
import type { PoolOptions } from "../../src/core/options.ts";

const connect = (): Promise<Connection> => Promise.reject(new Error("not used"));
const make = (o: Record<string, unknown>) => () => new Pool({ connect, ...o } as PoolOptions);

describe("Pool options", () => {
  it("new Pool() throws RangeError for out-of-range numbers", () => {
    for (
      const bad of [
        { maxSize: 0 },
        { maxSize: -1 },
        { maxSize: 1.5 },
        { minSize: -1 },
        { minSize: 3, maxSize: 2 },
        { maxQueries: 0 },
        { maxInactiveConnectionLifetime: -1 },
        { maxInactiveConnectionLifetime: NaN },
        { releaseTimeout: Infinity },
        { maxSize: NaN },
        { maxLifetime: -1 },
        { maxLifetime: Infinity },
        { maxLifetimeJitter: -1 },
        { maxLifetime: 10, maxLifetimeJitter: 11 },
        { maxLifetimeJitter: 3601 },
        { pingAfterIdle: -1 },
        { pingAfterIdle: NaN },
        { maxConcurrentConnects: 0 },
        { maxConcurrentConnects: 1.5 },
      ]
    ) assert.throws(make(bad), RangeError, JSON.stringify(bad));
  });

  it("new Pool() throws TypeError for wrong types and unknown option names", () => {
    for (
      const bad of [
        { maxSize: "10" },
        { minSize: null },
        { init: "nope" },
        { setup: 1 },
        { reset: {} },
        { onWarning: true },
        { maxsize: 10 },
        { clock: {} },
        { maxLifetime: "1h" },
        { maxLifetimeJitter: null },
        { pingAfterIdle: "1" },
        { pingAfterIdle: false },
        { maxConcurrentConnects: "2" },
        { signal: new AbortController().signal },
      ]
    ) assert.throws(make(bad), TypeError, JSON.stringify(bad));
    assert.throws(() => new Pool(42 as unknown as string), TypeError);
  });

  it("new Pool() accepts connection option names and a DSN first", () => {
    const pool = new Pool("postgres://localhost/db", { connect, host: "h", port: 1, applicationName: "a" });
    assert.equal(pool.getMaxSize(), 10);
    assert.equal(pool.getMinSize(), 0);
  });

  it("new Pool() accepts maxLifetime 0 with any jitter, pingAfterIdle 0 and null, and maxConcurrentConnects 1", () => {
    for (
      const good of [
        { maxLifetime: 0, maxLifetimeJitter: 5 },
        { maxLifetime: 10, maxLifetimeJitter: 10 },
        { pingAfterIdle: 0 },
        { pingAfterIdle: null },
        { pingAfterIdle: 0.5 },
        { maxConcurrentConnects: 1 },
      ]
    ) assert.equal(make(good)().getMaxSize(), 10, JSON.stringify(good));
  });

  it("new Pool() without a connect function or default driver throws TypeError", () => {
    assert.throws(() => new Pool({}), TypeError);
  });

  it("Pool is not a thenable", () => {
    const pool = new Pool({ connect });
    assert.equal("then" in pool, false);
  });
});

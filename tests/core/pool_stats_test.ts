import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { PoolStats } from "../../src/core/pool_stats.ts";
import { flush } from "../support/fake_clock.ts";
import { readyPool, settle } from "../support/core_pool.ts";

/** The counters of a snapshot (the gauges left out), with the close counts flattened. */
function counters(s: PoolStats): Record<string, number> {
  const {
    size: _s,
    idle: _i,
    busy: _b,
    waiting: _w,
    connecting: _c,
    maxSize: _x,
    minSize: _n,
    closeCount,
    ...rest
  } = s;
  const out: Record<string, number> = { ...rest };
  for (const [k, v] of Object.entries(closeCount)) out[`closeCount.${k}`] = v;
  return out;
}

const ZERO = {
  acquireCount: 0,
  acquireWaitCount: 0,
  acquireWaitTime: 0,
  acquireTimeoutCount: 0,
  acquireAbortCount: 0,
  connectCount: 0,
  connectErrorCount: 0,
  pingFailCount: 0,
  leakCount: 0,
  "closeCount.maxLifetime": 0,
  "closeCount.idle": 0,
  "closeCount.maxQueries": 0,
  "closeCount.expired": 0,
  "closeCount.broken": 0,
  "closeCount.resetFailed": 0,
  "closeCount.closed": 0,
};

describe("Pool.stats()", () => {
  it("Pool.stats() matches a known sequence of acquires, waits, timeouts, aborts and closes counter by counter", async () => {
    const h = await readyPool({ minSize: 0, maxSize: 2, maxQueries: 3 });
    const { pool, clock, driver } = h;
    const expected: Record<string, number> = { ...ZERO };
    const check = (step: string): void => assert.deepEqual(counters(pool.stats()), expected, step);
    check("after init");
    const s0 = pool.stats();
    assert.deepEqual(
      [s0.size, s0.idle, s0.busy, s0.waiting, s0.connecting, s0.maxSize, s0.minSize],
      [0, 0, 0, 0, 0, 2, 0],
      "gauges: size, idle, busy, waiting, connecting, maxSize, minSize",
    );

    const a = await pool.acquire();
    const b = await pool.acquire();
    expected.acquireCount = 2;
    expected.connectCount = 2;
    check("two checkouts, two new connections");
    assert.equal(pool.stats().busy, 2);

    const timedOut = settle(pool.acquire({ timeout: 0.5 }));
    assert.equal(pool.stats().waiting, 1);
    await clock.tick(500);
    assert.equal((await timedOut).ok, false);
    expected.acquireWaitCount = 1;
    expected.acquireWaitTime = 0.5;
    expected.acquireTimeoutCount = 1;
    check("a queued acquire timed out after 0.5 s");

    const ctl = new AbortController();
    const aborted = settle(pool.acquire({ signal: ctl.signal }));
    await clock.tick(200);
    ctl.abort(new Error("given up"));
    assert.equal((await aborted).ok, false);
    expected.acquireWaitCount = 2;
    expected.acquireWaitTime = 0.7;
    expected.acquireAbortCount = 1;
    check("a queued acquire aborted after 0.2 s");

    assert.equal(pool.stats().acquireTimeoutCount, 1);
    await assert.rejects(pool.acquire({ timeout: 0 }), { code: "ACQUIRE_TIMEOUT" });
    expected.acquireTimeoutCount = 2;
    check("timeout 0 never takes one");

    const waiting = pool.acquire();
    await clock.tick(300);
    await pool.release(a);
    const c = await waiting;
    expected.acquireWaitCount = 3;
    expected.acquireWaitTime = 1;
    expected.acquireCount = 3;
    check("a direct waiter served after 0.3 s");

    driver.connections.find((d) => d.pid === b.getServerPid())!.kill();
    await pool.release(b);
    expected["closeCount.broken"] = 1;
    check("a checked-out connection died");
    assert.equal(pool.stats().size, 1);

    driver.connect.push("error");
    await assert.rejects(pool.acquire({ timeout: 5 }));
    expected.connectErrorCount = 1;
    check("a connect failed");

    driver.reset.push("error");
    await assert.rejects(pool.release(c));
    expected["closeCount.resetFailed"] = 1;
    check("a reset failed");
    assert.equal(pool.stats().size, 0);

    const d = await pool.acquire(); // connect #3
    await d.execute("SELECT 1");
    await d.execute("SELECT 2");
    await d.execute("SELECT 3");
    await pool.release(d); // its third statement reached maxQueries: closed at release
    expected.acquireCount = 4;
    expected.connectCount = 3;
    expected["closeCount.maxQueries"] = 1;
    check("maxQueries reached");

    const e = await pool.acquire(); // connect #4
    pool.expireConnections();
    await pool.release(e);
    expected.acquireCount = 5;
    expected.connectCount = 4;
    expected["closeCount.expired"] = 1;
    check("expired by expireConnections()");

    const f = await pool.acquire(); // connect #5
    const g = await pool.acquire(); // connect #6
    await pool.release(f);
    await pool.release(g);
    expected.acquireCount = 7;
    expected.connectCount = 6;
    check("two more");
    await pool.close();
    expected["closeCount.closed"] = 2;
    check("closed");
    const last = pool.stats();
    assert.equal(last.size, 0);
    assert.equal(last.connectCount - Object.values(last.closeCount).reduce((x, y) => x + y, 0), 0);
  });

  it("Pool.stats() counts connections closed for idleness under closeCount.idle", async () => {
    const h = await readyPool({ minSize: 0, maxSize: 2, maxInactiveConnectionLifetime: 10 });
    const a = await h.pool.acquire();
    await h.pool.release(a);
    await h.clock.tick(10_000);
    await flush();
    assert.equal(h.pool.stats().closeCount.idle, 1);
    assert.equal(h.pool.stats().size, 0);
  });

  it("Pool.stats() returns a new plain object each time", async () => {
    const h = await readyPool({ minSize: 1 });
    const one = h.pool.stats();
    const two = h.pool.stats();
    assert.notEqual(one, two);
    assert.notEqual(one.closeCount, two.closeCount);
    assert.deepEqual(one, two);
    assert.equal(Object.getPrototypeOf(one), Object.prototype);
  });
});

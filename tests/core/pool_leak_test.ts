import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { BasePool as Pool } from "../../src/core/pool.ts";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import { checkInvariants, readyPool, settle } from "../support/core_pool.ts";
import { collectUntil } from "../support/gc.ts";

// Named, synchronous callers: their names must show in the acquire() stack a CONNECTION_LEAK carries.
function acquiredByReportJob(pool: Pool): Promise<PoolConnection> {
  return pool.acquire();
}
function acquiredByQueuedJob(pool: Pool): Promise<PoolConnection> {
  return pool.acquire();
}

/**
 * Acquires and forgets the proxy: nothing outside this function keeps it. It
 * runs in a task of its own, so no frame of the test ever held the proxy
 * (Bun's collector scans the stack conservatively).
 */
function forgetOne(pool: Pool): Promise<number> {
  return new Promise((resolve, reject) => {
    setTimeout(() => {
      pool.acquire().then((con) => resolve(con.getServerPid()), reject);
    }, 0);
  });
}

describe("Pool leak detection", () => {
  it("Pool leakDetectionThreshold warns once with CONNECTION_LEAK and the acquire() stack when a checkout is held longer", async () => {
    const h = await readyPool({ maxSize: 2, leakDetectionThreshold: 5 });
    const con = await acquiredByReportJob(h.pool);
    await h.clock.tick(4_999);
    assert.equal(h.warnings.length, 0, "not before the threshold");
    await h.clock.tick(1);
    assert.equal(h.warnings.length, 1);
    const w = h.warnings[0]!;
    assert.equal(w.code, "CONNECTION_LEAK");
    assert.match(w.message, /more than 5s without being released/);
    assert.match(
      w.message,
      new RegExp(`backend pid ${con.getServerPid()}\\)`),
      "the warning names the backend",
    );
    assert.match(
      w.stack ?? "",
      /pool_leak_test\.ts/,
      "the stack of the acquire() call (its caller may be inlined)",
    );
    await h.clock.tick(60_000);
    assert.equal(h.warnings.length, 1, "one warning per checkout");
    assert.equal(h.pool.getIdleSize(), 0, "a warning only: the checkout stays valid");
    assert.equal(await con.fetchVal("SELECT 1"), 1);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool leakDetectionThreshold stays silent for checkouts released in time, and its alarm goes with the release", async () => {
    const h = await readyPool({ maxSize: 1, leakDetectionThreshold: 5 });
    for (let i = 0; i < 3; i++) {
      const con = await h.pool.acquire();
      await h.clock.tick(4_000);
      await h.pool.release(con);
    }
    assert.equal(h.clock.pending, 1, "only the idle-lifetime timer is left");
    await h.clock.tick(60_000);
    assert.deepEqual(h.warnings, []);
  });

  it("Pool leakDetectionThreshold carries the stack of a queued acquire() served by hand-off", async () => {
    const h = await readyPool({ maxSize: 1, leakDetectionThreshold: 5 });
    const first = await h.pool.acquire();
    const queued = acquiredByQueuedJob(h.pool), mark = new Error(); // one line: the queued call's
    await h.clock.tick(1_000);
    await h.pool.release(first);
    const con = await queued;
    await h.clock.tick(5_000);
    assert.deepEqual(h.warnings.map((w) => w.code), ["CONNECTION_LEAK"]);
    // The queued call's frame (by name, or by line where the runtime inlined the small caller),
    // not the frame of the release that handed the connection over.
    const line = /pool_leak_test\.ts:(\d+):/.exec(mark.stack ?? "")![1];
    const stack = h.warnings[0]!.stack ?? "";
    assert.ok(stack.includes("acquiredByQueuedJob") || stack.includes(`pool_leak_test.ts:${line}:`), stack);
    await h.pool.release(con);
  });

  it("Pool leakDetectionThreshold 0 (the default) arms nothing and never warns for a long checkout", async () => {
    const h = await readyPool({ maxSize: 1, maxInactiveConnectionLifetime: 0 });
    await h.pool.release(await h.pool.acquire()); // the connection is open: its own alarms (lifetime) are armed
    const before = h.clock.pending;
    const con = await h.pool.acquire();
    assert.equal(h.clock.pending, before, "no alarm per checkout");
    await h.clock.tick(3_600_000);
    assert.deepEqual(h.warnings, []);
    await h.pool.release(con);
  });

  it("Pool leakDetectionThreshold rejects a negative or non-numeric value", async () => {
    await assert.rejects(readyPool({ leakDetectionThreshold: -1 }), RangeError);
    await assert.rejects(readyPool({ leakDetectionThreshold: "5" as unknown as number }), TypeError);
  });

  it("Pool notices a PoolConnection collected without release: CONNECTION_LEAK, the connection closed, the slot back", async () => {
    const h = await readyPool({ maxSize: 1, leakDetectionThreshold: 60 });
    const pid = await forgetOne(h.pool);
    const waiting = settle(h.pool.acquire());
    assert.equal(h.pool.getWaitingCount(), 1, "the pool is exhausted by the forgotten checkout");
    const seen = await collectUntil(() => h.warnings.length > 0);
    assert.equal(seen, true, "the forgotten proxy was collected and noticed");
    assert.equal(h.warnings.length, 1);
    const w = h.warnings[0]!;
    assert.equal(w.code, "CONNECTION_LEAK");
    assert.match(w.message, /garbage-collected while checked out/);
    assert.equal(w.connection, undefined, "the proxy is gone");
    assert.match(w.stack ?? "", /pool_leak_test\.ts/, "the stack of the acquire() call");
    const got = await waiting;
    assert.equal(got.ok, true, "the waiter got the slot back");
    const con = (got as { value: PoolConnection }).value;
    assert.notEqual(con.getServerPid(), pid, "on a new connection: the forgotten one was not reused");
    assert.equal(h.driver.closes, 1, "the forgotten connection was closed (gracefully), not reset");
    assert.equal(h.driver.connections.find((c) => c.pid === pid)?.isClosed(), true);
    assert.equal(h.driver.connections.find((c) => c.pid === pid)?.resets, 0);
    await h.clock.tick(59_000); // the forgotten checkout's alarm was due 60s after its acquire
    assert.equal(h.warnings.length, 1, "the threshold alarm of the collected checkout was cancelled");
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool notices a collected PoolConnection without leakDetectionThreshold too, with no stack", async () => {
    const h = await readyPool({ maxSize: 1 });
    await forgetOne(h.pool);
    assert.equal(await collectUntil(() => h.warnings.length > 0), true);
    assert.equal(h.warnings[0]!.code, "CONNECTION_LEAK");
    assert.equal(h.warnings[0]!.stack, undefined, "no stack is captured while the threshold is off");
    assert.match(h.warnings[0]!.message, /set leakDetectionThreshold/);
    assert.equal(h.pool.getSize(), 0);
    const con = await h.pool.acquire();
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.release() unregisters the proxy: a released proxy that is collected is no leak", async () => {
    const h = await readyPool({ maxSize: 1 });
    await (async () => {
      const con = await h.pool.acquire();
      await h.pool.release(con);
    })();
    // A probe collected in the same rounds shows that collection and finalization did run.
    let probeCollected = false;
    const probe = new FinalizationRegistry(() => probeCollected = true);
    (() => probe.register({}, 0))();
    assert.equal(await collectUntil(() => probeCollected), true);
    assert.deepEqual(h.warnings, []);
    assert.equal(h.pool.getIdleSize(), 1);
    assert.equal(h.driver.terminates + h.driver.closes, 0);
  });
});

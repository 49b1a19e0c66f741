import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InterfaceError, PoolTimeoutError } from "../../src/core/errors.ts";
import { poolInternals } from "../../src/core/pool.ts";
import { flush } from "../support/fake_clock.ts";
import { checkInvariants, fakePool, readyPool, settle } from "../support/core_pool.ts";

describe("Pool.init()", () => {
  it("Pool.init() opens minSize connections, the first alone and the rest concurrently", async () => {
    const h = fakePool({ minSize: 3, maxSize: 5 });
    h.driver.connect.fallback = "slow";
    const init = h.pool.init();
    await flush();
    assert.equal(h.driver.inFlight, 1, "the first connection is opened alone");
    await h.clock.tick(100);
    assert.equal(h.driver.inFlight, 2, "then the rest together");
    await h.clock.tick(100);
    await init;
    assert.equal(h.driver.connects, 3);
    assert.equal(h.driver.maxInFlight, 2);
    assert.equal(h.pool.getSize(), 3);
    assert.equal(h.pool.getIdleSize(), 3);
  });

  it("Pool.init() rejects a concurrent init() with POOL_INITIALIZING", async () => {
    const h = fakePool({ minSize: 1 });
    h.driver.connect.fallback = "slow";
    const first = h.pool.init();
    await assert.rejects(h.pool.init(), { code: "POOL_INITIALIZING" });
    await h.clock.tick(100);
    await first;
    await h.pool.init(); // a no-op once initialized
    assert.equal(h.driver.connects, 1);
  });

  it("Pool.acquire() rejects with POOL_INITIALIZING while init() runs and POOL_NOT_INITIALIZED before", async () => {
    const h = fakePool({ minSize: 1 });
    await assert.rejects(h.pool.acquire(), { code: "POOL_NOT_INITIALIZED" });
    h.driver.connect.fallback = "slow";
    const init = h.pool.init();
    await assert.rejects(
      h.pool.acquire(),
      (e: unknown) => e instanceof InterfaceError && e.code === "POOL_INITIALIZING",
    );
    await assert.rejects(h.pool.fetch("SELECT 1"), { code: "POOL_INITIALIZING" });
    await h.clock.tick(100);
    await init;
  });

  it("Pool.init() that fails leaves a usable pool whose floor opens minSize connections in the background", async () => {
    const h = fakePool({ minSize: 2 });
    h.driver.connect.push("error");
    await assert.rejects(h.pool.init(), { name: "ScriptedError" });
    await flush();
    assert.equal(h.pool.getSize(), 2, "the kept floor opened them");
    const con = await h.pool.acquire();
    assert.equal(h.pool.getSize(), 2);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });
});

describe("Pool.acquire()", () => {
  it("Pool.acquire() reuses the most recently released idle connection (LIFO)", async () => {
    const { pool } = await readyPool({ minSize: 0, maxSize: 3 });
    const [a, b, c] = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    const pids = [a, b, c].map((x) => x.getServerPid());
    await pool.release(a);
    await pool.release(c);
    await pool.release(b);
    const next = await pool.acquire();
    assert.equal(next.getServerPid(), pids[1], "the last released comes first");
    await pool.release(next);
  });

  it("Pool.acquire() returns a new proxy object on every acquire", async () => {
    const { pool, driver } = await readyPool({ maxSize: 2 });
    const a = await pool.acquire();
    await pool.release(a);
    const b = await pool.acquire();
    const c = await pool.acquire();
    assert.notEqual(a, b);
    assert.equal(a.toString(), "PoolConnection(released)");
    assert.equal(b.getServerPid(), driver.connections[0]!.pid, "b reuses the released connection");
    assert.equal(c.getServerPid(), driver.connections[1]!.pid, "c got a new one");
    // each proxy's statements run on the connection whose pid it reports
    for (const [con, token] of [[b, "b"], [c, "c"]] as const) {
      const row = await con.fetchRow<{ n: string; pid: number }>("SELECT $1", [token]);
      assert.deepEqual(row && { n: row.n, pid: row.pid }, { n: token, pid: con.getServerPid() });
    }
    await pool.release(b);
    await pool.release(c);
  });

  it("Pool.acquire() serves waiters FIFO and never lets a late arrival barge in the same tick", async () => {
    const { pool } = await readyPool({ maxSize: 1 });
    const held = await pool.acquire();
    const order: string[] = [];
    const waiters = ["w0", "w1", "w2"].map((name) =>
      pool.acquire().then(async (con) => {
        order.push(name);
        await pool.release(con);
      })
    );
    await flush();
    const released = pool.release(held);
    const barger = pool.acquire().then(async (con) => {
      order.push("barger");
      await pool.release(con);
    });
    await Promise.all([released, ...waiters, barger]);
    assert.deepEqual(order, ["w0", "w1", "w2", "barger"]);
  });

  it("Pool.acquire() rejects with ACQUIRE_TIMEOUT when exhausted", async () => {
    const h = await readyPool({ maxSize: 1 });
    const held = await h.pool.acquire();
    const waiting = settle(h.pool.acquire({ timeout: 0.5 }));
    await h.clock.tick(499);
    assert.equal(h.pool.getWaitingCount(), 1);
    await h.clock.tick(1);
    const r = await waiting;
    assert.ok(!r.ok && r.error instanceof PoolTimeoutError);
    assert.equal((r.error as PoolTimeoutError).code, "ACQUIRE_TIMEOUT");
    assert.equal((r.error as PoolTimeoutError).name, "TimeoutError");
    assert.equal(h.pool.getWaitingCount(), 0);
    await h.pool.release(held);
    const again = await h.pool.acquire({ timeout: 1 });
    await h.pool.release(again);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() with timeout <= 0 never takes a connection", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1 });
    for (const timeout of [0, -1]) {
      await assert.rejects(h.pool.acquire({ timeout }), { code: "ACQUIRE_TIMEOUT" });
    }
    assert.equal(h.pool.getIdleSize(), 1);
    assert.equal(h.driver.connects, 1);
  });

  it("Pool.acquire() rejects with signal.reason when aborted while waiting, and the slot is not leaked", async () => {
    const h = await readyPool({ maxSize: 1 });
    const held = await h.pool.acquire();
    const ctl = new AbortController();
    const waiting = settle(h.pool.acquire({ signal: ctl.signal }));
    await flush();
    const reason = new Error("user gave up");
    ctl.abort(reason);
    const r = await waiting;
    assert.ok(!r.ok && r.error === reason);
    await h.pool.release(held);
    assert.equal(h.pool.getIdleSize(), 1);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() rejects at once with an already aborted signal", async () => {
    const h = await readyPool({ minSize: 1 });
    const reason = new Error("already");
    await assert.rejects(h.pool.acquire({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(h.pool.getIdleSize(), 1);
  });

  it("Pool.acquire() aborted while connecting frees the slot and drops a late connection", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.connect.push("slow");
    const ctl = new AbortController();
    const p = settle(h.pool.acquire({ signal: ctl.signal }));
    await flush();
    ctl.abort(new Error("stop"));
    const r = await p;
    assert.ok(!r.ok && r.error instanceof Error && r.error.message === "stop", "rejects with signal.reason");
    await h.clock.tick(100); // the connection arrives late
    assert.equal(h.driver.open, 0, "the late connection was terminated");
    const con = await h.pool.acquire();
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() timing out while connecting aborts the attempt and frees the slot", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.connect.push("never");
    const p = settle(h.pool.acquire({ timeout: 1 }));
    await h.clock.tick(1000);
    const r = await p;
    assert.ok(!r.ok && (r.error as PoolTimeoutError).code === "ACQUIRE_TIMEOUT");
    assert.equal(h.driver.connectOptions[0]?.signal?.aborted, true, "the driver saw the abort");
    assert.equal(h.driver.inFlight, 0);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() rejects the waiter whose connect failed and lets the next waiter try", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.connect.push("error");
    await assert.rejects(h.pool.acquire(), { name: "ScriptedError" });
    const con = await h.pool.acquire();
    assert.equal(h.driver.connects, 2);
    await h.pool.release(con);
  });

  it("Pool.acquire() replaces an idle connection found dead, transparently", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1 });
    const first = h.driver.connections[0]!;
    first.kill();
    assert.equal(h.pool.getSize(), 0);
    const con = await h.pool.acquire();
    assert.notEqual(con.getServerPid(), first.pid);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() rejects with TypeError for a timeout that is not a number", async () => {
    const { pool } = await readyPool();
    await assert.rejects(pool.acquire({ timeout: "1" as unknown as number }), TypeError);
    await assert.rejects(pool.acquire({ signal: {} as AbortSignal }), TypeError);
  });

  it("Pool.acquire() under 1,000 concurrent callers on 10 slots serves everyone and keeps sizes in range", async () => {
    const h = await readyPool({ maxSize: 10 });
    let maxSeen = 0;
    await Promise.all(Array.from({ length: 1000 }, async () => {
      const con = await h.pool.acquire();
      maxSeen = Math.max(maxSeen, h.pool.getSize());
      await con.execute("SELECT 1");
      await h.pool.release(con);
    }));
    assert.equal(maxSeen, 10);
    assert.equal(h.driver.connects, 10);
    assert.equal(checkInvariants(h), undefined);
  });
});

describe("Pool waiter queue", () => {
  it("Pool's waiter queue does not grow while waiters never run out (regression)", async () => {
    // 4 callers on 1 slot: there is always a waiter, so the queue never empties. It once grew by one
    // entry per wait, forever (a leak seen in the soak).
    const h = await readyPool({ maxSize: 1 });
    let longest = 0;
    const worker = async () => {
      for (let i = 0; i < 5000; i++) {
        await h.pool.release(await h.pool.acquire());
        longest = Math.max(longest, poolInternals().waiterQueueLength(h.pool));
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.ok(longest <= 2100, `the queue's array reached ${longest} entries for at most 3 waiters`);
    assert.equal(h.pool.getWaitingCount(), 0);
  });
});

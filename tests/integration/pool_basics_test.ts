/**
 * Pool basics against a real PostgreSQL: concurrency, acquire timeouts, sizes,
 * the proxy's shape, initialization and shutdown. Ported in spirit from
 * asyncpg's tests/test_pool.py (tests 1–5, 10, 12–14, 17, 21, 31, 32, 36, 37,
 * 40, 41) plus the fairness point of section 4 of the behaviour spec.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  Connection,
  createPool,
  InterfaceError,
  Pool,
  PoolConnection,
  PoolTimeoutError,
  runtimeAdapter,
} from "../../mod.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  rejection,
  type TestServer,
  waitFor,
  warningLog,
  within,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

async function selectOne(pool: Pool, timeout?: number): Promise<void> {
  const con = await pool.acquire(timeout === undefined ? undefined : { timeout });
  try {
    assert.equal(await con.fetchVal("SELECT 1"), 1);
  } finally {
    await pool.release(con);
  }
}

describe("Pool basics on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("runtimeAdapter names the running runtime's adapter", () => {
    const expected = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
    assert.equal(runtimeAdapter, expected);
  });

  it("Pool serves 1 to 100 concurrent acquire/release workers (minSize 5, maxSize 10)", async () => {
    for (const n of [1, 5, 10, 20, 100]) {
      const pool = await createPool(server.dsn, { minSize: 5, maxSize: 10 });
      try {
        assert.equal(pool.getSize(), 5, "minSize connections are open after createPool()");
        await within(10_000, Promise.all(Array.from({ length: n }, () => selectOne(pool))), `${n} workers`);
        assert.ok(pool.getSize() <= 10, "never more than maxSize connections");
        assert.equal(pool.getIdleSize(), pool.getSize(), "every connection is back");
      } finally {
        await pool.close();
      }
    }
  });

  it("Pool queues up to 100 workers on 5 connections within a 5 s acquire timeout", async () => {
    for (const n of [1, 3, 5, 10, 20, 100]) {
      await using pool = await createTestPool(server.dsn, { minSize: 5, maxSize: 5 });
      await Promise.all(Array.from({ length: n }, () => selectOne(pool, 5)));
      assert.equal(pool.getSize(), 5);
      assert.equal(pool.getWaitingCount(), 0);
    }
  });

  it("Pool.acquire() rejects with ACQUIRE_TIMEOUT when exhausted; terminate() with a checkout does not throw", async () => {
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool.acquire({ timeout: 1 });
    const started = Date.now();
    const err = await rejection(pool.acquire({ timeout: 0.03 }));
    assert.ok(err instanceof PoolTimeoutError);
    assert.equal(err.name, "TimeoutError");
    assert.equal(err.code, "ACQUIRE_TIMEOUT");
    assert.ok(Date.now() - started < 1000, "the timeout fired at its deadline");
    assert.equal(pool.getWaitingCount(), 0, "the timed-out waiter left the queue");
    const pid = con.getServerPid();
    pool.terminate();
    assert.equal(pool.isClosing(), true);
    assert.equal(con.isClosed(), true, "terminate() dropped the checked-out connection");
    await admin.waitGone(pid);
    await pool.release(con); // the late release of a terminated checkout is a no-op
  });

  it("PoolConnection.terminate() frees the slot at once; close() too; a later release is a no-op", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const first = await pool.acquire({ timeout: 0.5 });
    const pid1 = first.getServerPid();
    first.terminate();
    // Synchronously: the connection is gone and its slot is free.
    assert.equal(pool.getSize(), 0);
    assert.equal(first.isClosed(), true);
    const second = await pool.acquire({ timeout: 0.5 });
    assert.notEqual(second.getServerPid(), pid1, "a new connection was opened");
    assert.equal(await second.fetchVal("SELECT 1"), 1);
    const pid2 = second.getServerPid();
    await second.close();
    assert.equal(pool.getSize(), 0);
    assert.equal(second.isClosed(), true);
    await pool.release(second);
    await pool.release(first);
    const third = await pool.acquire({ timeout: 0.5 });
    assert.ok(![pid1, pid2].includes(third.getServerPid()));
    await pool.release(third);
    assert.equal(pool.getIdleSize(), 1);
    await admin.waitGone(pid1);
    await admin.waitGone(pid2);
  });

  it("await using releases a checkout at scope end (100 concurrent workers)", async () => {
    for (const n of [1, 3, 5, 10, 20, 100]) {
      await using pool = await createTestPool(server.dsn, { minSize: 5, maxSize: 10 });
      await Promise.all(Array.from({ length: n }, async () => {
        await using con = await pool.acquire();
        assert.equal(await con.fetchVal("SELECT 1"), 1);
      }));
      assert.equal(pool.getIdleSize(), pool.getSize());
    }
  });

  it("Pool.release() of an already released connection is a no-op", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    await pool.release(con);
    await pool.release(con);
    assert.equal(pool.getIdleSize(), 1);
    await using again = await pool.acquire({ timeout: 0.5 });
    assert.equal(again.getServerPid(), pid, "the connection was kept");
  });

  it("a PoolConnection is a PoolConnection, not an array, and mirrors every Connection method", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await using con = await pool.acquire();
    assert.ok(con instanceof PoolConnection);
    assert.ok(!Array.isArray(con));
    const names = Object.getOwnPropertyNames(Connection.prototype).filter((n) =>
      n !== "constructor" &&
      typeof (Connection.prototype as unknown as Record<string, unknown>)[n] === "function"
    );
    assert.ok(names.includes("execute") && names.includes("transaction"));
    for (const name of names) {
      const mine = (con as unknown as Record<string, unknown>)[name];
      const theirs = (Connection.prototype as unknown as Record<string, unknown>)[name] as (
        ...a: unknown[]
      ) => unknown;
      assert.equal(typeof mine, "function", `PoolConnection.${name} exists`);
      assert.equal(
        (mine as typeof theirs).length,
        theirs.length,
        `PoolConnection.${name} takes the same arguments`,
      );
    }
  });

  it("createPool() resolves to an initialized Pool that is not a thenable; init() again is a no-op", async () => {
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 2 });
    try {
      assert.ok(pool instanceof Pool);
      assert.equal(
        (pool as unknown as { then?: unknown }).then,
        undefined,
        "await on a pool does not recurse",
      );
      await pool.init();
      assert.equal(pool.getSize(), 1, "a second init() opened nothing");
      assert.equal(await pool.fetchVal("SELECT 2"), 2);
    } finally {
      await pool.close();
    }
    const lazy = new Pool(server.dsn, { minSize: 1, maxSize: 1 });
    assert.equal(lazy.getSize(), 0, "new Pool() does not connect");
    await lazy.init();
    assert.equal(lazy.getSize(), 1);
    await lazy.close();
  });

  it("every acquire returns a new proxy, and connect options persist across reconnects (maxQueries 1)", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 5,
      maxSize: 5,
      maxQueries: 1,
      applicationName: "persist test",
    });
    const proxies = new Set<PoolConnection>();
    const pids = new Set<number>();
    await Promise.all(Array.from({ length: 40 }, async () => {
      await using con = await pool.acquire({ timeout: 5 });
      proxies.add(con);
      pids.add(con.getServerPid());
      assert.equal(await con.fetchVal("SHOW application_name"), "persist test");
    }));
    assert.equal(proxies.size, 40, "40 acquires gave 40 distinct proxies");
    assert.equal(pids.size, 40, "with maxQueries 1 every checkout got a fresh backend");
  });

  it("getMinSize/getMaxSize/getSize/getIdleSize track checkouts", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 3 });
    assert.equal(pool.getMinSize(), 2);
    assert.equal(pool.getMaxSize(), 3);
    assert.equal(pool.getSize(), 2);
    assert.equal(pool.getIdleSize(), 2);
    {
      await using _a = await pool.acquire();
      assert.equal(pool.getIdleSize(), 1);
      {
        await using _b = await pool.acquire();
        assert.equal(pool.getIdleSize(), 0);
        assert.equal(pool.getSize(), 2);
        {
          await using _c = await pool.acquire();
          assert.equal(pool.getSize(), 3);
          assert.equal(pool.getIdleSize(), 0);
        }
        assert.equal(pool.getIdleSize(), 1);
      }
    }
    assert.equal(pool.getIdleSize(), 3);
  });

  it("isClosing() turns true at close() and at terminate(), and close() again is a no-op", async () => {
    {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      assert.equal(pool.isClosing(), false);
      await pool.close();
      assert.equal(pool.isClosing(), true);
      await pool.close();
      assert.equal(pool.getSize(), 0);
    } // the scope's close() is a no-op too
    {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      assert.equal(pool.isClosing(), false);
      pool.terminate();
      assert.equal(pool.isClosing(), true);
      pool.terminate();
    }
  });

  it("a second concurrent init() rejects with POOL_INITIALIZING", async () => {
    const pool = new Pool(server.dsn, { minSize: 1, maxSize: 1 });
    const first = pool.init();
    const err = await rejection(pool.init());
    assert.ok(err instanceof InterfaceError);
    assert.equal(err.code, "POOL_INITIALIZING");
    await first;
    assert.equal(pool.getSize(), 1);
    await pool.close();
  });

  it("using a pool before init() rejects with POOL_NOT_INITIALIZED, during init() with POOL_INITIALIZING", async () => {
    const pool = new Pool(server.dsn, { minSize: 1, maxSize: 1 });
    const early = await rejection(pool.fetchVal("SELECT 1"));
    assert.ok(early instanceof InterfaceError);
    assert.equal(early.code, "POOL_NOT_INITIALIZED");
    const initializing = pool.init();
    const racing = await rejection(pool.fetchVal("SELECT 1"));
    assert.ok(racing instanceof InterfaceError);
    assert.equal(racing.code, "POOL_INITIALIZING");
    await initializing;
    assert.equal(await pool.fetchVal("SELECT 1"), 1);
    await pool.close();
    const late = await rejection(pool.acquire());
    assert.ok(late instanceof InterfaceError);
    assert.equal(late.code, "POOL_CLOSED");
  });

  it("close() waits until checked-out connections are released", async () => {
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 1 });
    let released = false;
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    const worker = (async () => {
      {
        await using con = await pool.acquire();
        await con.transaction(async (tx) => {
          inside();
          await tx.execute("SELECT pg_sleep(0.1)");
        });
      }
      released = true;
    })();
    await entered;
    await within(5000, pool.close(), "close()");
    assert.equal(released, true, "close() returned only after the worker released");
    await worker;
    assert.equal(pool.getSize(), 0);
  });

  it("close({ timeout }) past a checkout terminates the pool; the worker's late release is a no-op", async () => {
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: () => {} });
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    let pid = 0;
    const worker = (async () => {
      await using con = await pool.acquire();
      pid = con.getServerPid();
      inside();
      await new Promise((resolve) => setTimeout(resolve, 400));
    })();
    await entered;
    const err = await rejection(pool.close({ timeout: 0.1 }));
    assert.ok(err instanceof PoolTimeoutError);
    assert.equal(err.name, "TimeoutError");
    assert.equal(pool.isClosing(), true);
    assert.equal(pool.getSize(), 0, "the checkout was terminated");
    await worker; // its release (at scope end) must not throw
    await admin.waitGone(pid);
  });

  it("close() rejects queued acquires with POOL_CLOSING and refuses new ones", async () => {
    // asyncpg hands a connection to a waiter queued before close() and then
    // closes it under that waiter; here queued waiters are rejected at once.
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool.acquire();
    const queued = pool.acquire({ timeout: 5 });
    await waitFor("the waiter to queue", () => pool.getWaitingCount() === 1);
    const closing = pool.close();
    const err = await rejection(queued);
    assert.ok(err instanceof InterfaceError);
    assert.equal(err.code, "POOL_CLOSING");
    const refused = await rejection(pool.acquire());
    assert.equal(refused.code, "POOL_CLOSING");
    assert.equal(await con.fetchVal("SELECT 3"), 3, "the current checkout still works while close() waits");
    await pool.release(con);
    await within(5000, closing, "close()");
    const closed = await rejection(pool.acquire());
    assert.equal(closed.code, "POOL_CLOSED");
  });

  it("terminate() rejects queued acquires with POOL_CLOSED and drops checked-out connections", async () => {
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    const queued = pool.acquire();
    await waitFor("the waiter to queue", () => pool.getWaitingCount() === 1);
    pool.terminate();
    const err = await rejection(queued);
    assert.ok(err instanceof InterfaceError);
    assert.equal(err.code, "POOL_CLOSED");
    assert.equal(con.isClosed(), true);
    assert.equal((await rejection(con.fetchVal("SELECT 1"))).code, "CONNECTION_CLOSED");
    await pool.release(con);
    await pool.close(); // a no-op on a terminated pool
    await admin.waitGone(pid);
  });

  it("aborting an acquire right after calling it, with an idle connection, is too late: the checkout is handed out", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const controller = new AbortController();
    const pending = pool.acquire({ timeout: 100, signal: controller.signal });
    controller.abort(new Error("gave up"));
    // an idle connection is handed out synchronously: the abort comes after the checkout
    await using con = await pending;
    assert.equal(pool.getIdleSize(), 0);
    assert.equal(await con.fetchVal("SELECT $1::int", [7]), 7);
  });

  it("aborting an acquire right after calling it, while it connects, rejects with the reason and leaks no connection", async () => {
    const app = `abort_connect_${process.pid}`;
    // the connect attempts, to know when the abandoned one is over (connected or given up)
    const attempts: Promise<Connection | undefined>[] = [];
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      applicationName: app,
      connect: (options) => {
        const attempt = connect(options);
        attempts.push(attempt.catch(() => undefined));
        return attempt;
      },
    });
    const controller = new AbortController();
    const pending = pool.acquire({ timeout: 100, signal: controller.signal });
    controller.abort(new Error("gave up"));
    const err = await rejection(pending);
    assert.equal(err.message, "gave up", "rejects with signal.reason");
    assert.equal(pool.getSize(), 0, "the slot was freed");
    assert.equal(attempts.length, 1, "a connect had started");
    // the connection that was on its way is closed when it arrives: no backend is left behind
    const late = await within(5000, attempts[0]!, "the abandoned connect");
    if (late !== undefined) await waitFor("the late connection to be closed", () => late.isClosed());
    await waitFor(
      "the abandoned connection to leave the server",
      async () =>
        Number(
          await admin.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [app]),
        ) === 0,
      5000,
    );
    await using con = await pool.acquire({ timeout: 5 });
    assert.equal(await con.fetchVal("SELECT $1::int", [8]), 8);
    assert.equal(pool.getSize(), 1);
  });

  it("aborting a queued acquire removes it from the queue", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const holder = await pool.acquire();
    const controller = new AbortController();
    const queued = pool.acquire({ signal: controller.signal });
    await waitFor("the waiter to queue", () => pool.getWaitingCount() === 1);
    const reason = new Error("not needed any more");
    controller.abort(reason);
    assert.equal(await rejection(queued), reason);
    assert.equal(pool.getWaitingCount(), 0);
    await pool.release(holder);
    assert.equal(pool.getIdleSize(), 1, "the released connection went idle, not to the aborted waiter");
  });

  it("acquire({ timeout: 0 }) rejects with ACQUIRE_TIMEOUT without taking a connection", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const err = await rejection(pool.acquire({ timeout: 0 }));
    assert.equal(err.code, "ACQUIRE_TIMEOUT");
    assert.equal(pool.getIdleSize(), 1);
  });

  it("idle connections are reused most recently released first", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 3, maxSize: 3 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    const [pa, pb, pc] = [a.getServerPid(), b.getServerPid(), c.getServerPid()];
    await pool.release(b);
    await pool.release(a);
    await pool.release(c);
    const order: number[] = [];
    const cons = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    for (const con of cons) order.push(con.getServerPid());
    assert.deepEqual(order, [pc, pa, pb]);
    for (const con of cons) await pool.release(con);
  });

  it("waiters are served in arrival order and a newcomer does not barge ahead of them", async () => {
    // asyncpg issue #1247: an arriving acquirer can overtake woken waiters.
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const holder = await pool.acquire();
    const served: string[] = [];
    const take = async (name: string): Promise<void> => {
      const con = await pool.acquire({ timeout: 5 });
      served.push(name);
      await con.fetchVal("SELECT 1");
      await pool.release(con);
    };
    const waiters = [take("w0"), take("w1"), take("w2")];
    await waitFor("three waiters", () => pool.getWaitingCount() === 3);
    const releasing = pool.release(holder);
    const barger = take("barger");
    await Promise.all([releasing, barger, ...waiters]);
    assert.deepEqual(served, ["w0", "w1", "w2", "barger"]);
    assert.deepEqual(log.codes(), []);
  });
});

/**
 * `maxLifetime` and `stats()` against a real PostgreSQL, on the driver
 * PGPOOL_DRIVER picks: a connection past its lifetime is replaced, never under
 * a checkout; `stats()` counts what a known sequence did.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Admin, createTestPool, getTestServer, rejection, type TestServer, waitFor } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

describe("Pool maxLifetime and stats() on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool maxLifetime replaces an idle connection past its lifetime and never cuts a checkout", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      maxLifetime: 0.5,
      maxLifetimeJitter: 0.1,
    });
    const con = await pool.acquire();
    const held = (await con.fetchVal<number>("SELECT pg_backend_pid()"))!;
    // Held past its lifetime: the checkout keeps working on the same backend.
    assert.equal(await con.fetchVal("SELECT pg_backend_pid() FROM pg_sleep(0.8)"), held);
    assert.equal(pool.stats().closeCount.maxLifetime, 0, "nothing closed under the checkout");
    await pool.release(con);
    await admin.waitGone(held);
    assert.equal(pool.stats().closeCount.maxLifetime, 1, "closed at release");
    // The floor reopened one; idle past its lifetime, it is closed and replaced in the background.
    const next = await waitFor("the floor's new connection", async () => {
      const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
      return pid !== held ? pid : undefined;
    });
    await admin.waitGone(next!, 5000);
    await waitFor(
      "a replacement",
      () => pool.getSize() === 1 && pool.stats().closeCount.maxLifetime >= 2,
      5000,
    );
    assert.notEqual(await pool.fetchVal("SELECT pg_backend_pid()"), next);
  });

  it("Pool.stats() counts a known sequence of acquires, a timeout, a wait and a killed connection", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1, pingAfterIdle: null });
    const zero = pool.stats();
    assert.deepEqual(
      [zero.size, zero.connectCount, zero.acquireCount, zero.maxSize, zero.minSize],
      [0, 0, 0, 1, 0],
    );
    const a = await pool.acquire();
    const waiting = pool.acquire({ timeout: 5 });
    assert.equal(pool.stats().waiting, 1);
    assert.equal((await rejection(pool.acquire({ timeout: 0.05 }))).code, "ACQUIRE_TIMEOUT");
    await pool.release(a);
    const b = await waiting;
    await b.execute("SELECT 1");
    const pid = (await b.fetchVal<number>("SELECT pg_backend_pid()"))!;
    await admin.kill(pid);
    await admin.waitGone(pid);
    await waitFor("the driver to notice the kill", () => b.isClosed());
    await pool.release(b);
    const c = await pool.acquire();
    assert.equal(await c.fetchVal("SELECT 41 + 1"), 42);
    await pool.release(c);
    const s = pool.stats();
    assert.equal(s.acquireCount, 3);
    assert.equal(s.acquireWaitCount, 2, "the served waiter and the timed-out one");
    assert.equal(s.acquireTimeoutCount, 1);
    assert.equal(s.acquireAbortCount, 0);
    assert.ok(s.acquireWaitTime > 0.04 && s.acquireWaitTime < 5, `wait time ${s.acquireWaitTime}`);
    assert.equal(s.connectCount, 2);
    assert.equal(s.connectErrorCount, 0);
    assert.equal(s.closeCount.broken, 1, "the killed backend");
    assert.equal(s.pingFailCount, 0);
    assert.deepEqual([s.size, s.idle, s.busy, s.waiting, s.connecting], [1, 1, 0, 0, 0]);
  });
});

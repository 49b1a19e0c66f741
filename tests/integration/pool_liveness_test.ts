/**
 * Liveness against a real PostgreSQL, on the driver PGPOOL_DRIVER picks: the
 * ping before hand-out (`pingAfterIdle`) keeps a healthy connection and
 * replaces a killed one without the caller seeing an error; under
 * `targetSessionAttrs` a connection whose server answers read-only (SQLSTATE
 * 25006) is dropped at release.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Admin, createTestPool, getTestServer, rejection, type TestServer, within } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

describe("Pool liveness on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool.acquire() pings an idle connection and keeps it when it answers", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, pingAfterIdle: 0 });
    const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    for (let i = 0; i < 3; i++) assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid);
    const stats = pool.stats();
    assert.equal(stats.pingFailCount, 0);
    assert.equal(stats.connectCount, 1);
    assert.equal(stats.closeCount.broken, 0);
  });

  it("Pool.acquire() after pg_terminate_backend of an idle connection succeeds without error", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, pingAfterIdle: 0 });
    const killed = new Set<number>();
    for (let round = 0; round < 5; round++) {
      const pid = (await pool.fetchVal<number>("SELECT pg_backend_pid()"))!;
      assert.equal(killed.has(pid), false, "never a killed connection");
      assert.equal(await admin.kill(pid), true);
      await admin.waitGone(pid);
      killed.add(pid);
      // The pool may or may not have seen the socket close yet: either way the caller sees no error.
      const con = await within(5000, pool.acquire({ timeout: 5 }), "the acquire after the kill");
      try {
        const now = (await con.fetchVal<number>("SELECT pg_backend_pid()"))!;
        assert.equal(killed.has(now), false, "a new connection");
        assert.equal(await admin.backendAlive(now), true);
      } finally {
        await pool.release(con);
      }
    }
    const stats = pool.stats();
    assert.equal(stats.closeCount.broken, 5, "each killed connection counted once");
    assert.ok(stats.pingFailCount <= 5);
    assert.equal(stats.connectCount, 6);
    assert.equal(stats.acquireCount, 10);
  });
});

describe("Pool with targetSessionAttrs on a server that answers read-only", () => {
  before(async () => {
    server = await getTestServer();
  });

  it("Pool.release() drops a connection whose write failed with SQLSTATE 25006 under targetSessionAttrs read-write", async () => {
    await using pool = await createTestPool(server.dsn, { maxSize: 1, targetSessionAttrs: "read-write" });
    const con = await pool.acquire();
    const pid = await con.fetchVal<number>("SELECT pg_backend_pid()");
    // What a failover looks like to a session: its server now refuses writes.
    await con.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
    const error = await rejection(con.execute("CREATE TABLE pool_liveness_ro (x int)"));
    assert.equal(error.code, "25006");
    await pool.release(con);
    assert.notEqual(await pool.fetchVal("SELECT pg_backend_pid()"), pid, "not reused");
    assert.equal(pool.stats().closeCount.broken, 1);
  });

  it("Pool.release() keeps a connection after 25006 without targetSessionAttrs", async () => {
    await using pool = await createTestPool(server.dsn, { maxSize: 1 });
    const con = await pool.acquire();
    const pid = await con.fetchVal<number>("SELECT pg_backend_pid()");
    await con.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
    assert.equal((await rejection(con.execute("CREATE TABLE pool_liveness_ro (x int)"))).code, "25006");
    await pool.release(con);
    assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid, "reused (the reset undid the SET)");
    assert.equal(pool.stats().closeCount.broken, 0);
  });
});

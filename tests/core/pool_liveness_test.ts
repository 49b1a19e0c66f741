import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkInvariants, readyPool, settle } from "../support/core_pool.ts";

/** Only pings: no lifetimes, no idle expiry. */
const ONLY_PINGS = { maxLifetime: 0, maxInactiveConnectionLifetime: 0 } as const;

const pings = (queries: string[]): number => queries.filter((q) => q === "SELECT 1").length;

describe("Pool pingAfterIdle", () => {
  it("Pool.acquire() pings a connection idle longer than pingAfterIdle, and only then", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1, pingAfterIdle: 1, ...ONLY_PINGS });
    const dc = h.driver.connections[0]!;
    await h.clock.tick(999);
    await h.pool.release(await h.pool.acquire());
    assert.equal(pings(dc.queries), 0, "idle 0.999 s: handed out as it is");
    await h.clock.tick(1000);
    const con = await h.pool.acquire();
    assert.equal(pings(dc.queries), 1, "idle 1 s: pinged once");
    assert.equal(con.getServerPid(), dc.pid, "alive: the same connection");
    await h.pool.release(con);
    await h.pool.release(await h.pool.acquire());
    assert.equal(pings(dc.queries), 1, "just released: not pinged again");
  });

  it("Pool.acquire() replaces a connection whose ping fails without the caller seeing the error", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1, pingAfterIdle: 1, ...ONLY_PINGS });
    const dead = h.driver.connections[0]!;
    await h.clock.tick(5000);
    h.driver.query.push("error"); // the ping
    const con = await h.pool.acquire();
    assert.notEqual(con.getServerPid(), dead.pid, "a new connection");
    assert.equal(dead.isClosed(), true, "the dead one was dropped");
    assert.equal(await con.fetchVal("SELECT $1", [3]), 3);
    const stats = h.pool.stats();
    assert.equal(stats.pingFailCount, 1);
    assert.equal(stats.closeCount.broken, 1);
    assert.equal(stats.connectCount, 2);
    assert.equal(stats.acquireCount, 1);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire({ timeout }) with a hung ping rejects ACQUIRE_TIMEOUT at its deadline; the slot comes back", async () => {
    const h = await readyPool({
      minSize: 1,
      maxSize: 1,
      pingAfterIdle: 1,
      releaseTimeout: 10,
      ...ONLY_PINGS,
    });
    const hung = h.driver.connections[0]!;
    await h.clock.tick(2000);
    h.driver.query.push("never");
    const first = settle(h.pool.acquire({ timeout: 0.5 }));
    await h.clock.tick(499);
    assert.equal(h.pool.stats().acquireTimeoutCount, 0);
    await h.clock.tick(1);
    const r = await first;
    assert.equal(r.ok, false);
    assert.equal((r as { error: { code: string } }).error.code, "ACQUIRE_TIMEOUT");
    // The ping is bounded by releaseTimeout: then the connection is dropped and the slot freed.
    const next = h.pool.acquire();
    await h.clock.tick(10_000);
    const con = await next;
    assert.notEqual(con.getServerPid(), hung.pid);
    assert.equal(hung.isClosed(), true);
    assert.equal(h.pool.stats().pingFailCount, 1);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() whose deadline fires during a ping that then succeeds leaves the connection idle", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1, pingAfterIdle: 1, ...ONLY_PINGS });
    const dc = h.driver.connections[0]!;
    h.driver.slowMs = 300;
    await h.clock.tick(2000);
    h.driver.query.push("slow");
    const r = await settle(
      (async () => {
        const p = h.pool.acquire({ timeout: 0.1 });
        await h.clock.tick(100);
        return await p;
      })(),
    );
    assert.equal(r.ok, false);
    await h.clock.tick(200);
    assert.equal(h.pool.getIdleSize(), 1, "back idle once the ping answered");
    const con = await h.pool.acquire();
    assert.equal(con.getServerPid(), dc.pid);
    assert.equal(h.pool.stats().pingFailCount, 0);
    await h.pool.release(con);
  });

  it("Pool pingAfterIdle 0 pings on every acquire of an idle connection; null never pings", async () => {
    const always = await readyPool({ minSize: 1, maxSize: 1, pingAfterIdle: 0, ...ONLY_PINGS });
    for (let i = 0; i < 3; i++) await always.pool.release(await always.pool.acquire());
    assert.equal(pings(always.driver.connections[0]!.queries), 3);
    const never = await readyPool({ minSize: 1, maxSize: 1, pingAfterIdle: null, ...ONLY_PINGS });
    await never.clock.tick(10_000_000);
    await never.pool.release(await never.pool.acquire());
    assert.equal(pings(never.driver.connections[0]!.queries), 0);
    assert.equal(never.clock.pending, 0, "no timer armed");
  });
});

describe("Pool with targetSessionAttrs and a read-only server", () => {
  it("Pool.release() drops a connection whose statement failed with SQLSTATE 25006 under targetSessionAttrs read-write", async () => {
    const h = await readyPool({
      minSize: 1,
      maxSize: 1,
      targetSessionAttrs: "read-write",
      pingAfterIdle: null,
    });
    h.driver.queryErrorCode = "25006";
    const con = await h.pool.acquire();
    const dc = h.driver.connections[0]!;
    h.driver.query.push("error");
    await assert.rejects(
      con.execute("INSERT INTO t VALUES (1)"),
      { code: "25006" },
      "the caller sees its error",
    );
    await h.pool.release(con);
    assert.equal(dc.isClosed(), true, "not reused");
    assert.equal(h.pool.stats().closeCount.broken, 1);
    const next = await h.pool.acquire();
    assert.notEqual(next.getServerPid(), dc.pid);
    await h.pool.release(next);
  });

  it("Pool.release() drops a 25006 connection from a one-shot and inside a transaction, when the DSN asks for primary", async () => {
    const h = await readyPool({
      maxSize: 1,
      dsn: "postgres://h/db?target_session_attrs=primary",
      pingAfterIdle: null,
    });
    h.driver.queryErrorCode = "25006";
    h.driver.query.push("error");
    await assert.rejects(h.pool.execute("INSERT INTO t VALUES (1)"), { code: "25006" });
    assert.equal(h.driver.connections[0]!.isClosed(), true);
    const con = await h.pool.acquire();
    h.driver.query.push("ok", "error"); // BEGIN, then the write
    await assert.rejects(con.transaction((tx) => tx.execute("INSERT INTO t VALUES (1)")), { code: "25006" });
    await h.pool.release(con);
    assert.equal(h.driver.connections[1]!.isClosed(), true);
    assert.equal(h.pool.stats().closeCount.broken, 2);
  });

  it("Pool.release() keeps a connection after 25006 when targetSessionAttrs does not ask for a writable server", async () => {
    for (const attrs of [undefined, "any", "read-only", "prefer-standby"] as const) {
      const h = await readyPool({ maxSize: 1, targetSessionAttrs: attrs, pingAfterIdle: null });
      h.driver.queryErrorCode = "25006";
      const con = await h.pool.acquire();
      h.driver.query.push("error");
      await assert.rejects(con.execute("INSERT INTO t VALUES (1)"), { code: "25006" });
      await h.pool.release(con);
      assert.equal(h.driver.connections[0]!.isClosed(), false, String(attrs));
      assert.equal(h.pool.stats().closeCount.broken, 0);
    }
  });

  it("Pool.release() keeps a read-write connection whose statement failed with another error", async () => {
    const h = await readyPool({ maxSize: 1, targetSessionAttrs: "read-write", pingAfterIdle: null });
    h.driver.queryErrorCode = "23505";
    const con = await h.pool.acquire();
    h.driver.query.push("error");
    await assert.rejects(con.execute("INSERT INTO t VALUES (1)"), { code: "23505" });
    await h.pool.release(con);
    assert.equal(h.driver.connections[0]!.isClosed(), false);
  });
});

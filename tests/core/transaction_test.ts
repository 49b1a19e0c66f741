import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InterfaceError, PoolTimeoutError } from "../../src/core/errors.ts";
import { flush } from "../support/fake_clock.ts";
import { readyPool, settle } from "../support/core_pool.ts";

describe("PoolConnection.transaction()", () => {
  it("PoolConnection.transaction() commits on success and rolls back on error", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    assert.equal(await con.transaction(() => Promise.resolve(7)), 7);
    await assert.rejects(con.transaction(() => Promise.reject(new Error("no"))), /no/);
    assert.deepEqual(h.driver.connections[0]!.queries, ["BEGIN", "COMMIT", "BEGIN", "ROLLBACK"]);
    await h.pool.release(con);
  });

  it("PoolConnection.transaction() nests with savepoints", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await con.transaction((tx) => tx.transaction(() => Promise.resolve()));
    assert.deepEqual(h.driver.connections[0]!.queries, [
      "BEGIN",
      "SAVEPOINT pgpool_sp_1",
      "RELEASE SAVEPOINT pgpool_sp_1",
      "COMMIT",
    ]);
    await h.pool.release(con);
  });

  it("PoolConnection.transaction() rejects TRANSACTION_OPEN inside a plain BEGIN", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await con.execute("BEGIN");
    await assert.rejects(
      con.transaction(() => Promise.resolve()),
      (e: unknown) => e instanceof InterfaceError && e.code === "TRANSACTION_OPEN",
    );
    await con.execute("ROLLBACK");
    await h.pool.release(con);
  });

  for (const outcome of ["resolves", "throws"] as const) {
    it(`PoolConnection.transaction() whose callback ${outcome} after release never ends the next checkout's transaction (regression)`, async () => {
      const h = await readyPool({ maxSize: 1, onWarning: () => {} });
      const a = await h.pool.acquire();
      let open!: () => void;
      const gate = new Promise<void>((r) => open = r);
      const late = new Error("late");
      const stale = settle(a.transaction(async () => {
        await gate;
        if (outcome === "throws") throw late;
      }));
      await flush();
      await h.pool.release(a);
      const b = await h.pool.acquire();
      await b.execute("BEGIN");
      const dc = h.driver.connections[0]!;
      const before = dc.queries.length;
      open();
      const r = await stale;
      assert.ok(!r.ok);
      if (outcome === "throws") assert.equal(r.error, late);
      else assert.equal((r.error as InterfaceError).code, "CONNECTION_RELEASED");
      assert.deepEqual(dc.queries.slice(before), [], "no COMMIT/ROLLBACK reached the next checkout");
      assert.equal(dc.transactionStatus, "transaction");
      // depth did not leak: b's plain BEGIN makes transaction() refuse, where a leaked depth would SAVEPOINT
      await assert.rejects(b.transaction(() => Promise.resolve()), { code: "TRANSACTION_OPEN" });
      assert.ok(!dc.queries.slice(before).some((q) => q.startsWith("SAVEPOINT")));
      await b.execute("ROLLBACK");
      await h.pool.release(b);
    });
  }
});

describe("Pool one-shot helpers", () => {
  it("Pool.fetchVal() with a timeout rejects at its deadline even when the release would hang", async () => {
    const h = await readyPool({ maxSize: 1, onWarning: () => {} });
    h.driver.query.push("never");
    h.driver.reset.push("never");
    const call = settle(h.pool.fetchVal("SELECT 1", [], { timeout: 0.3 }));
    await h.clock.tick(300);
    const r = await call;
    assert.ok(!r.ok && r.error instanceof PoolTimeoutError && r.error.code === "QUERY_TIMEOUT");
    await h.clock.tick(60_000); // the release in the background hits the pool's bound
    assert.equal(h.pool.getIdleSize() + h.pool.getSize(), 0);
    const con = await h.pool.acquire({ timeout: 1 });
    await h.pool.release(con);
  });

  it("Pool.execute() resolves when its statement succeeded although the release failed, and warns RELEASE_FAILED", async () => {
    // A committed write must not look failed to a caller who would then retry it (regression).
    const h = await readyPool({ maxSize: 1 });
    h.driver.reset.push("error");
    assert.equal(await h.pool.execute("INSERT INTO t VALUES (1)"), "INSERT");
    assert.deepEqual(h.warnings.map((w) => w.code), ["RELEASE_FAILED"]);
    assert.equal(h.pool.getSize(), 0, "the connection whose reset failed was dropped");
    assert.equal(await h.pool.fetchVal("SELECT 1", [], { timeout: 1 }), 1);
    assert.equal(h.warnings.length, 1);
  });

  it("Pool.fetchVal() without a timeout has the connection back when it rejects", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.query.push("error");
    await assert.rejects(h.pool.fetchVal("SELECT 1"), /scripted query failure/);
    assert.equal(h.pool.getIdleSize(), 1);
  });
});

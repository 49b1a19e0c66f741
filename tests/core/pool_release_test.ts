import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InterfaceError, PoolTimeoutError } from "../../src/core/errors.ts";
import { flush } from "../support/fake_clock.ts";
import { checkInvariants, readyPool, settle } from "../support/core_pool.ts";

describe("Pool.release()", () => {
  it("Pool.release() rejects FOREIGN_CONNECTION for a foreign object and leaves the connection alone", async () => {
    const h = await readyPool({ maxSize: 2 });
    const other = await readyPool({ maxSize: 1 });
    const theirs = await other.pool.acquire();
    for (const thing of [theirs, "a string", {}, null]) {
      await assert.rejects(
        h.pool.release(thing as never),
        (e: unknown) => e instanceof InterfaceError && e.code === "FOREIGN_CONNECTION",
      );
    }
    // still checked out of its own pool, unreset, and its statements reach its own connection
    assert.equal(other.pool.getIdleSize(), 0, "still checked out");
    assert.equal(other.driver.resets, 0);
    assert.equal(h.driver.resets, 0);
    assert.equal(await theirs.fetchVal("SELECT $1", [42]), 42, "the other pool's connection is untouched");
    assert.deepEqual(other.driver.connections[0]!.args.at(-1), [42]);
    assert.equal(h.driver.connections.some((dc) => dc.queries.length > 0), false, "nothing ran on this pool");
    await other.pool.release(theirs);
    assert.equal(other.driver.resets, 1);
    assert.equal(other.pool.getIdleSize(), 1);
  });

  it("Pool.release() of an already released proxy is a no-op", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await h.pool.release(con);
    await h.pool.release(con);
    assert.equal(h.driver.resets, 1);
    assert.equal(h.pool.getIdleSize(), 1);
  });

  it("Pool.release() called twice concurrently resets once and keeps the connection", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.reset.push("slow");
    const con = await h.pool.acquire();
    const pid = con.getServerPid();
    const a = h.pool.release(con);
    const b = h.pool.release(con);
    await h.clock.tick(100);
    await Promise.all([a, b]);
    assert.equal(h.driver.resets, 1);
    assert.equal(h.driver.terminates, 0);
    const again = await h.pool.acquire();
    assert.equal(again.getServerPid(), pid);
    await h.pool.release(again);
  });

  it("Pool.release() after use throws CONNECTION_RELEASED synchronously from every proxy method", async () => {
    const { pool } = await readyPool();
    const con = await pool.acquire();
    await pool.release(con);
    const calls: [string, () => unknown][] = [
      ["execute", () => con.execute("SELECT 1")],
      ["executeMany", () => con.executeMany("SELECT 1", [])],
      ["fetch", () => con.fetch("SELECT 1")],
      ["fetchRow", () => con.fetchRow("SELECT 1")],
      ["fetchVal", () => con.fetchVal("SELECT 1")],
      ["fetchMany", () => con.fetchMany("SELECT 1", [])],
      ["transaction", () => con.transaction(async () => {})],
      ["addListener", () => con.addListener("c", () => {})],
      ["removeListener", () => con.removeListener("c", () => {})],
      ["copyFromTable", () => con.copyFromTable("t", { output: () => {} })],
      ["copyFromQuery", () => con.copyFromQuery("SELECT 1", undefined, { output: () => {} })],
      ["copyToTable", () => con.copyToTable("t", { source: "" })],
      ["copyRecordsToTable", () => con.copyRecordsToTable("t", { records: [] })],
      ["getServerPid", () => con.getServerPid()],
      ["getServerVersion", () => con.getServerVersion()],
      ["reset", () => con.reset()],
      ["close", () => con.close()],
      ["terminate", () => con.terminate()],
      ["isClosed", () => con.isClosed()],
    ];
    for (const [name, call] of calls) {
      assert.throws(
        call,
        (e: unknown) => e instanceof InterfaceError && e.code === "CONNECTION_RELEASED",
        name,
      );
    }
    assert.match(String(con), /released/);
  });

  it("Pool.release() with a failed setup's stale proxy never releases the current checkout", async () => {
    let setupProxy: unknown;
    let failSetup = true;
    const pool2 = await readyPool({
      maxSize: 1,
      setup: (con) => {
        if (failSetup) {
          setupProxy = con;
          failSetup = false;
          return Promise.reject(new Error("setup failed"));
        }
        return Promise.resolve();
      },
    });
    await assert.rejects(pool2.pool.acquire(), /setup failed/);
    const current = await pool2.pool.acquire();
    const resets2 = pool2.driver.resets;
    await pool2.pool.release(setupProxy as never); // the failed setup's proxy
    assert.equal(pool2.pool.getIdleSize(), 0, "the current checkout was not released");
    assert.equal(pool2.driver.resets, resets2, "nor reset");
    assert.equal(await current.fetchVal("SELECT $1", [7]), 7, "the current checkout is still valid");
    assert.equal(current.getServerPid(), pool2.driver.connections.at(-1)!.pid);
    assert.deepEqual(pool2.driver.connections.at(-1)!.args.at(-1), [7]);
    await pool2.pool.release(current);
    assert.equal(pool2.pool.getIdleSize(), 1);
    assert.equal(pool2.driver.resets, resets2 + 1);
  });

  it("Pool.release() of a proxy released earlier never releases the next checkout of the same connection", async () => {
    const h = await readyPool({ maxSize: 1 });
    const a = await h.pool.acquire();
    await h.pool.release(a);
    const b = await h.pool.acquire();
    const dc = h.driver.connections[0]!;
    assert.equal(h.driver.resets, 1);
    await h.pool.release(a);
    assert.equal(h.pool.getIdleSize(), 0, "b is still checked out");
    assert.equal(h.driver.resets, 1, "the stale release did not reset b's session");
    assert.equal(await b.fetchVal("SELECT $1", [9]), 9);
    assert.deepEqual(dc.args.at(-1), [9], "b's statement ran on its own connection");
    const blocked = settle(h.pool.acquire({ timeout: 0.1 }));
    await h.clock.tick(100);
    const r = await blocked;
    assert.ok(!r.ok && (r.error as PoolTimeoutError).code === "ACQUIRE_TIMEOUT", "the slot is still taken");
    await h.pool.release(b);
    assert.equal(h.driver.resets, 2);
    assert.equal(h.pool.getIdleSize(), 1);
  });

  it("Pool.release() rejects RELEASE_TIMEOUT when the reset is too slow and terminates the connection", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.reset.push("never");
    const con = await h.pool.acquire();
    const r = settle(h.pool.release(con, { timeout: 0.1 }));
    await h.clock.tick(100);
    const result = await r;
    assert.ok(!result.ok && result.error instanceof PoolTimeoutError);
    assert.equal((result.error as PoolTimeoutError).code, "RELEASE_TIMEOUT");
    assert.equal(h.driver.connections[0]!.isClosed(), true);
    assert.equal(h.pool.getSize(), 0);
    const next = await h.pool.acquire({ timeout: 1 });
    await h.pool.release(next);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.release() defaults its timeout to the acquire's timeout", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire({ timeout: 0.2 });
    h.driver.reset.push("never");
    const r = settle(h.pool.release(con));
    await h.clock.tick(199);
    assert.equal(h.pool.getSize(), 1, "still resetting");
    await h.clock.tick(1);
    const result = await r;
    assert.ok(!result.ok && (result.error as PoolTimeoutError).code === "RELEASE_TIMEOUT");
    assert.equal(h.pool.getSize(), 0);
  });

  it("Pool.release() without any timeout is bounded by the releaseTimeout option", async () => {
    const h = await readyPool({ maxSize: 1, releaseTimeout: 2 });
    const con = await h.pool.acquire();
    h.driver.reset.push("never");
    const r = settle(h.pool.release(con));
    await h.clock.tick(2000);
    const result = await r;
    assert.ok(!result.ok && (result.error as PoolTimeoutError).code === "RELEASE_TIMEOUT");
  });

  it("Pool.release() keeps going when its caller stops waiting: the slot always comes back", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.reset.push("slow");
    const con = await h.pool.acquire();
    void h.pool.release(con); // the caller walks away
    const waiter = h.pool.acquire();
    await h.clock.tick(100);
    const next = await waiter;
    assert.equal(next.getServerPid(), h.driver.connections[0]!.pid);
    await h.pool.release(next);
  });

  it("Pool.release() by a waiter handed the slot straight from a bounded release settles (regression)", async () => {
    // A finished release once cleared the next release's bookkeeping on the same slot, so the
    // waiter's own release never settled.
    const h = await readyPool({ maxSize: 1, releaseTimeout: 5 });
    const held = await h.pool.acquire();
    const waiter = h.pool.acquire().then((con) => h.pool.release(con));
    await flush();
    await h.pool.release(held);
    const r = await Promise.race([waiter.then(() => "settled"), h.clock.tick(10).then(() => "stuck")]);
    assert.equal(r, "settled");
    assert.equal(h.pool.getIdleSize(), 1);
  });

  it("Pool.release() after a timed-out release of the same slot settles; the old reset finishing late touches nothing (regression)", async () => {
    // A timed-out release's reset kept running; when it finished it found the next release's
    // bookkeeping on the same slot, freed the slot under that release and left it never settling.
    const h = await readyPool({
      minSize: 0,
      maxSize: 2,
      reset: () => new Promise<void>((resolve) => h.clock.setTimeout(resolve, 1000)),
    });
    const con = await h.pool.acquire({ timeout: 0.2 });
    const oldPid = con.getServerPid();
    const first = settle(h.pool.release(con));
    await h.clock.tick(200);
    const r1 = await first;
    assert.ok(!r1.ok && (r1.error as PoolTimeoutError).code === "RELEASE_TIMEOUT");
    assert.equal(h.pool.getSize(), 0);
    const next = await h.pool.acquire({ timeout: 2 });
    const pid = next.getServerPid();
    assert.notEqual(pid, oldPid, "a new connection");
    let second: "pending" | "resolved" | "rejected" = "pending";
    h.pool.release(next, { timeout: 5 }).then(() => second = "resolved", () => second = "rejected");
    await h.clock.tick(900); // t = 1100: the first reset finished late at t = 1000
    assert.equal(second, "pending", "the old reset must not settle the new release");
    assert.equal(h.pool.getIdleSize(), 0, "nor free the slot while the new reset runs");
    assert.equal(h.pool.getSize(), 1);
    await h.clock.tick(100); // t = 1200: the second reset finishes
    assert.equal(second, "resolved");
    assert.equal(h.pool.getIdleSize(), 1);
    assert.equal(checkInvariants(h), undefined);
    const again = await h.pool.acquire({ timeout: 3 });
    assert.equal(again.getServerPid(), pid, "the connection was kept");
    const third = settle(h.pool.release(again));
    await h.clock.tick(1000);
    assert.ok((await third).ok);
    await h.pool.close();
  });

  it("Pool.acquire() whose setup finishes after terminate() rejects POOL_CLOSED instead of handing out a dead connection (regression)", async () => {
    // It once resolved with a proxy on the terminated connection; its slot stayed busy and release() threw a TypeError.
    let finishSetup!: () => void;
    const h = await readyPool({
      maxSize: 1,
      setup: () => new Promise<void>((resolve) => finishSetup = resolve),
    });
    const acquiring = settle(h.pool.acquire());
    await flush();
    h.pool.terminate();
    finishSetup();
    const result = await acquiring;
    assert.ok(!result.ok && result.error instanceof InterfaceError && result.error.code === "POOL_CLOSED");
    assert.equal(h.driver.open, 0);
    assert.equal(h.pool.getSize(), 0);
  });

  it("Pool.release() still running when the pool is terminated rejects POOL_CLOSED at once and the slot is freed", async () => {
    // It once waited for a reset that could not finish, with its deadline timer already cleared.
    const h = await readyPool({ maxSize: 1, reset: () => new Promise<void>(() => {}) });
    const con = await h.pool.acquire();
    const releasing = settle(h.pool.release(con));
    await flush();
    h.pool.terminate();
    const result = await releasing;
    assert.ok(!result.ok && result.error instanceof InterfaceError && result.error.code === "POOL_CLOSED");
    assert.equal(h.pool.getSize(), 0);
    assert.equal(h.driver.open, 0);
    assert.equal(h.clock.pending, 0, "no timer left behind");
  });

  it("Pool.release() rolls back an open transaction and warns RELEASED_IN_TRANSACTION", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await con.execute("BEGIN");
    await h.pool.release(con);
    assert.deepEqual(h.warnings.map((w) => w.code), ["RELEASED_IN_TRANSACTION"]);
    assert.equal(h.warnings[0]!.connection, con);
    assert.equal(h.driver.connections[0]!.transactionStatus, "idle");
  });

  it("Pool.release() removes listeners and warns RELEASED_WITH_LISTENERS with their count", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const heard: string[] = [];
    await con.addListener("a", (p) => heard.push(`a1:${p}`));
    await con.addListener("a", (p) => heard.push(`a2:${p}`));
    await con.addListener("b", (p) => heard.push(`b:${p}`));
    h.driver.connections[0]!.notify("a", "x");
    assert.deepEqual(heard, ["a1:x", "a2:x"]);
    await h.pool.release(con);
    assert.equal(h.warnings.length, 1);
    assert.equal(h.warnings[0]!.code, "RELEASED_WITH_LISTENERS");
    assert.match(h.warnings[0]!.message, /3 active listeners/);
    h.driver.connections[0]!.notify("a", "y");
    assert.deepEqual(heard, ["a1:x", "a2:x"], "no listener fires after release");
  });

  it("Pool.release() that fails to reset terminates the connection and surfaces the error", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.reset.push("error");
    const con = await h.pool.acquire();
    await assert.rejects(h.pool.release(con), { name: "ScriptedError" });
    assert.equal(h.pool.getSize(), 0);
    const next = await h.pool.acquire();
    assert.notEqual(next.getServerPid(), h.driver.connections[0]!.pid);
    await h.pool.release(next);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.release() closes a connection that reached maxQueries instead of reusing it", async () => {
    const h = await readyPool({ maxSize: 1, maxQueries: 3 });
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const con = await h.pool.acquire();
      pids.push(con.getServerPid());
      await con.execute("SELECT 1");
      await h.pool.release(con); // the reset counts as a query too
    }
    assert.equal(pids[0], pids[1], "reused while under the limit");
    assert.notEqual(pids[1], pids[2], "closed at release once it reached the limit");
    assert.equal(h.driver.closes, 1);
  });

  it("Pool.release() frees the slot at once when the connection was closed under the checkout", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const waiter = h.pool.acquire();
    h.driver.connections[0]!.kill();
    const next = await waiter;
    assert.notEqual(next.getServerPid(), con.getServerPid());
    await assert.rejects(con.fetchVal("SELECT 1"), { code: "CONNECTION_CLOSED" });
    assert.equal(con.isClosed(), true);
    await h.pool.release(con); // settles at once: nothing to do
    await h.pool.release(next);
    assert.equal(checkInvariants(h), undefined);
  });

  it("PoolConnection.terminate() frees the slot synchronously", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    con.terminate();
    assert.equal(h.pool.getSize(), 0);
    const next = await h.pool.acquire({ timeout: 0.01 });
    await h.pool.release(next);
  });

  it("PoolConnection disposes with await using: released at scope end", async () => {
    const h = await readyPool({ maxSize: 1 });
    {
      await using con = await h.pool.acquire();
      assert.equal(h.pool.getIdleSize(), 0);
      await con.execute("SELECT 1");
    }
    assert.equal(h.pool.getIdleSize(), 1);
    assert.equal(h.driver.resets, 1);
  });

  it("Pool.release() inside a one-shot keeps the query's error over a release error", async () => {
    const h = await readyPool({ maxSize: 1 });
    h.driver.query.push("error");
    h.driver.reset.push("error");
    await assert.rejects(h.pool.fetch("SELECT 1"), /scripted query failure/);
    await flush();
    assert.equal(checkInvariants(h), undefined);
  });
});

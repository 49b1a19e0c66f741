import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InterfaceError } from "../../src/core/errors.ts";
import { flush } from "../support/fake_clock.ts";
import { checkInvariants, fakePool, readyPool, settle } from "../support/core_pool.ts";

describe("Pool lifetimes and generations", () => {
  it("Pool maxInactiveConnectionLifetime closes a connection idle that long, down to minSize", async () => {
    const h = await readyPool({
      minSize: 1,
      maxSize: 3,
      maxInactiveConnectionLifetime: 10,
      pingAfterIdle: null,
    });
    const all = await Promise.all([h.pool.acquire(), h.pool.acquire(), h.pool.acquire()]);
    for (const con of all) await h.pool.release(con);
    await h.clock.tick(9_999);
    assert.equal(h.pool.getSize(), 3);
    await h.clock.tick(1);
    assert.equal(h.pool.getSize(), 1, "the kept floor stays open");
    assert.equal(h.driver.terminates, 2);
    assert.equal(h.driver.connects, 3, "nothing reopened");
    assert.equal(h.pool.stats().closeCount.idle, 2);
    const con = await h.pool.acquire();
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool maxInactiveConnectionLifetime counts from the last release and is cancelled while checked out", async () => {
    const h = await readyPool({ maxSize: 1, maxInactiveConnectionLifetime: 10 });
    const con = await h.pool.acquire();
    await h.clock.tick(60_000);
    assert.equal(h.pool.getSize(), 1, "a checked-out connection never expires");
    await h.pool.release(con);
    await h.clock.tick(5_000);
    const again = await h.pool.acquire();
    assert.equal(again.getServerPid(), h.driver.connections[0]!.pid, "reused within its lifetime");
    await h.clock.tick(20_000);
    await h.pool.release(again);
    await h.clock.tick(9_999);
    assert.equal(h.pool.getSize(), 1);
    await h.clock.tick(1);
    assert.equal(h.pool.getSize(), 0);
  });

  it("Pool maxInactiveConnectionLifetime 0 disables idle expiry", async () => {
    const h = await readyPool({
      minSize: 1,
      maxInactiveConnectionLifetime: 0,
      maxLifetime: 0,
      pingAfterIdle: null,
    });
    assert.equal(h.clock.pending, 0, "no timer armed");
    await h.clock.tick(10_000_000);
    assert.equal(h.pool.getSize(), 1);
  });

  it("Pool.expireConnections() replaces idle connections at their next acquire", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1 });
    const old = h.driver.connections[0]!;
    h.pool.expireConnections();
    assert.equal(h.pool.getSize(), 1, "lazily: nothing closes yet");
    const con = await h.pool.acquire();
    assert.notEqual(con.getServerPid(), old.pid);
    await flush();
    assert.equal(old.isClosed(), true);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.expireConnections() closes checked-out connections at release", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const dc = h.driver.connections[0]!;
    h.pool.expireConnections();
    assert.equal(await con.fetchVal("SELECT $1", [5]), 5, "still usable until released");
    assert.deepEqual(dc.args.at(-1), [5], "on the same connection");
    assert.equal(dc.isClosed(), false);
    assert.equal(h.driver.connects, 1, "no replacement was opened behind the checkout");
    await h.pool.release(con);
    assert.equal(dc.isClosed(), true);
    assert.equal(h.pool.getSize(), 0);
  });

  it("Pool.setConnectArgs() affects new connections only", async () => {
    const h = await readyPool({ maxSize: 1, applicationName: "one" });
    const con = await h.pool.acquire();
    h.pool.setConnectArgs("postgres://x/y", { applicationName: "two" });
    await h.pool.release(con);
    assert.equal(h.driver.connects, 1);
    h.pool.expireConnections();
    await h.pool.release(await h.pool.acquire());
    assert.equal(h.driver.connectOptions[0]!.applicationName, "one");
    assert.equal(h.driver.connectOptions[1]!.applicationName, "two");
    assert.equal(h.driver.connectOptions[1]!.dsn, "postgres://x/y");
    assert.throws(() => h.pool.setConnectArgs(undefined, { nope: 1 } as never), TypeError);
  });
});

describe("Pool.close() and Pool.terminate()", () => {
  it("Pool.close() waits for releases, rejects new acquires with POOL_CLOSING, then closes everything", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 2 });
    const con = await h.pool.acquire();
    const closing = h.pool.close();
    let closed = false;
    void closing.then(() => closed = true);
    assert.equal(h.pool.isClosing(), true);
    await assert.rejects(
      h.pool.acquire(),
      (e: unknown) => e instanceof InterfaceError && e.code === "POOL_CLOSING",
    );
    await flush();
    assert.equal(closed, false, "waits for the checkout");
    await h.pool.release(con);
    await closing;
    assert.equal(h.driver.open, 0);
    assert.equal(h.pool.getSize(), 0);
    await assert.rejects(h.pool.acquire(), { code: "POOL_CLOSED" });
    assert.equal(h.pool.isClosing(), true);
    await h.pool.close(); // again: a no-op
  });

  it("Pool.close() rejects queued waiters with POOL_CLOSING", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const waiter = settle(h.pool.acquire());
    await flush();
    const closing = h.pool.close();
    const r = await waiter;
    assert.ok(!r.ok && (r.error as InterfaceError).code === "POOL_CLOSING");
    await h.pool.release(con);
    await closing;
  });

  it("Pool.close() warns SLOW_CLOSE when it waits longer than closeWarningAfter", async () => {
    const h = await readyPool({ maxSize: 1, closeWarningAfter: 5 });
    const con = await h.pool.acquire();
    const closing = h.pool.close();
    await h.clock.tick(4_999);
    assert.equal(h.warnings.length, 0);
    await h.clock.tick(1);
    assert.deepEqual(h.warnings.map((w) => w.code), ["SLOW_CLOSE"]);
    await h.pool.release(con);
    await closing;
  });

  it("Pool.close() with a timeout terminates the pool when a checkout is never released", async () => {
    const h = await readyPool({ maxSize: 2 });
    const con = await h.pool.acquire();
    const closing = settle(h.pool.close({ timeout: 1 }));
    await h.clock.tick(1_000);
    const r = await closing;
    assert.ok(!r.ok && (r.error as { code?: string }).code === "CLOSE_TIMEOUT");
    assert.equal(h.driver.open, 0, "terminated");
    await assert.rejects(con.fetchVal("SELECT 1"), { code: "CONNECTION_CLOSED" });
    await h.pool.release(con); // a no-op now
  });

  it("Pool.close() aborted by its signal becomes terminate()", async () => {
    const h = await readyPool({ maxSize: 1 });
    await h.pool.acquire();
    const ctl = new AbortController();
    const closing = settle(h.pool.close({ signal: ctl.signal }));
    const reason = new Error("enough");
    ctl.abort(reason);
    const r = await closing;
    assert.ok(!r.ok && r.error === reason, `rejects with signal.reason, got ${!r.ok && String(r.error)}`);
    assert.equal(h.driver.open, 0);
    assert.equal(h.pool.isClosing(), true);
  });

  it("Pool.terminate() drops every connection now and rejects waiters with POOL_CLOSED", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 2 });
    const a = await h.pool.acquire();
    const b = await h.pool.acquire();
    const waiter = settle(h.pool.acquire());
    await flush();
    h.pool.terminate();
    const r = await waiter;
    assert.ok(!r.ok && (r.error as InterfaceError).code === "POOL_CLOSED");
    assert.equal(h.driver.open, 0);
    assert.equal(h.pool.getSize(), 0);
    assert.equal(a.isClosed(), true);
    await h.pool.release(a);
    await h.pool.release(b);
    assert.equal(h.pool.isClosing(), true);
    await assert.rejects(h.pool.acquire(), { code: "POOL_CLOSED" });
    h.pool.terminate(); // again: a no-op
  });

  it("Pool.close() on a pool that was never initialized just marks it closed", async () => {
    const h = fakePool();
    await h.pool.close();
    assert.equal(h.pool.isClosing(), true);
    await assert.rejects(h.pool.init(), { code: "POOL_CLOSED" });
  });

  it("Pool disposes with await using: closed at scope end", async () => {
    const h = fakePool({ minSize: 1 });
    {
      await using pool = h.pool;
      await pool.init();
      assert.equal(h.driver.open, 1);
    }
    assert.equal(h.driver.open, 0);
    assert.equal(h.pool.isClosing(), true);
  });

  it("Pool sizes report min, max, size and idle", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 3 });
    assert.deepEqual(
      [h.pool.getMinSize(), h.pool.getMaxSize(), h.pool.getSize(), h.pool.getIdleSize()],
      [1, 3, 1, 1],
    );
    const con = await h.pool.acquire();
    assert.deepEqual([h.pool.getSize(), h.pool.getIdleSize()], [1, 0]);
    await h.pool.release(con);
    assert.match(String(h.pool), /size 1\/3, idle 1/);
  });
});

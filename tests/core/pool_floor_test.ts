import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import { flush } from "../support/fake_clock.ts";
import { checkInvariants, fakePool, readyPool, settle } from "../support/core_pool.ts";

/** No lifetimes, idle expiry or pings: only the floor opens and closes connections. */
const QUIET = { maxLifetime: 0, maxInactiveConnectionLifetime: 0, pingAfterIdle: null } as const;

describe("Pool kept floor (minSize)", () => {
  it("Pool reopens minSize connections in the background after they close for any reason", async () => {
    const h = await readyPool({ minSize: 3, maxSize: 5, ...QUIET });
    assert.equal(h.driver.connects, 3);
    h.driver.connections[0]!.kill(); // idle, died
    const con = await h.pool.acquire();
    h.driver.connections.find((d) => d.pid === con.getServerPid())!.kill(); // checked out, died
    await flush();
    assert.equal(h.pool.getSize(), 3, "back to the floor");
    assert.equal(h.driver.connects, 5);
    h.pool.expireConnections();
    const a = await h.pool.acquire(); // replaces one expired connection
    await h.pool.release(a);
    await flush();
    assert.equal(h.pool.getSize(), 3);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
    assert.equal(h.pool.stats().closeCount.broken, 2);
  });

  it("Pool keeps minSize connections past maxInactiveConnectionLifetime, even ones never acquired", async () => {
    const h = await readyPool({
      minSize: 2,
      maxSize: 2,
      maxInactiveConnectionLifetime: 10,
      pingAfterIdle: null,
    });
    await h.clock.tick(100_000);
    assert.equal(h.pool.getSize(), 2);
    assert.equal(h.driver.connects, 2, "not closed and reopened");
  });

  it("Pool reopens the floor after maxLifetime closes it, one connection at a time thanks to jitter", async () => {
    const h = await readyPool({
      minSize: 4,
      maxSize: 4,
      maxLifetime: 100,
      maxLifetimeJitter: 50,
      maxInactiveConnectionLifetime: 0,
      pingAfterIdle: null,
    });
    let least = 4;
    for (let t = 0; t < 120; t++) {
      await h.clock.tick(1000);
      least = Math.min(least, h.pool.getSize());
    }
    assert.equal(h.pool.stats().closeCount.maxLifetime >= 4, true);
    assert.equal(h.pool.getSize(), 4);
    assert.ok(least >= 2, `never many down at once (least ${least})`);
  });

  it("Pool floor backs off exponentially with jitter between failed attempts, capped at 5 s", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 2, ...QUIET });
    h.clock.random = () => 0; // the shortest pauses: half of 100 ms, 200 ms, 400 ms, ... capped at 5 s
    h.driver.connect.fallback = "error";
    const attempts: number[] = [];
    let before = h.driver.connects;
    h.driver.connections[0]!.kill();
    for (let t = 0; t <= 20_000; t += 10) {
      await h.clock.tick(t === 0 ? 0 : 10);
      for (; before < h.driver.connects; before++) attempts.push(h.clock.now());
    }
    const pauses = attempts.slice(1).map((at, i) => at - attempts[i]!);
    assert.deepEqual(
      pauses.slice(0, 8),
      [50, 100, 200, 400, 800, 1600, 2500, 2500],
      `pauses ${pauses}`,
    );
    assert.equal(h.pool.stats().connectErrorCount, attempts.length);
    h.driver.connect.fallback = "ok";
    await h.clock.tick(2500);
    assert.equal(h.pool.getSize(), 1, "the floor is back once connects work");
    assert.equal(h.pool.stats().connecting, 0);
  });

  it("Pool floor pauses are jittered between 50% and 100% of the backoff", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1, ...QUIET });
    h.clock.random = () => 0.999;
    h.driver.connect.fallback = "error";
    let before = h.driver.connects;
    const attempts: number[] = [];
    h.driver.connections[0]!.kill();
    for (let t = 0; t <= 5000; t += 1) {
      await h.clock.tick(t === 0 ? 0 : 1);
      for (; before < h.driver.connects; before++) attempts.push(h.clock.now());
    }
    const pauses = attempts.slice(1).map((at, i) => at - attempts[i]!);
    assert.deepEqual(pauses.slice(0, 4), [100, 200, 400, 800], `pauses ${pauses}`);
  });

  it("Pool opens at most maxConcurrentConnects connections at once, for init", async () => {
    const h = fakePool({ minSize: 6, maxSize: 6, maxConcurrentConnects: 2, ...QUIET });
    h.driver.connect.fallback = "slow";
    let done = false;
    const init = h.pool.init().then(() => done = true);
    for (let i = 0; i < 10 && !done; i++) await h.clock.tick(100);
    await init;
    assert.equal(h.driver.maxInFlight, 2);
    assert.equal(h.pool.getSize(), 6);
  });

  it("Pool opens at most maxConcurrentConnects connections at once, acquires and floor together", async () => {
    const h = await readyPool({ minSize: 3, maxSize: 8, maxConcurrentConnects: 2, ...QUIET });
    h.driver.connect.fallback = "slow";
    for (const dc of [...h.driver.connections]) dc.kill(); // the floor wants 3 back
    const acquires = Array.from({ length: 8 }, () => h.pool.acquire({ timeout: 10 }));
    let got: PoolConnection[] = [];
    void Promise.all(acquires).then((all) => got = all);
    for (let i = 0; i < 20 && got.length === 0; i++) await h.clock.tick(100);
    assert.equal(got.length, 8, "every acquire got one");
    assert.equal(h.driver.maxInFlight, 2, "never more than 2 connecting");
    for (const con of got) await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire({ timeout }) waiting for a connect permit rejects ACQUIRE_TIMEOUT at its deadline", async () => {
    const h = await readyPool({ minSize: 0, maxSize: 3, maxConcurrentConnects: 1, ...QUIET });
    h.driver.connect.push("never"); // honours the acquire's signal only
    const first = settle(h.pool.acquire({ timeout: 1 }));
    const second = settle(h.pool.acquire({ timeout: 0.5 }));
    await h.clock.tick(500);
    const r2 = await second;
    assert.equal(!r2.ok && (r2.error as { code: string }).code, "ACQUIRE_TIMEOUT");
    assert.equal(h.driver.connects, 1, "the second never started a connect");
    assert.equal(h.pool.stats().connecting, 1);
    await h.clock.tick(500);
    const r1 = await first;
    assert.equal(!r1.ok && (r1.error as { code: string }).code, "ACQUIRE_TIMEOUT");
    await flush();
    assert.equal(h.pool.stats().connecting, 0, "the permit came back");
    const con = await h.pool.acquire({ timeout: 1 });
    await h.pool.release(con);
    assert.equal(h.pool.stats().acquireTimeoutCount, 2);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool floor attempt stuck on a dead network yields its slot to a queued acquire, which connects itself", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1, ...QUIET });
    h.driver.connect.push("never"); // the floor's attempt: settles only when aborted
    h.driver.connections[0]!.kill();
    await flush();
    assert.equal(h.pool.stats().connecting, 1, "the floor is trying");
    const con = await h.pool.acquire({ timeout: 1 });
    assert.equal(h.driver.connects, 3, "the acquire made its own attempt");
    assert.equal(h.pool.getSize(), 1);
    assert.equal(h.pool.stats().connecting, 0);
    await h.pool.release(con);
    h.driver.connections[1]!.kill(); // the acquire's connection (the floor's attempt never made one)
    await flush();
    assert.equal(h.driver.connects, 4, "no backoff: the floor did not fail, it yielded");
    assert.equal(h.pool.getSize(), 1);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.close() stops the floor: no attempt after close, no timer left", async () => {
    const h = await readyPool({ minSize: 2, maxSize: 2, ...QUIET });
    h.driver.connect.fallback = "error";
    h.driver.connections[0]!.kill();
    await h.clock.tick(10);
    const attempts = h.driver.connects;
    await h.pool.close();
    await h.clock.tick(60_000);
    assert.equal(h.driver.connects, attempts);
    assert.equal(h.clock.pending, 0);
  });
});

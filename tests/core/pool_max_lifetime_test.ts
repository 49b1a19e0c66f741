import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import { checkInvariants, readyPool } from "../support/core_pool.ts";

/** No idle expiry and no pings: only lifetimes close connections. */
const ONLY_LIFETIMES = { maxInactiveConnectionLifetime: 0, pingAfterIdle: null } as const;

describe("Pool maxLifetime", () => {
  it("Pool maxLifetime spreads the closes of connections opened together by maxLifetimeJitter", async () => {
    const h = await readyPool({ maxSize: 20, maxLifetime: 100, maxLifetimeJitter: 20, ...ONLY_LIFETIMES });
    const held: PoolConnection[] = [];
    for (let i = 0; i < 20; i++) held.push(await h.pool.acquire());
    for (const con of held) await h.pool.release(con);
    const conns = [...h.driver.connections];
    assert.equal(conns.length, 20, "all opened at t = 0");
    const closedAt = new Map<number, number>();
    for (let t = 0; t <= 101; t++) {
      for (const dc of conns) if (dc.isClosed() && !closedAt.has(dc.pid)) closedAt.set(dc.pid, t);
      await h.clock.tick(1000);
    }
    const times = [...closedAt.values()];
    assert.equal(times.length, 20, "every connection closed by its lifetime");
    assert.ok(Math.min(...times) >= 80, `none before maxLifetime - jitter: ${times}`);
    assert.ok(Math.max(...times) <= 100, `none after maxLifetime: ${times}`);
    assert.ok(new Set(times).size >= 8, `spread over many instants, not all at once: ${times}`);
    const stats = h.pool.stats();
    assert.equal(stats.closeCount.maxLifetime, 20);
    assert.equal(stats.size, 0);
    assert.equal(h.driver.closes, 20, "closed gracefully, not terminated");
  });

  it("Pool maxLifetime draws each lifetime from the clock's random(): lifetime minus random() * jitter", async () => {
    const h = await readyPool({
      minSize: 0,
      maxSize: 1,
      maxLifetime: 100,
      maxLifetimeJitter: 20,
      ...ONLY_LIFETIMES,
    });
    h.clock.random = () => 0.25; // lifetime 100 - 0.25 * 20 = 95 s
    await h.pool.release(await h.pool.acquire());
    await h.clock.tick(94_999);
    assert.equal(h.pool.getSize(), 1);
    await h.clock.tick(1);
    assert.equal(h.pool.getSize(), 0, "closed at 95 s exactly");
    assert.equal(h.pool.stats().closeCount.maxLifetime, 1);
  });

  it("Pool maxLifetimeJitter defaults to 10% of maxLifetime", async () => {
    const h = await readyPool({ maxSize: 1, maxLifetime: 100, ...ONLY_LIFETIMES });
    h.clock.random = () => 0.999_999; // the longest jitter: lifetime just above 90 s
    await h.pool.release(await h.pool.acquire());
    await h.clock.tick(90_000);
    assert.equal(h.pool.getSize(), 1);
    await h.clock.tick(1);
    assert.equal(h.pool.getSize(), 0);
  });

  it("Pool maxLifetime never cuts a checkout: a connection held past its lifetime works and closes at release", async () => {
    const h = await readyPool({ maxSize: 1, maxLifetime: 10, maxLifetimeJitter: 0, ...ONLY_LIFETIMES });
    const con = await h.pool.acquire();
    const dc = h.driver.connections[0]!;
    await h.clock.tick(60_000);
    assert.equal(dc.isClosed(), false, "not closed under the checkout");
    assert.equal(await con.fetchVal("SELECT $1", [7]), 7);
    assert.deepEqual(dc.args.at(-1), [7], "on the same connection");
    assert.equal(h.pool.stats().closeCount.maxLifetime, 0);
    await h.pool.release(con);
    assert.equal(dc.isClosed(), true, "closed at release");
    assert.equal(dc.resets, 0, "closed instead of reset");
    assert.equal(h.pool.stats().closeCount.maxLifetime, 1);
    const next = await h.pool.acquire();
    assert.notEqual(next.getServerPid(), dc.pid, "a new connection replaces it");
    await h.pool.release(next);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool maxLifetime hands a waiter a fresh connection when the released one had outlived its lifetime", async () => {
    const h = await readyPool({ maxSize: 1, maxLifetime: 10, maxLifetimeJitter: 0, ...ONLY_LIFETIMES });
    const con = await h.pool.acquire();
    const old = con.getServerPid();
    const waiter = h.pool.acquire();
    await h.clock.tick(11_000);
    await h.pool.release(con);
    const next = await waiter;
    assert.notEqual(next.getServerPid(), old);
    assert.equal(h.pool.stats().closeCount.maxLifetime, 1);
    await h.pool.release(next);
  });

  it("Pool maxLifetime 0 turns lifetimes off and arms no timer", async () => {
    const h = await readyPool({ minSize: 1, maxLifetime: 0, ...ONLY_LIFETIMES });
    assert.equal(h.clock.pending, 0);
    await h.clock.tick(100_000_000);
    assert.equal(h.pool.getSize(), 1);
    assert.equal(h.pool.stats().closeCount.maxLifetime, 0);
  });
});

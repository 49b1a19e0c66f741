/**
 * `fallbackLifetime`: a connection the driver opened on prefer-standby's
 * fallback pass (no standby answered, so it is on the primary) lives shortly,
 * so the pool goes back to the standbys once they are reachable. Fake driver
 * and fake clock.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkInvariants, readyPool } from "../support/core_pool.ts";

/** No idle expiry, no pings, no maxLifetime: only the fallback lifetime closes connections. */
const ONLY_FALLBACK = { maxInactiveConnectionLifetime: 0, pingAfterIdle: null, maxLifetime: 0 } as const;

describe("Pool fallbackLifetime", () => {
  it("Pool fallbackLifetime closes an idle fallback connection after 30 s by default (less up to 10% jitter)", async () => {
    const h = await readyPool({ maxSize: 2, ...ONLY_FALLBACK });
    h.clock.random = () => 0.5; // 30 s - 0.5 * 3 s = 28.5 s
    h.driver.fallback = true;
    const fallback = await h.pool.acquire();
    h.driver.fallback = false;
    const normal = await h.pool.acquire();
    await h.pool.release(fallback);
    await h.pool.release(normal);
    const [fb, ok] = h.driver.connections;
    await h.clock.tick(28_499);
    assert.equal(fb!.isClosed(), false);
    await h.clock.tick(1);
    assert.equal(fb!.isClosed(), true, "closed at 28.5 s while idle");
    assert.equal(h.driver.closes, 1, "closed gracefully");
    assert.equal(h.pool.stats().closeCount.maxLifetime, 1, "counted as a lifetime close");
    await h.clock.tick(3_600_000);
    assert.equal(ok!.isClosed(), false, "a connection on a standby keeps its ordinary lifetime (none here)");
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool fallbackLifetime never cuts a checkout: the fallback connection closes at release and the next acquire opens a new one", async () => {
    const h = await readyPool({ maxSize: 1, fallbackLifetime: 5, ...ONLY_FALLBACK });
    h.driver.fallback = true;
    const con = await h.pool.acquire();
    const fb = h.driver.connections[0]!;
    await h.clock.tick(60_000);
    assert.equal(fb.isClosed(), false, "not closed under the checkout");
    assert.equal(await con.fetchVal("SELECT $1", [3]), 3);
    h.driver.fallback = false; // the standbys are back
    await h.pool.release(con);
    assert.equal(fb.isClosed(), true, "closed at release");
    assert.equal(fb.resets, 0, "closed instead of reset");
    const next = await h.pool.acquire();
    assert.notEqual(
      next.getServerPid(),
      fb.pid,
      "a new connection (the driver tries the standbys first again)",
    );
    assert.equal(h.driver.connects, 2);
    await h.pool.release(next);
    await h.clock.tick(3_600_000);
    assert.equal(h.pool.getSize(), 1, "the connection on a standby stays");
  });

  it("Pool fallbackLifetime 0 keeps a fallback connection like any other; a shorter maxLifetime still applies", async () => {
    const off = await readyPool({ maxSize: 1, ...ONLY_FALLBACK, fallbackLifetime: 0 });
    off.driver.fallback = true;
    await off.pool.release(await off.pool.acquire());
    await off.clock.tick(3_600_000);
    assert.equal(off.pool.getSize(), 1);

    const h = await readyPool({
      maxSize: 1,
      ...ONLY_FALLBACK,
      maxLifetime: 2,
      maxLifetimeJitter: 0,
      fallbackLifetime: 60,
    });
    h.driver.fallback = true;
    await h.pool.release(await h.pool.acquire());
    await h.clock.tick(2_000);
    assert.equal(h.pool.getSize(), 0, "closed at maxLifetime, the shorter of the two");
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Connection } from "../../src/core/connection.ts";
import { InterfaceError } from "../../src/core/errors.ts";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import { checkInvariants, readyPool, settle } from "../support/core_pool.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";
import { FakeDriver } from "../support/fake_driver.ts";
import { BasePool as Pool } from "../../src/core/pool.ts";

describe("Pool hooks", () => {
  it("Pool hooks: minSize 2, maxSize 5 and 10 concurrent users make 5 connects, 5 inits, 10 setups, 10 resets", async () => {
    const counts = { init: 0, setup: 0, reset: 0 };
    const setupSeen: PoolConnection[] = [];
    const h = await readyPool({
      minSize: 2,
      maxSize: 5,
      init: () => {
        counts.init++;
        return Promise.resolve();
      },
      setup: (con) => {
        counts.setup++;
        setupSeen.push(con);
        return Promise.resolve();
      },
      reset: () => {
        counts.reset++;
        return Promise.resolve();
      },
    });
    const acquired: PoolConnection[] = [];
    await Promise.all(Array.from({ length: 10 }, async () => {
      const con = await h.pool.acquire();
      acquired.push(con);
      await con.execute("SELECT 1");
      await h.pool.release(con);
    }));
    assert.equal(h.driver.connects, 5);
    assert.deepEqual(counts, { init: 5, setup: 10, reset: 10 });
    assert.deepEqual(new Set(setupSeen), new Set(acquired), "setup receives the very proxy acquire returns");
  });

  it("Pool hooks: init runs once per physical connection, before any setup, with the raw Connection", async () => {
    const events: string[] = [];
    const h = await readyPool({
      maxSize: 1,
      init: (con: Connection) => {
        events.push(`init:${con.constructor.name}`);
        return Promise.resolve();
      },
      setup: () => {
        events.push("setup");
        return Promise.resolve();
      },
    });
    for (let i = 0; i < 2; i++) await h.pool.release(await h.pool.acquire());
    assert.deepEqual(events, ["init:Connection", "setup", "setup"]);
  });

  it("Pool hooks: a failing init propagates its own error, closes the connection, and the next acquire opens a new one", async () => {
    const boom = new Error("init failed");
    let fail = true;
    const h = await readyPool({
      maxSize: 1,
      init: () => fail ? (fail = false, Promise.reject(boom)) : Promise.resolve(),
    });
    await assert.rejects(h.pool.acquire(), (e) => e === boom);
    assert.equal(h.driver.connections[0]!.isClosed(), true);
    const con = await h.pool.acquire();
    assert.equal(h.driver.connects, 2);
    await h.pool.release(con);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool hooks: a failing setup propagates its own error and closes the connection", async () => {
    const boom = new Error("setup failed");
    let fail = true;
    const h = await readyPool({
      maxSize: 1,
      setup: () => fail ? (fail = false, Promise.reject(boom)) : Promise.resolve(),
    });
    await assert.rejects(h.pool.acquire(), (e) => e === boom);
    assert.equal(h.pool.getSize(), 0);
    const con = await h.pool.acquire();
    assert.equal(h.driver.connects, 2);
    await h.pool.release(con);
  });

  it("Pool.release() inside the setup hook rejects with RELEASE_IN_SETUP and the acquire still hands out a usable connection", async () => {
    // Regression: a setup hook that released its own proxy made the proxy count as released, so the
    // caller's later release was a no-op and the slot stayed busy forever.
    let inSetup: Promise<void> | undefined;
    const h = await readyPool({
      maxSize: 1,
      setup: (con) => {
        inSetup ??= h.pool.release(con);
        return Promise.resolve();
      },
    });
    const con = await h.pool.acquire();
    await assert.rejects(inSetup!, (e) => e instanceof InterfaceError && e.code === "RELEASE_IN_SETUP");
    assert.equal(await con.fetchVal("SELECT 1"), 1, "the proxy is still live after setup");
    await h.pool.release(con);
    assert.equal(h.pool.getIdleSize(), 1, "the caller's release returned the slot");
    await h.pool.release(await h.pool.acquire({ timeout: 1 }));
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool hooks: a setup hook that awaits its own release fails the acquire with RELEASE_IN_SETUP and frees the slot", async () => {
    let first = true;
    const h = await readyPool({
      maxSize: 1,
      setup: async (con) => {
        if (first) {
          first = false;
          await h.pool.release(con);
        }
      },
    });
    await assert.rejects(
      h.pool.acquire(),
      (e) => e instanceof InterfaceError && e.code === "RELEASE_IN_SETUP",
    );
    assert.equal(h.pool.getSize(), 0, "the half-made connection was dropped");
    await h.pool.release(await h.pool.acquire({ timeout: 1 }));
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool hooks: a failing reset hook terminates the connection and surfaces its error", async () => {
    const boom = new Error("reset failed");
    const h = await readyPool({ maxSize: 1, reset: () => Promise.reject(boom) });
    const con = await h.pool.acquire();
    await assert.rejects(h.pool.release(con), (e) => e === boom);
    assert.equal(h.pool.getSize(), 0);
  });

  it("Pool hooks: a custom reset replaces the reset statements but the rollback still happens", async () => {
    let sawStatus = "";
    const h = await readyPool({
      maxSize: 1,
      reset: (con) => {
        sawStatus = con.isClosed() ? "closed" : "open";
        return Promise.resolve();
      },
    });
    const con = await h.pool.acquire();
    await con.execute("BEGIN");
    await h.pool.release(con);
    const dc = h.driver.connections[0]!;
    assert.equal(dc.transactionStatus, "idle");
    assert.equal(sawStatus, "open");
    assert.equal(h.warnings[0]?.code, "RELEASED_IN_TRANSACTION");
  });

  it("Pool hooks: connect returning something that is not a Connection rejects with BAD_CONNECT_RESULT", async () => {
    const clock = new FakeClock();
    for (const bad of [42, null, {}, "x"]) {
      const pool = new Pool({ clock, connect: () => Promise.resolve(bad as unknown as Connection) });
      await pool.init();
      await assert.rejects(
        pool.acquire(),
        (e: unknown) => e instanceof InterfaceError && e.code === "BAD_CONNECT_RESULT",
      );
      assert.equal(pool.getSize(), 0);
      await pool.close();
    }
  });

  it("Pool hooks: connect receives the pool's connect options, DSN included", async () => {
    const clock = new FakeClock();
    const driver = new FakeDriver(clock);
    const pool = new Pool("postgres://u@h/db", { clock, connect: driver.hook, applicationName: "app" });
    await pool.init();
    await pool.release(await pool.acquire());
    assert.equal(driver.connectOptions[0]!.dsn, "postgres://u@h/db");
    assert.equal(driver.connectOptions[0]!.applicationName, "app");
    await pool.close();
  });

  for (const phase of ["init", "setup"] as const) {
    it(`Pool.acquire() timing out during ${phase} drops the half-made connection and returns the slot`, async () => {
      let calls = 0;
      const never = () => {
        calls++;
        return calls === 1 ? new Promise<void>(() => {}) : Promise.resolve();
      };
      const h = await readyPool({ maxSize: 1, [phase]: never });
      const p = settle(h.pool.acquire({ timeout: 1 }));
      await h.clock.tick(1000);
      const r = await p;
      assert.ok(!r.ok && (r.error as { code?: string }).code === "ACQUIRE_TIMEOUT");
      assert.equal(h.driver.connections[0]!.isClosed(), true);
      await flush();
      const con = await h.pool.acquire({ timeout: 1 });
      await h.pool.release(con);
      assert.equal(checkInvariants(h), undefined);
    });
  }
});

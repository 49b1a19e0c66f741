/**
 * The pool when things go wrong, against a real PostgreSQL: backends killed
 * by the server, cancelled queries, a network path that goes dead, and
 * connection targets that refuse or never answer. Ported in spirit from
 * asyncpg's tests/test_pool.py (tests 30, 42, 43), test_adversity.py and the
 * query-timeout part of test_connect.py's pool tests.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ConnectionError,
  createPool,
  InterfaceError,
  PoolError,
  PoolTimeoutError,
  PostgresError,
} from "../../mod.ts";
import {
  Admin,
  blackHole,
  closedPort,
  createTestPool,
  FlakyProxy,
  getTestServer,
  rejection,
  type TestServer,
  waitFor,
  warningLog,
  within,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** The server's DSN with the port replaced (the host is the loopback address). */
function dsnOnPort(port: number): string {
  const url = new URL(server.dsnFor({ host: "127.0.0.1" }));
  url.port = String(port);
  return url.toString();
}

async function waitForQuery(pid: number, text: string): Promise<void> {
  await waitFor(`backend ${pid} to run ${text}`, async () =>
    (await admin.value<string | null>(
      "SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
      [pid],
    )) === text);
}

describe("Pool under adversity (real server)", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  describe("backends terminated by the server", () => {
    it("an idle connection killed by pg_terminate_backend is replaced at the next acquire", async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      const first = await pool.acquire({ timeout: 0.5 });
      const pid = first.getServerPid();
      await pool.release(first);
      assert.equal(await admin.kill(pid), true);
      // (The kept minSize floor may reopen a connection at once: the pool's count says it noticed.)
      await waitFor("the pool to notice", () => pool.stats().closeCount.broken === 1);
      {
        await using con = await pool.acquire({ timeout: 0.5 });
        assert.notEqual(con.getServerPid(), pid);
        assert.equal(await con.fetchVal("SELECT 1"), 1);
        await con.close(); // closing inside the scope makes the scope's release a no-op
      }
      assert.equal(pool.stats().busy, 0, "the closed checkout's slot is free");
      assert.equal(await pool.fetchVal("SELECT 2"), 2);
    });

    it("a checked-out connection killed by the server frees its slot at once; the late release is a no-op", async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      const con = await pool.acquire();
      const pid = con.getServerPid();
      assert.equal(await admin.kill(pid), true);
      await waitFor("the connection to close", () => con.isClosed());
      const next = await pool.acquire({ timeout: 0.5 });
      assert.notEqual(next.getServerPid(), pid);
      await pool.release(con);
      assert.equal(pool.getIdleSize(), 0, "the old proxy's release did not touch the new checkout");
      assert.equal(await next.fetchVal("SELECT 1"), 1);
      await pool.release(next);
      assert.equal(pool.getIdleSize(), 1);
    });

    it("a killed checkout is never reconnected behind the user's back", async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 2 });
      const con = await pool.acquire();
      const pid = con.getServerPid();
      // Handled from the start: the kill can fail it before the awaits below return.
      const sleeping = rejection(con.execute("SELECT pg_sleep(5)"));
      await waitForQuery(pid, "SELECT pg_sleep(5)");
      assert.equal(await admin.kill(pid), true);
      const inFlight = await within(3000, sleeping, "the in-flight query");
      assert.ok(inFlight instanceof PoolError);
      assert.ok(
        inFlight.code === "57P01" || inFlight.code === "CONNECTION_LOST",
        `in-flight query failed with ${inFlight.code}`,
      );
      if (inFlight.code === "57P01") assert.ok(inFlight instanceof PostgresError);
      for (let i = 0; i < 2; i++) {
        const err = await rejection(con.fetchVal("SELECT 1"));
        assert.ok(err instanceof InterfaceError, "no silent reconnect: the proxy stays dead");
        assert.equal(err.code, "CONNECTION_CLOSED");
        assert.equal(con.isClosed(), true);
      }
      await pool.release(con);
      await using next = await pool.acquire({ timeout: 1 });
      assert.notEqual(next.getServerPid(), pid, "the next acquire gets a new backend");
      assert.equal(await next.fetchVal("SELECT 1"), 1);
    });
  });

  describe("query cancellation", () => {
    it("a query timeout cancels the query on the server and leaves the connection usable", async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      await using con = await pool.acquire();
      const pid = con.getServerPid();
      const started = Date.now();
      const err = await rejection(con.execute("SELECT pg_sleep(5)", [], { timeout: 0.2 }));
      assert.ok(err instanceof PoolTimeoutError);
      assert.equal(err.name, "TimeoutError");
      assert.equal(err.code, "QUERY_TIMEOUT");
      assert.ok(Date.now() - started < 1000, "rejected at the deadline");
      assert.equal(await con.fetchVal("SELECT 43"), 43, "the same checkout works afterwards");
      assert.equal(con.getServerPid(), pid);
      assert.equal(await admin.value("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]), "idle");
    });

    it("an aborted signal cancels the query, rejects with its reason and leaves the connection usable", async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      await using con = await pool.acquire();
      const pid = con.getServerPid();
      const controller = new AbortController();
      const sleeping = rejection(con.fetchVal("SELECT pg_sleep(5)", [], { signal: controller.signal }));
      await waitForQuery(pid, "SELECT pg_sleep(5)");
      const reason = new Error("user went away");
      controller.abort(reason);
      assert.equal(await within(1000, sleeping), reason);
      assert.equal(await con.fetchVal("SELECT 44"), 44);
      assert.equal(await admin.value("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]), "idle");
    });

    it("10 workers each time out one query and reuse their checkout (pool of 5)", async () => {
      const log = warningLog();
      await using pool = await createTestPool(server.dsn, {
        minSize: 5,
        maxSize: 5,
        onWarning: log.onWarning,
      });
      const pidsBefore = new Set<number>();
      await Promise.all(Array.from({ length: 10 }, async () => {
        await using con = await pool.acquire({ timeout: 5 });
        pidsBefore.add(con.getServerPid());
        assert.equal(await con.fetchVal("SELECT 42"), 42);
        const err = await rejection(con.execute("SELECT pg_sleep(5)", [], { timeout: 0.2 }));
        assert.equal(err.code, "QUERY_TIMEOUT");
        assert.equal(await con.fetchVal("SELECT 43"), 43);
      }));
      assert.equal(pool.getSize(), 5, "no connection was lost to the cancellations");
      assert.equal(pidsBefore.size, 5);
      assert.deepEqual(log.codes(), []);
    });

    it("a one-shot helper's timeout bounds the query and the connection goes back to the pool", async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      const pid = await pool.fetchVal("SELECT pg_backend_pid()");
      const err = await rejection(pool.fetchVal("SELECT pg_sleep(5)", [], { timeout: 0.2 }));
      assert.equal(err.code, "QUERY_TIMEOUT");
      // The call rejects at its deadline; the cancel and the release finish in the background.
      await waitFor("the connection to come back to the pool", () => pool.getIdleSize() === 1);
      assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid);
    });
  });

  describe("a network path that goes dead", () => {
    let proxy: FlakyProxy;

    before(async () => {
      proxy = await FlakyProxy.start({ host: server.host, port: server.port });
    });

    after(async () => {
      await proxy.close();
    });

    // The reset is pipelined: release() resolves once the reset is on its way, so during an outage
    // a checkout/release cycle settles at once. The release bound still holds: a connection whose
    // reset is not answered within it is dropped, and nothing is handed out after that.
    it("during an outage a connection whose reset cannot get through is dropped within the release bound, and the pool works again after it", async () => {
      proxy.restore();
      const pool = await createPool(dsnOnPort(proxy.port), {
        minSize: 1,
        maxSize: 1,
        releaseTimeout: 0.5,
        onWarning: () => {},
      });
      try {
        assert.equal(await pool.fetchVal("SELECT 1"), 1);
        proxy.cut();
        const started = Date.now();
        await within(
          3000,
          (async () => {
            await using _con = await pool.acquire({ timeout: 0.5 });
            // the release does not wait for the server; the pool's releaseTimeout bounds the reset
          })(),
          "an acquire/release cycle",
        );
        // Had the cycle waited for the server it would have ended at the 0.5 s bound, with the
        // connection dropped: it is still there, so the cycle ended first (no wall-clock guess).
        assert.equal(pool.getSize(), 1, "the cycle does not wait for the server");
        // The releaseTimeout then drops it (bounded generously: a loaded machine is slow, not wrong).
        await waitFor("the unreachable connection to be dropped", () => pool.getSize() === 0, 5000);
        assert.ok(Date.now() - started >= 400, "dropped at the 0.5 s bound, not before");
        const err = await within(3000, rejection(pool.acquire({ timeout: 0.5 })), "a new connection");
        assert.ok(err instanceof PoolTimeoutError, String(err));
        assert.equal(err.code, "ACQUIRE_TIMEOUT", "connecting times out while the network is down");
        proxy.restore();
        await using con = await pool.acquire({ timeout: 2 });
        assert.equal(await con.fetchVal("SELECT 1"), 1);
      } finally {
        pool.terminate();
        proxy.restore();
      }
    });

    it("a release whose reset cannot reach the server drops the connection within the pool's releaseTimeout", async () => {
      proxy.restore();
      const pool = await createPool(dsnOnPort(proxy.port), {
        minSize: 2,
        maxSize: 2,
        releaseTimeout: 0.5,
        onWarning: () => {},
      });
      try {
        let released = 0;
        await within(
          3000,
          (async () => {
            await using con = await pool.acquire({ timeout: 0.5 });
            assert.equal(await con.fetchVal("SELECT 1"), 1);
            proxy.cut();
          })(),
          "the scope exit",
        );
        released = Date.now();
        await waitFor("the unreachable connection to be terminated", () => pool.getSize() === 1, 3000);
        const took = Date.now() - released;
        assert.ok(took < 1500, `dropped after ${took} ms for a 0.5 s bound`);
      } finally {
        pool.terminate();
        proxy.restore();
      }
    });

    it("a one-shot helper's timeout bounds the whole call even when the connection is unreachable", async () => {
      proxy.restore();
      // The release bound (10 s) is far from the call's timeout (0.3 s), so a generous bound on
      // the elapsed time still tells which one ended the call.
      const pool = await createPool(dsnOnPort(proxy.port), {
        minSize: 1,
        maxSize: 1,
        releaseTimeout: 10,
        onWarning: () => {},
      });
      try {
        assert.equal(await pool.fetchVal("SELECT 1"), 1);
        proxy.cut();
        const started = Date.now();
        const err = await within(12_000, rejection(pool.execute("SELECT 1", [], { timeout: 0.3 })));
        const elapsed = Date.now() - started;
        assert.ok(err instanceof PoolTimeoutError, String(err));
        assert.ok(
          elapsed < 3000,
          `rejected after ${elapsed} ms for a 0.3 s timeout (the release bound is 10 s)`,
        );
      } finally {
        pool.terminate();
        proxy.restore();
      }
    });

    it("9 workers on 3 connections all settle, in bounded time, when the network dies mid-query", async () => {
      proxy.restore();
      const pool = await createPool(dsnOnPort(proxy.port), {
        minSize: 3,
        maxSize: 3,
        connectTimeout: 1,
        onWarning: () => {},
      });
      try {
        const started = Date.now();
        const worker = async (): Promise<string> => {
          await using con = await pool.acquire({ timeout: 1 });
          await con.fetch("SELECT pg_sleep($1)", [0.3], { timeout: 1 });
          return "ok";
        };
        const all = Promise.allSettled(Array.from({ length: 9 }, worker));
        setTimeout(() => proxy.cut(), 400);
        const results = await within(7000, all, "the workers");
        assert.ok(Date.now() - started < 6000);
        let failures = 0;
        for (const r of results) {
          if (r.status === "fulfilled") continue;
          failures++;
          // With `await using`, a failing body and a failing release arrive
          // together as a SuppressedError; both parts must be typed errors.
          const parts = (r.reason as Error).name === "SuppressedError"
            ? [(r.reason as { error: unknown }).error, (r.reason as { suppressed: unknown }).suppressed]
            : [r.reason];
          for (const part of parts) {
            assert.ok(part instanceof PoolError, `a typed error, not ${String(part)}`);
          }
        }
        assert.ok(failures > 0, "the outage was felt");
      } finally {
        pool.terminate();
        proxy.restore();
      }
    });

    it("close() of a pool whose network died settles", async () => {
      proxy.restore();
      const pool = await createPool(dsnOnPort(proxy.port), { minSize: 2, maxSize: 2 });
      proxy.cut();
      await within(12_000, pool.close(), "close()");
      assert.equal(pool.getSize(), 0);
      proxy.restore();
    });

    it("release() of a checkout whose socket just died settles at once, without any timeout", async () => {
      proxy.restore();
      const pool = await createPool(dsnOnPort(proxy.port), { minSize: 1, maxSize: 1, onWarning: () => {} });
      try {
        const con = await pool.acquire();
        assert.equal(await con.fetchVal("SELECT 1"), 1);
        proxy.resetAll();
        const started = Date.now();
        await within(2000, pool.release(con).catch(() => {}), "release()");
        assert.ok(Date.now() - started < 1000);
        // The slot is free (the kept floor may already have reopened a connection in it, idle).
        await waitFor(
          "the slot to be free",
          () => pool.stats().busy === 0 && pool.stats().closeCount.broken === 1,
        );
        await using next = await pool.acquire({ timeout: 2 });
        assert.equal(await next.fetchVal("SELECT 1"), 1);
      } finally {
        pool.terminate();
      }
    });

    it("a timed-out query whose cancel cannot get through ends with the connection terminated", async () => {
      proxy.restore();
      const pool = await createPool(dsnOnPort(proxy.port), {
        minSize: 1,
        maxSize: 1,
        connectTimeout: 2,
        onWarning: () => {},
      });
      try {
        const con = await pool.acquire();
        proxy.cut();
        const err = await rejection(con.fetchVal("SELECT pg_sleep(5)", [], { timeout: 0.2 }));
        assert.equal(err.code, "QUERY_TIMEOUT");
        // The cancel is still trying (its connect is bounded by connectTimeout, 2 s): ordering, not a clock.
        assert.equal(con.isClosed(), false, "rejected at the deadline, not when the cancel gave up");
        await waitFor("the connection to be terminated", () => con.isClosed(), 8000);
        await pool.release(con).catch(() => {});
        proxy.restore();
        await using next = await pool.acquire({ timeout: 2 });
        assert.equal(await next.fetchVal("SELECT 1"), 1);
      } finally {
        pool.terminate();
        proxy.restore();
      }
    });
  });

  describe("connection targets that fail", () => {
    it("a malformed DSN fails with INVALID_DSN at connect time, without echoing the password", async () => {
      const secret = "s3cr3t-Pa55";
      const err = await rejection(createPool(`postgres://u:${secret}@localhost:notaport/db`, { minSize: 1 }));
      assert.ok(err instanceof InterfaceError, String(err));
      assert.equal(err.code, "INVALID_DSN");
      assert.ok(!err.message.includes(secret) && !String(err).includes(secret));
      await using lazy = await createTestPool("postgres://[broken", { minSize: 0 });
      const late = await rejection(lazy.acquire({ timeout: 1 }));
      assert.equal(late.code, "INVALID_DSN");
      assert.equal(lazy.getSize(), 0);
    });

    it("a closed loopback port fails fast with ECONNREFUSED, and every acquire retries", async () => {
      const port = await closedPort();
      await using pool = await createTestPool(dsnOnPort(port), { minSize: 0, maxSize: 1 });
      for (let i = 0; i < 2; i++) {
        const started = Date.now();
        const err = await rejection(pool.acquire({ timeout: 5 }));
        assert.ok(err instanceof ConnectionError, String(err));
        assert.equal(err.code, "ECONNREFUSED");
        assert.ok(Date.now() - started < 1000, "refused quickly");
        assert.equal(pool.getSize(), 0);
      }
      pool.setConnectArgs(server.dsn);
      assert.equal(await pool.fetchVal("SELECT 1"), 1, "the slot was not lost to the failures");
    });

    it("a listener that never answers fails with CONNECT_TIMEOUT after connectTimeout", async () => {
      const hole = await blackHole();
      try {
        await using pool = await createTestPool(dsnOnPort(hole.port), {
          minSize: 0,
          maxSize: 1,
          connectTimeout: 0.5,
        });
        const started = Date.now();
        const err = await within(5000, rejection(pool.acquire()));
        const elapsed = Date.now() - started;
        assert.ok(err instanceof PoolTimeoutError, String(err));
        assert.equal(err.name, "TimeoutError");
        assert.equal(err.code, "CONNECT_TIMEOUT");
        assert.ok(elapsed >= 400 && elapsed < 2000, `took ${elapsed} ms`);
        assert.equal(hole.accepted(), 1);
        await waitFor("the abandoned socket to close", () => hole.sockets.size === 0);
        assert.equal(pool.getSize(), 0);
        // createPool() with minSize reports it too
        const failed = await rejection(
          createPool(dsnOnPort(hole.port), { minSize: 1, connectTimeout: 0.5 }),
        );
        assert.equal(failed.code, "CONNECT_TIMEOUT");
      } finally {
        await hole.close();
      }
    });

    it("a target that does not match targetSessionAttrs fails every acquire with SESSION_ATTRS_MISMATCH, then recovers", async () => {
      // Stand-in for asyncpg's test 43: the pool's target stops matching, every
      // acquire reports the mismatch (no sticky failure, no hang), and a good
      // target works again. A real standby is covered by pool_standby_test.ts.
      await using pool = await createTestPool(server.dsn, {
        minSize: 0,
        maxSize: 1,
        targetSessionAttrs: "standby",
      });
      for (let i = 0; i < 2; i++) {
        const err = await rejection(pool.execute("SELECT 1"));
        assert.ok(err instanceof ConnectionError, String(err));
        assert.equal(err.code, "SESSION_ATTRS_MISMATCH");
      }
      pool.setConnectArgs(server.dsn, { targetSessionAttrs: "primary" });
      assert.equal(await pool.execute("SELECT 1"), "SELECT 1");
    });
  });
});

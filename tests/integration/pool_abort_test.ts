/**
 * Giving up on an acquire at every stage against a real PostgreSQL — while
 * connecting, during `init`, during `setup` — and what it leaves behind (spec
 * section 5.2 and 5.3): the caller gets `signal.reason` or ACQUIRE_TIMEOUT,
 * the half-made connection is dropped, and the pool keeps its full capacity.
 * Also the SLOW_CLOSE warning and a pool over the unix socket.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createPool, type Pool, PoolTimeoutError } from "../../mod.ts";
import {
  Admin,
  blackHole,
  createTestPool,
  getTestServer,
  rejection,
  type TestServer,
  waitFor,
  warningLog,
  within,
} from "./pool_support.ts";
import { skipTest } from "../support/skip.ts";

let server: TestServer;
let admin: Admin;

/** The pool still has its full capacity: maxSize checkouts at once, then a clean close. */
async function assertFullCapacity(pool: Pool): Promise<void> {
  const cons = await Promise.all(
    Array.from({ length: pool.getMaxSize() }, () => pool.acquire({ timeout: 2 })),
  );
  for (const con of cons) assert.equal(await con.fetchVal("SELECT 1"), 1);
  for (const con of cons) await pool.release(con);
  await within(5000, pool.close(), "close()");
}

describe("Aborting an acquire at each stage (real server)", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("an abort while connecting rejects with the reason and closes the half-open socket", async () => {
    const hole = await blackHole();
    const url = new URL(server.dsnFor({ host: "127.0.0.1" }));
    url.port = String(hole.port);
    const pool = await createPool(url.toString(), { minSize: 0, maxSize: 2, connectTimeout: 0 });
    try {
      const reason = new Error("no time to connect");
      const controller = new AbortController();
      const pending = rejection(pool.acquire({ signal: controller.signal }));
      // abort once the connect is under way (the black hole took the socket), not after a guessed delay
      await waitFor("the connect to reach the black hole", () => hole.accepted() === 1);
      controller.abort(reason);
      assert.equal(await within(3000, pending), reason);
      assert.equal(hole.accepted(), 1);
      await waitFor("the abandoned socket to close", () => hole.sockets.size === 0);
      const err = await within(3000, rejection(pool.acquire({ timeout: 0.2 })));
      assert.ok(err instanceof PoolTimeoutError);
      assert.equal(err.code, "ACQUIRE_TIMEOUT", "the acquire deadline bounds the connect");
      await waitFor("the second abandoned socket to close", () => hole.sockets.size === 0);
      assert.equal(pool.getSize(), 0);
      pool.setConnectArgs(server.dsn);
      await assertFullCapacity(pool);
    } finally {
      pool.terminate();
      await hole.close();
    }
  });

  for (const stage of ["init", "setup"] as const) {
    it(`an abort during ${stage} rejects with the reason and drops that connection`, async () => {
      let slow = true;
      let slowPid = 0;
      let hookStarted = Promise.withResolvers<void>();
      // The hook outlasts any wait below by far: a rejection that waited for it would miss `within`.
      const hookBody = async (con: { execute(sql: string): Promise<string>; getServerPid(): number }) => {
        if (!slow) return;
        slowPid = con.getServerPid();
        hookStarted.resolve();
        await con.execute("SELECT pg_sleep(4)");
      };
      const pool = await createPool(server.dsn, {
        minSize: 0,
        maxSize: 2,
        ...(stage === "init" ? { init: hookBody } : { setup: hookBody }),
      });
      try {
        const reason = new Error(`stop during ${stage}`);
        const controller = new AbortController();
        const pending = rejection(pool.acquire({ signal: controller.signal }));
        await within(5000, hookStarted.promise, `${stage} to start`);
        controller.abort(reason);
        // rejected at the abort, not when the 4 s hook ended
        assert.equal(await within(2000, pending, "the aborted acquire"), reason);
        assert.ok(slowPid > 0, `${stage} had started`);
        assert.equal(pool.getSize(), 0, "the connection was dropped");
        hookStarted = Promise.withResolvers<void>();
        const err = await within(2000, rejection(pool.acquire({ timeout: 0.1 })), "the timed-out acquire");
        assert.equal(err.code, "ACQUIRE_TIMEOUT", `an acquire timeout during ${stage} behaves the same`);
        assert.equal(pool.getSize(), 0);
        slow = false;
        await assertFullCapacity(pool);
        await admin.waitGone(slowPid, 8000);
      } finally {
        pool.terminate();
      }
    });
  }

  it("a one-shot helper's signal aborts it while it waits for a connection", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const holder = await pool.acquire();
    const reason = new Error("not waiting any longer");
    const controller = new AbortController();
    const pending = pool.fetchVal("SELECT 1", [], { signal: controller.signal });
    await waitFor("the helper to queue", () => pool.getWaitingCount() === 1);
    controller.abort(reason);
    assert.equal(await within(2000, rejection(pending)), reason);
    assert.equal(pool.getWaitingCount(), 0);
    const timedOut = await within(2000, rejection(pool.fetchVal("SELECT 1", [], { timeout: 0.1 })));
    assert.equal(timedOut.code, "ACQUIRE_TIMEOUT");
    await pool.release(holder);
    assert.equal(await pool.fetchVal("SELECT 1", [], { timeout: 1 }), 1);
  });

  it("close() warns SLOW_CLOSE once when it waits past closeWarningAfter", async () => {
    const log = warningLog();
    const pool = await createPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      closeWarningAfter: 0.1,
      onWarning: log.onWarning,
    });
    const con = await pool.acquire();
    const closing = pool.close();
    await waitFor("the SLOW_CLOSE warning", () => log.list.length > 0);
    assert.deepEqual(log.codes(), ["SLOW_CLOSE"]);
    assert.equal(pool.isClosing(), true);
    await pool.release(con);
    await within(3000, closing, "close()");
    assert.deepEqual(log.codes(), ["SLOW_CLOSE"]);
  });

  it("a pool over the unix socket works", async (t) => {
    if (server.socketDir === undefined) return skipTest(t, "the server comes from DATABASE_URL");
    await using pool = await createTestPool(server.dsnFor({ host: server.socketDir }), {
      minSize: 1,
      maxSize: 2,
    });
    assert.equal(await pool.fetchVal("SELECT inet_client_addr() IS NULL"), true, "not TCP");
    await assertFullCapacity(pool);
  });
});

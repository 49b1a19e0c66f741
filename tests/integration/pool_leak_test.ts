/**
 * Leak detection against a real PostgreSQL: a checkout held past
 * `leakDetectionThreshold` is reported with its acquire() stack, and a
 * PoolConnection the caller forgot (collected while checked out) gives its
 * slot back with its backend terminated. Forces garbage collection.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Pool, PoolWarning } from "../../mod.ts";
import { collectUntil } from "../support/gc.ts";
import { Admin, createTestPool, getTestServer, type TestServer, warningLog, within } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/**
 * Acquires, opens a transaction holding an advisory lock, and forgets the
 * proxy. Runs in a task of its own, so no frame of the test ever held it.
 */
function forgetInTransaction(pool: Pool): Promise<number> {
  return new Promise((resolve, reject) => {
    setTimeout(() => {
      (async () => {
        const con = await pool.acquire();
        await con.execute("BEGIN");
        await con.execute("SELECT pg_advisory_xact_lock(12012)");
        return con.getServerPid();
      })().then(resolve, reject);
    }, 0);
  });
}

describe("Pool leak detection on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });
  after(async () => {
    await admin.close();
  });

  it("Pool takes back the slot of a PoolConnection collected while checked out: CONNECTION_LEAK with the acquire() stack, its session closed", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, {
      maxSize: 1,
      leakDetectionThreshold: 3600,
      onWarning: log.onWarning,
    });
    const pid = await forgetInTransaction(pool);
    const waiting = pool.acquire({ timeout: 10 });
    assert.equal(pool.getWaitingCount(), 1, "the forgotten checkout holds the only slot");
    assert.equal(await collectUntil(() => log.list.length > 0, 100), true, "the forgotten proxy was noticed");
    assert.deepEqual(log.codes(), ["CONNECTION_LEAK"]);
    assert.match(log.list[0]!.message, /garbage-collected while checked out/);
    assert.match(log.list[0]!.stack ?? "", /pool_leak_test\.ts/, "where it was acquired");
    await using con = await within(10_000, waiting, "the waiter");
    assert.notEqual(con.getServerPid(), pid, "the forgotten session is not handed on");
    await admin.waitGone(pid);
    assert.equal(
      await con.fetchVal("SELECT pg_try_advisory_lock(12012)"),
      true,
      "the forgotten transaction's lock went with its backend",
    );
  });

  it("Pool lets a statement still running on a collected PoolConnection finish before closing it", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { maxSize: 1, onWarning: log.onWarning });
    // The caller keeps only the statement's promise: the proxy is unreachable while the statement runs.
    const { pid, answer } = await new Promise<{ pid: number; answer: Promise<unknown> }>(
      (resolve, reject) => {
        setTimeout(() => {
          pool.acquire().then((con) => {
            resolve({
              pid: con.getServerPid(),
              answer: con.fetchVal("SELECT pg_sleep(0.5)::text || 'slept'"),
            });
          }, reject);
        }, 0);
      },
    );
    assert.equal(
      await collectUntil(() => log.list.length > 0, 100),
      true,
      "collected while its statement runs",
    );
    assert.deepEqual(log.codes(), ["CONNECTION_LEAK"]);
    assert.equal(
      await within(5_000, answer, "the running statement"),
      "slept",
      "the caller still gets its answer",
    );
    await admin.waitGone(pid);
    await using con = await pool.acquire({ timeout: 5 });
    assert.notEqual(con.getServerPid(), pid);
  });

  it("Pool leakDetectionThreshold warns once about a real checkout held longer, naming it", async () => {
    let report!: (w: PoolWarning) => void;
    const reported = new Promise<PoolWarning>((resolve) => report = resolve);
    const seen: PoolWarning[] = [];
    await using pool = await createTestPool(server.dsn, {
      maxSize: 1,
      leakDetectionThreshold: 0.05,
      onWarning: (w) => {
        seen.push(w);
        report(w);
      },
    });
    await using con = await pool.acquire();
    const w = await within(5_000, reported, "the CONNECTION_LEAK warning");
    assert.equal(w.code, "CONNECTION_LEAK");
    assert.match(w.message, new RegExp(`backend pid ${con.getServerPid()}\\)`));
    assert.match(w.stack ?? "", /pool_leak_test\.ts/);
    assert.equal(await con.fetchVal("SELECT 1"), 1, "the checkout stays valid");
    assert.equal(seen.length, 1);
  });
});

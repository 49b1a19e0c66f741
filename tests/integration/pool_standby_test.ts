/**
 * Pools against servers of their own (tests/support/pg_server.ts
 * startPostgres): a hot standby, and a server that restarts in recovery under
 * a pool that wants a primary. Ported in spirit from asyncpg's
 * tests/test_pool.py tests 43–45 (TestPoolReconnectWithTargetSessionAttrs,
 * TestHotStandby).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { connect, ConnectionError } from "../../mod.ts";
import { postgresAvailable, standbyAvailable, startPostgres } from "../support/pg_server.ts";
import { createTestPool, rejection, waitFor } from "./pool_support.ts";
import { skipTest } from "../support/skip.ts";

describe("Pools on standbys and role changes (own servers)", () => {
  it(
    "a pool on a hot standby serves 1 to 100 workers and its default reset works there",
    { timeout: 60_000 },
    async (t) => {
      if (!standbyAvailable()) return skipTest(t, "no pg_basebackup with these binaries");
      await using primary = await startPostgres();
      await using standby = await startPostgres({ standbyOf: primary });
      for (const n of [1, 3, 5, 10, 20, 100]) {
        await using pool = await createTestPool(standby.dsn, { minSize: 5, maxSize: 10 });
        await Promise.all(Array.from({ length: n }, async () => {
          await using con = await pool.acquire({ timeout: 10 });
          assert.equal(await con.fetchVal("SELECT 1"), 1);
          await con.execute("SET work_mem = '3MB'"); // something for the reset to undo
        }));
        assert.equal(pool.getIdleSize(), pool.getSize());
        assert.notEqual(await pool.fetchVal("SHOW work_mem"), "3MB");
      }
      // A cursor in a transaction on the standby (asyncpg's test_standby_cursors).
      await using pool = await createTestPool(standby.dsn, { minSize: 1, maxSize: 1 });
      assert.equal(await pool.fetchVal("SELECT pg_is_in_recovery()"), true);
      await using con = await pool.acquire();
      const row = await con.transaction(async (tx) => {
        await tx.execute("DECLARE standby_cursor CURSOR FOR SELECT 1 AS one");
        return await tx.fetchRow("FETCH 1 FROM standby_cursor");
      });
      assert.deepEqual(row, { one: 1 });
    },
  );

  it(
    "while the server is down acquires fail fast; after it restarts, dead idle connections are replaced",
    { timeout: 60_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres();
      await using pool = await createTestPool(pg.dsn, { minSize: 3, maxSize: 3, onWarning: () => {} });
      const before = new Set<number>();
      const cons = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
      for (const con of cons) before.add(con.getServerPid());
      for (const con of cons) await pool.release(con);
      await pg.stop();
      await waitFor("the pool to notice the shutdown", () => pool.getSize() === 0);
      const started = Date.now();
      const err = await rejection(pool.acquire({ timeout: 5 }));
      assert.ok(err instanceof ConnectionError, String(err));
      assert.ok(Date.now() - started < 2000, "a refused connect fails fast");
      await pg.start();
      const again = await Promise.all([pool.acquire({ timeout: 5 }), pool.acquire({ timeout: 5 })]);
      for (const con of again) {
        assert.ok(!before.has(con.getServerPid()));
        assert.equal(await con.fetchVal("SELECT 1"), 1);
        await pool.release(con);
      }
    },
  );

  it(
    "when the server comes back as a standby, a 'primary' pool fails every acquire with SESSION_ATTRS_MISMATCH, then recovers after promotion",
    { timeout: 60_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres();
      await using pool = await createTestPool(pg.dsn, {
        minSize: 1,
        maxSize: 1,
        targetSessionAttrs: "primary",
        onWarning: () => {},
      });
      assert.equal(await pool.fetchVal("SELECT 1"), 1);
      const port = pg.port;
      await pg.stop();
      await waitFor("the pool to notice the shutdown", () => pool.getSize() === 0);
      const signal = path.join(pg.dataDir, "standby.signal");
      fs.writeFileSync(signal, "");
      const stat = fs.statSync(pg.dataDir);
      fs.chownSync(signal, stat.uid, stat.gid);
      await pg.start();
      assert.equal(pg.port, port, "the server came back on the same port");
      for (let i = 0; i < 2; i++) {
        const err = await rejection(pool.execute("SELECT 1"));
        assert.ok(err instanceof ConnectionError, String(err));
        assert.equal(err.code, "SESSION_ATTRS_MISMATCH");
        assert.match(err.message, /primary/);
        assert.equal(pool.getSize(), 0, "the mismatching connection was not kept");
      }
      {
        await using superuser = await connect(pg.dsn);
        assert.equal(await superuser.fetchVal("SELECT pg_promote(true, 30)"), true);
      }
      assert.equal(await pool.execute("SELECT 1"), "SELECT 1", "the pool retries on every acquire");
    },
  );
});

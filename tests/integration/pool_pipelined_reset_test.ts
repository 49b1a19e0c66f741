/**
 * The reset is written ahead of the next checkout's first statement (pipelined),
 * not awaited by the releasing caller. These tests prove that pipelining never
 * lets one checkout's session state reach the next, and that a reset that fails
 * kills its connection before any later result is delivered.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createPool, type PoolConnection } from "../../mod.ts";
import { waitFor } from "./pool_support.ts";
import {
  getTestServer,
  type PostgresInstance,
  startPostgres,
  type TestServer,
} from "../support/pg_server.ts";

describe("Pool pipelined reset (real server)", () => {
  let server: TestServer;
  before(async () => {
    server = await getTestServer();
  });

  it("a one-shot SET never leaks into the next one-shot on the same backend, even pipelined", async () => {
    await using pool = await createPool(server.dsn, { minSize: 1, maxSize: 1 });
    const pid = await pool.fetchVal("SELECT pg_backend_pid()");
    const seen = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          i % 2 === 0
            ? pool.fetchVal<string>("SELECT set_config('pgpool.leak', $1, false)", [`v${i}`]).then(() => null)
            : pool.fetchVal<string>("SELECT current_setting('pgpool.leak', true)"),
      ),
    );
    for (const [i, value] of seen.entries()) {
      if (i % 2 === 1) assert.ok(value === null || value === "", `one-shot ${i} saw ${value}`);
    }
    assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid, "all on one backend");
  });

  it("a one-shot pg_advisory_lock never leaks into the next one-shot, even pipelined", async () => {
    await using pool = await createPool(server.dsn, { minSize: 1, maxSize: 1 });
    const held = await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          i % 2 === 0
            ? pool.execute("SELECT pg_advisory_lock($1)", [i]).then(() => -1)
            : pool.fetchVal<number>(
              "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            ),
      ),
    );
    assert.deepEqual(held.filter((n) => n !== -1 && n !== 0), []);
  });

  it("an open transaction is rolled back ahead of the next checkout's first statement", async () => {
    await using pool = await createPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: () => {} });
    const a = await pool.acquire();
    await a.execute("BEGIN");
    await a.execute("CREATE TEMP TABLE pipelined_tx (x int)");
    await pool.release(a);
    const b = await pool.acquire();
    // the very first statement after the pipelined rollback must see no transaction and no table
    const [row] = await b.fetch<{ xact: boolean; t: string | null }>(
      "SELECT now() <> statement_timestamp() AS xact, to_regclass('pg_temp.pipelined_tx')::text AS t",
    );
    assert.deepEqual(row, { xact: false, t: null });
    await pool.release(b);
  });

  describe("a reset the server refuses", () => {
    let pg: PostgresInstance;
    before(async () => {
      pg = await startPostgres();
      await using admin = await connect(pg.dsn);
      await admin.execute("CREATE ROLE pgpool_limited LOGIN");
      // Without EXECUTE on pg_advisory_unlock_all() the reset fails for this role.
      await admin.execute("REVOKE EXECUTE ON FUNCTION pg_advisory_unlock_all() FROM PUBLIC");
    });
    after(async () => {
      await pg?.destroy();
    });

    it("kills the connection before any later result is delivered, and the pool recovers", async () => {
      const dsn = pg.dsnFor({ user: "pgpool_limited" });
      await using pool = await createPool(dsn, { minSize: 0, maxSize: 1 });
      const a = await pool.acquire();
      const pid = a.getServerPid();
      await a.execute("SET application_name = 'dirty'");
      await pool.release(a); // resolves: the reset is on its way
      // The next checkout may get the same connection before the refusal arrives. Whatever it runs
      // must then fail: it must never read the dirty session.
      const read = (con: PoolConnection) =>
        con.fetchVal<string>("SELECT current_setting('application_name')", [], { timeout: 5 });
      for (let i = 0; i < 3; i++) {
        const b = await pool.acquire({ timeout: 5 });
        try {
          const name = await read(b);
          assert.notEqual(b.getServerPid(), pid, "a result came from the connection whose reset failed");
          assert.notEqual(name, "dirty");
        } catch (e) {
          const code = (e as { code?: string }).code;
          assert.ok(
            code === "42501" || code === "CONNECTION_CLOSED" || code === "CONNECTION_LOST",
            `unexpected ${String(e)}`,
          );
        } finally {
          await pool.release(b).catch(() => {});
        }
      }
      // The pool recovered: a checkout now gets a fresh session on another backend, and the
      // connection whose reset failed is gone from the server.
      const c = await pool.acquire({ timeout: 5 });
      try {
        assert.notEqual(c.getServerPid(), pid);
        assert.equal(await read(c), "");
      } finally {
        await pool.release(c).catch(() => {});
      }
      assert.equal(pool.getSize(), 1);
      await using admin = await connect(pg.dsn);
      await waitFor(
        "the connection whose reset failed to end",
        async () =>
          Number(await admin.fetchVal("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", [pid])) === 0,
        5000,
      );
    });
  });
});

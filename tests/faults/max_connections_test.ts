/**
 * Fault scenario: the server's max_connections is exhausted by other
 * clients. The pool reports a clear PostgresError 53300, makes at most one
 * connection attempt per acquire (no retry storm, counted at a proxy), and
 * works as soon as the others let go. Inserts refused with 53300 leave no row;
 * inserts after the recovery are all there (the write ledger).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Connection, createPool, Pool, PostgresError } from "../../mod.ts";
import { postgresAvailable, startPostgres } from "../support/pg_server.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import {
  assertPoolInvariants,
  codeOf,
  note,
  recoveryTime,
  rejection,
  TrackingClock,
  trapUnhandledRejections,
  waitFor,
  within,
} from "./fault_support.ts";
import { skipTest } from "../support/skip.ts";

describe("Faults: max_connections exhausted by others", { timeout: 60_000 }, () => {
  it("acquires fail fast with PostgresError 53300, one attempt each, and the pool works once slots free up", {
    timeout: 30_000,
  }, async (t) => {
    if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
    const trap = trapUnhandledRejections();
    await using pg = await startPostgres({
      config: { max_connections: "6", superuser_reserved_connections: "0" },
    });
    const proxy = await FaultProxy.start({ host: "127.0.0.1", port: pg.port });
    const others: Connection[] = [];
    for (let i = 0; i < 6; i++) others.push(await connect(pg.dsn, { applicationName: "other" }));
    const ledger = await Ledger.create(others[0]!, "ledger_max_connections");
    const dsn = proxy.dsnFrom(pg.dsnFor({ host: "127.0.0.1" }));
    const clock = new TrackingClock();
    const pool = new Pool(dsn, { minSize: 0, maxSize: 4, onWarning: () => {}, clock });
    await pool.init();
    try {
      const first = await rejection(pool.acquire({ timeout: 5 }));
      assert.ok(first instanceof PostgresError, `a server error, got ${String(first)}`);
      assert.equal(first.code, "53300");
      assert.match(first.message, /too many/i);

      const before = proxy.stats().accepted;
      const started = Date.now();
      const results = await within(
        10_000,
        Promise.allSettled(Array.from({ length: 30 }, () => pool.acquire({ timeout: 3 }))),
        "30 acquires",
      );
      const elapsed = Date.now() - started;
      const attempts = proxy.stats().accepted - before;
      const codes = results.map((r) => (r.status === "rejected" ? codeOf(r.reason) : "resolved"));
      assert.deepEqual([...new Set(codes)], ["53300"], "every acquire fails with 53300");
      assert.ok(attempts <= 30, `no retry storm: ${attempts} connection attempts for 30 acquires`);
      assert.ok(elapsed < 3000, `failures arrive fast, not at the acquire deadline (${elapsed} ms)`);
      assert.equal(pool.getSize(), 0);
      assert.equal(pool.getWaitingCount(), 0);

      for (let i = 0; i < 5; i++) {
        assert.equal(await ledger.insert((sql, args) => pool.execute(sql, args, { timeout: 3 })), "failed");
      }

      const failedCreate = await rejection(createPool(dsn, { minSize: 2, maxSize: 2 }));
      assert.equal(failedCreate.code, "53300");

      // Nothing happens behind the caller's back while nobody asks: once the refused connections
      // are closed, the pool has no connection, no connect in flight and no timer armed, so
      // nothing can wake it (proved from state, not by watching a quiet interval).
      await waitFor("the refused connections to close", () => proxy.connections === 0);
      const idleAttempts = proxy.stats().accepted;
      assert.equal(pool.getSize(), 0);
      assert.equal(clock.pending, 0, "no timer armed: no background reconnect loop");
      assert.equal(proxy.connections, 0, "no connection attempt in flight");
      assert.equal(proxy.stats().accepted, idleAttempts);

      const freed = Date.now();
      for (const con of others.splice(0, 4)) await con.close();
      const recovered = await recoveryTime(pool, freed);
      for (let i = 0; i < 5; i++) {
        assert.equal(await ledger.insert((sql, args) => pool.execute(sql, args, { timeout: 3 })), "acked");
      }
      await assertPoolInvariants(pool, { label: "max_connections" });
      const report = await ledger.verify(others[0]!);
      note(
        "max_connections exhausted",
        `30 acquires failed in ${elapsed} ms with ${attempts} connection attempts; ` +
          `the pool answered ${recovered} ms after others let go; ledger ${describeReport(report)}`,
      );
      assert.deepEqual(report.codes.failed, { "53300": 5 });
      assertLedgerClean(report);
    } finally {
      await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
      for (const con of others) await con.close();
      await proxy.close();
      trap.check();
    }
  });
});

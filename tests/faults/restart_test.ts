/**
 * Fault scenarios: the server restarts (fast and immediate shutdown) under a
 * 100-task load, and the server is down when the pool starts. Each scenario
 * has a server of its own and ends with the pool invariant check and the write
 * ledger (no lost acknowledged write, no duplicate, no phantom).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, ConnectionError, InterfaceError, Pool, PoolError } from "../../mod.ts";
import { postgresAvailable, type PostgresInstance, startPostgres } from "../support/pg_server.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import {
  assertPoolInvariants,
  note,
  recoveryTime,
  rejection,
  sleep,
  startLoad,
  trapUnhandledRejections,
  waitFor,
  within,
} from "./fault_support.ts";
import { skipTest } from "../support/skip.ts";

/** Codes a load may legitimately see while the server goes away and comes back. */
const OUTAGE_CODES = new Set([
  "57P01", // admin_shutdown: a fast shutdown terminates sessions
  "57P02", // crash_shutdown
  "57P03", // the database system is starting up / shutting down
  "CONNECTION_LOST",
  "CONNECTION_CLOSED",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ACQUIRE_TIMEOUT",
  "QUERY_TIMEOUT",
  "RELEASE_TIMEOUT",
  "CONNECT_TIMEOUT",
]);

/** Acknowledged commits must survive a server crash (the harness turns this off for speed). */
const DURABLE = { synchronous_commit: "on" };

async function restartUnderLoad(
  scenario: string,
  pg: PostgresInstance,
  outage: (pg: PostgresInstance) => Promise<void>,
): Promise<void> {
  const trap = trapUnhandledRejections();
  const admin = await connect(pg.dsn);
  const ledger = await Ledger.create(admin, "ledger_restart");
  await admin.close();
  const pool = new Pool(pg.dsn, { minSize: 5, maxSize: 10, connectTimeout: 2, onWarning: () => {} });
  await pool.init();
  try {
    const load = startLoad(
      100,
      (w, i) =>
        i % 2 === 0
          ? ledger.write((sql, args) => pool.execute(sql, args, { timeout: 3 }), `w${w}`)
          : pool.fetchVal("SELECT $1::int", [w], { timeout: 3 }).then((v) => assert.equal(v, w)),
    );
    await waitFor("the load to get going", () => load.tally.ok >= 300, 10_000);
    const down = Date.now();
    await outage(pg);
    const up = Date.now();
    await waitFor("a successful operation after the restart", () => load.lastOkAt() > up, 15_000);
    const recovered = load.lastOkAt() - up;
    const okAtUp = load.tally.ok;
    await waitFor("the load to carry on", () => load.tally.ok >= okAtUp + 300, 10_000);
    await load.stop();
    for (const code of load.tally.codes()) {
      assert.ok(OUTAGE_CODES.has(code), `unexpected error code ${code} (${load.tally})`);
    }
    assert.ok(load.tally.failed > 0, "the outage was felt");
    const probe = await recoveryTime(pool, Date.now());
    await assertPoolInvariants(pool, { label: scenario });
    await using checker = await connect(pg.dsn);
    const report = await ledger.verify(checker);
    note(
      scenario,
      `server down→up ${up - down} ms; first success ${recovered} ms after the server was back ` +
        `(probe ${probe} ms); load ${load.tally}; ledger ${describeReport(report)}`,
    );
    assertLedgerClean(report, scenario);
    assert.ok(report.acked > 0);
    assert.ok(recovered < 5000, `recovered ${recovered} ms after the server was back`);
  } finally {
    await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
    trap.check();
  }
}

describe("Faults: server restarts", { timeout: 120_000 }, () => {
  it(
    "a fast restart under a 100-task load: operations fail with outage codes, then the pool recovers without losing a write",
    { timeout: 60_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres({ config: DURABLE });
      await restartUnderLoad("fast restart", pg, (p) => p.restart());
    },
  );

  it(
    "an immediate shutdown (crash) and restart under a 100-task load: the pool recovers without losing a write",
    { timeout: 60_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres({ config: DURABLE });
      await restartUnderLoad("immediate restart", pg, async (p) => {
        await p.kill();
        await p.start();
      });
    },
  );

  it(
    "Pool.init() fails clearly while the server is down; the same pool works once the server is back",
    { timeout: 60_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      const trap = trapUnhandledRejections();
      await using pg = await startPostgres();
      await pg.stop();
      const pool = new Pool(pg.dsn, { minSize: 2, maxSize: 4, connectTimeout: 2, onWarning: () => {} });
      try {
        const started = Date.now();
        const err = await within(5000, rejection(pool.init()), "init()");
        assert.ok(err instanceof ConnectionError, `init failed with ${String(err)}`);
        assert.equal(err.code, "ECONNREFUSED");
        assert.match(err.message, /127\.0\.0\.1|localhost/, "the message names the target");
        assert.ok(Date.now() - started < 3000, "a refused connect fails fast");
        assert.equal(pool.getSize(), 0);
        assert.equal(pool.getIdleSize(), 0);
        // Still down: every acquire tries again and fails the same way, without leaking a slot.
        for (let i = 0; i < 3; i++) {
          const again = await rejection(pool.acquire({ timeout: 2 }));
          assert.ok(again instanceof PoolError);
          assert.equal(again.code, "ECONNREFUSED");
        }
        assert.equal(pool.getSize(), 0);
        const back = Date.now();
        await pg.start();
        const serverUp = Date.now();
        const recovered = await recoveryTime(pool, serverUp);
        await assertPoolInvariants(pool, { label: "down at start" });
        note(
          "server down at start",
          `server start took ${serverUp - back} ms; pool answered ${recovered} ms after the server was up`,
        );
        assert.ok(recovered < 3000);
      } finally {
        await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
        trap.check();
      }
    },
  );

  it(
    "a pool whose server stops while connections are idle settles close() and reports POOL_CLOSED afterwards",
    { timeout: 30_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres();
      const pool = new Pool(pg.dsn, { minSize: 3, maxSize: 3, onWarning: () => {} });
      await pool.init();
      await pg.kill();
      await waitFor("the pool to notice", () => pool.getSize() === 0, 5000);
      const started = Date.now();
      await within(5000, pool.close(), "close()");
      assert.ok(Date.now() - started < 1000);
      const err = await rejection(pool.acquire());
      assert.ok(err instanceof InterfaceError);
      assert.equal(err.code, "POOL_CLOSED");
      await sleep(0);
    },
  );
});

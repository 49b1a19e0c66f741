/**
 * Fault scenario: failover. A real primary and a streaming standby made with
 * pg_basebackup -R (tests/support/pg_server.ts `standbyOf`). A pool on both
 * hosts with target_session_attrs=read-write writes through a ledger; the
 * primary stops, the standby is promoted, and the same pool serves writes
 * again within a few seconds, with no acknowledged write lost or duplicated.
 * (tests/integration/pool_standby_test.ts covers a pool on a standby and a
 * single server changing role; this adds the two-host failover under load.)
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, Pool } from "../../mod.ts";
import { standbyAvailable, startPostgres } from "../support/pg_server.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import {
  assertPoolInvariants,
  note,
  startLoad,
  trapUnhandledRejections,
  waitFor,
  within,
} from "./fault_support.ts";
import { type Skippable, skipTest } from "../support/skip.ts";

const FAILOVER_CODES = new Set([
  "57P01",
  "57P02",
  "57P03",
  "CONNECTION_LOST",
  "CONNECTION_CLOSED",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "SESSION_ATTRS_MISMATCH",
  "ACQUIRE_TIMEOUT",
  "QUERY_TIMEOUT",
  "CONNECT_TIMEOUT",
]);

async function failover(t: Skippable, attrs: "read-write" | "primary"): Promise<void> {
  if (!standbyAvailable()) return skipTest(t, "no pg_basebackup with these binaries");
  const trap = trapUnhandledRejections();
  await using primary = await startPostgres({ config: { synchronous_commit: "on" } });
  await using standby = await startPostgres({ standbyOf: primary });
  {
    await using s = await connect(standby.dsn);
    assert.equal(await s.fetchVal("SELECT pg_is_in_recovery()"), true);
  }
  const seed = await connect(primary.dsn);
  const ledger = await Ledger.create(seed, "ledger_failover");
  await seed.close();
  const dsn = `postgres://${primary.user}@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/` +
    `${primary.database}?target_session_attrs=${attrs}`;
  const pool = new Pool(dsn, { minSize: 2, maxSize: 5, connectTimeout: 2, onWarning: () => {} });
  await pool.init();
  try {
    assert.equal(await pool.fetchVal("SELECT pg_is_in_recovery()"), false, "the pool starts on the primary");
    const load = startLoad(
      10,
      (w) => ledger.write((sql, args) => pool.execute(sql, args, { timeout: 2 }), `w${w}`),
      20,
    );
    await waitFor("writes on the primary", () => load.tally.ok >= 200, 10_000);
    const stopped = Date.now();
    await primary.stop();
    const down = Date.now();
    {
      await using s = await connect(standby.dsn);
      assert.equal(await s.fetchVal("SELECT pg_promote(true, 30)"), true);
    }
    const promoted = Date.now();
    await waitFor("a write on the new primary", () => load.lastOkAt() > promoted, 15_000);
    const firstWrite = load.lastOkAt();
    const okThen = load.tally.ok;
    await waitFor("writes to carry on", () => load.tally.ok >= okThen + 100, 10_000);
    await load.stop();
    for (const code of load.tally.codes()) {
      assert.ok(FAILOVER_CODES.has(code), `unexpected error ${code} (${load.tally})`);
    }
    assert.equal(await pool.fetchVal("SELECT pg_is_in_recovery()"), false);
    assert.equal(
      Number(await pool.fetchVal("SELECT inet_server_port()")),
      standby.port,
      "the pool now talks to the promoted standby",
    );
    await assertPoolInvariants(pool, { label: "failover" });
    await using checker = await connect(standby.dsn);
    const report = await ledger.verify(checker);
    const outage = firstWrite - stopped;
    note(
      `failover (${attrs})`,
      `primary stop took ${down - stopped} ms, promotion ${promoted - down} ms; first write on the new ` +
        `primary ${firstWrite - promoted} ms after promotion (${outage} ms after the stop began); ` +
        `load ${load.tally}; ledger ${describeReport(report)}`,
    );
    assertLedgerClean(report);
    assert.ok(firstWrite - promoted < 3000, `writes resumed ${firstWrite - promoted} ms after promotion`);
  } finally {
    await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
    trap.check();
  }
}

describe("Faults: failover to a promoted standby", { timeout: 120_000 }, () => {
  it(
    "a two-host read-write pool serves writes again within seconds after the primary stops and the standby is promoted",
    { timeout: 60_000 },
    (t) => failover(t, "read-write"),
  );

  it(
    "a two-host primary pool serves writes again within seconds after the primary stops and the standby is promoted",
    { timeout: 60_000 },
    (t) => failover(t, "primary"),
  );
});

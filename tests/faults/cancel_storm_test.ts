/**
 * Fault scenario: a cancellation storm. 10,000 operations on a pool of 5 with
 * random AbortSignals and timeouts on acquires, queries and inserts. Every
 * operation settles, every success returns its own value (a late cancel never
 * hits the next query), only deadline/abort errors appear, and afterwards the
 * pool is sound, the server has exactly the pool's sessions, none still busy,
 * and the write ledger shows no lost, duplicated or phantom insert.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, createPool } from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import {
  assertPoolInvariants,
  codeOf,
  note,
  prng,
  StormAbort,
  Tally,
  trapUnhandledRejections,
  waitFor,
  waitForServerSessions,
  within,
} from "./fault_support.ts";

let server: TestServer;
let admin: Connection;

const ALLOWED = new Set(["ACQUIRE_TIMEOUT", "QUERY_TIMEOUT", "StormAbort", "TimeoutError"]);

describe("Faults: cancellation storm", { timeout: 120_000 }, () => {
  before(async () => {
    server = await getTestServer();
    admin = await connect(server.dsn);
  });

  after(async () => {
    await admin.close();
  });

  it(
    "10,000 operations with random aborts and timeouts all settle, return their own values, and leave the pool sound",
    { timeout: 90_000 },
    async () => {
      const trap = trapUnhandledRejections();
      const ledger = await Ledger.create(admin, "ledger_storm");
      const seed = Number(process.env.STORM_SEED ?? Date.now() % 1_000_000);
      const rand = prng(seed);
      const between = (lo: number, hi: number): number => lo + rand() * (hi - lo);
      const app = `fault-storm-${process.pid}-${seed}`;
      const pool = await createPool(server.dsn, {
        minSize: 2,
        maxSize: 5,
        applicationName: app,
        onWarning: () => {},
      });
      const tally = new Tally();
      const wrong: string[] = [];
      const TOTAL = 10_000;
      let issued = 0;
      const abortAfter = (ms: number): AbortSignal => {
        const ac = new AbortController();
        if (ms <= 0) ac.abort(new StormAbort());
        else setTimeout(() => ac.abort(new StormAbort()), ms);
        return ac.signal;
      };
      const one = async (n: number): Promise<void> => {
        const kind = Math.floor(rand() * 7);
        switch (kind) {
          case 0: { // acquire with a short timeout, hold briefly
            const con = await pool.acquire({ timeout: between(0.0005, 0.01) });
            try {
              if (rand() < 0.5) await new Promise((r) => setTimeout(r, between(0, 3)));
            } finally {
              await pool.release(con);
            }
            return;
          }
          case 1: { // acquire with a signal aborted at a random moment (sometimes already aborted)
            const con = await pool.acquire({ signal: abortAfter(rand() < 0.2 ? 0 : between(0, 5)) });
            await pool.release(con);
            return;
          }
          case 2: { // a sleeping one-shot query with a timeout
            const v = await pool.fetchVal("SELECT $1::int FROM pg_sleep($2)", [n, between(0, 0.008)], {
              timeout: between(0.001, 0.012),
            });
            if (v !== n) wrong.push(`op ${n}: got ${String(v)}`);
            return;
          }
          case 3: { // a one-shot query with AbortSignal.timeout
            const v = await pool.fetchVal("SELECT $1::int", [n], {
              signal: AbortSignal.timeout(Math.ceil(between(1, 6))),
            });
            if (v !== n) wrong.push(`op ${n}: got ${String(v)}`);
            return;
          }
          case 4: { // on a checkout: an aborted query, then the same connection must answer correctly
            const con = await pool.acquire({ timeout: 2 });
            try {
              try {
                await con.fetchVal("SELECT pg_sleep($1)", [between(0, 0.01)], {
                  signal: abortAfter(between(0, 6)),
                });
              } catch (e) {
                if (codeOf(e) !== "StormAbort") throw e;
              }
              const v = await con.fetchVal("SELECT $1::int", [n], { timeout: 2 });
              if (v !== n) wrong.push(`op ${n} after a cancel: got ${String(v)}`);
            } finally {
              await pool.release(con);
            }
            return;
          }
          case 5: { // an insert cut short by a timeout or an abort at a random moment
            const bound = rand() < 0.5
              ? { timeout: between(0.0005, 0.01) }
              : { signal: abortAfter(rand() < 0.2 ? 0 : between(0, 5)) };
            await ledger.write((sql, args) => pool.execute(sql, args, bound), `op ${n}`);
            return;
          }
          default: { // a plain query with a generous bound: must succeed
            const v = await pool.fetchVal("SELECT $1::int", [n], { timeout: 5 });
            if (v !== n) wrong.push(`op ${n}: got ${String(v)}`);
          }
        }
      };
      const started = Date.now();
      try {
        const workers = Array.from({ length: 12 }, async () => {
          while (issued < TOTAL) {
            const n = issued++;
            try {
              await one(n);
              tally.ok++;
            } catch (e) {
              tally.fail(e);
            }
          }
        });
        await within(60_000, Promise.all(workers), "the storm");
        const elapsed = Date.now() - started;
        assert.equal(tally.ok + tally.failed, TOTAL, "every operation settled");
        assert.deepEqual(wrong, [], `every success returned its own value (seed ${seed})`);
        for (const code of tally.codes()) {
          assert.ok(ALLOWED.has(code), `unexpected error ${code} (seed ${seed}; ${tally})`);
        }
        assert.ok(tally.ok > TOTAL / 4, `a fair share succeeded (${tally})`);
        await waitFor(
          "no backend of the pool to be busy",
          async () =>
            Number(
              await admin.fetchVal(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'",
                [app],
              ),
            ) === 0,
          5000,
        );
        await assertPoolInvariants(pool, { label: "cancel storm" });
        await waitForServerSessions(admin, app, pool, 5000);
        const report = await ledger.verify(admin);
        note(
          "cancel storm",
          `seed ${seed}: ${TOTAL} operations in ${elapsed} ms: ${tally}; ledger ${describeReport(report)}`,
        );
        assertLedgerClean(report, `seed ${seed}`);
        assert.ok(report.acked > 0 && report.failed + report.ambiguous > 0, describeReport(report));
      } finally {
        await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
        trap.check();
      }
    },
  );
});

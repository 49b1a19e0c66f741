/**
 * Fault scenario: a cancellation storm over pipelined one-shots. 3,000 operations on a pool of 2
 * with `pipelineDepth: 8`: unbounded one-shots (short sleeps, plain inserts) share connections with
 * one-shots bounded by a timeout or an AbortSignal that run long enough to be cancelled, plus a few
 * checkouts. A `CancelRequest` hits whatever the backend runs when it lands, so the pool must never
 * let one reach a neighbour: every unbounded one-shot resolves with its own value (never 57014 or
 * QUERY_TIMEOUT), every unbounded insert is acknowledged, bounded ones resolve with their own value
 * or reject only with QUERY_TIMEOUT, ACQUIRE_TIMEOUT or their abort reason. Afterwards the pool is
 * sound, the server has exactly the pool's sessions, none busy, and the write ledger is clean.
 *
 * `STORM_SEED=n` replays a run (the seed is printed, and named in every failure).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, createPool } from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import {
  assertPoolInvariants,
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

/** What a bounded operation may reject with. */
const BOUNDED_CODES = new Set(["ACQUIRE_TIMEOUT", "QUERY_TIMEOUT", "StormAbort"]);

describe("Faults: cancellation storm over pipelined one-shots", { timeout: 120_000 }, () => {
  before(async () => {
    server = await getTestServer();
    admin = await connect(server.dsn);
  });

  after(async () => {
    await admin.close();
  });

  it(
    "Pool pipelined one-shots: 3,000 operations with timeouts and aborts beside unbounded ones; no cancel reaches a neighbour",
    { timeout: 90_000 },
    async () => {
      const trap = trapUnhandledRejections();
      const ledger = await Ledger.create(admin, `ledger_pipe_storm_${process.pid}`);
      const seed = Number(process.env.STORM_SEED ?? Date.now() % 1_000_000);
      const rand = prng(seed);
      const between = (lo: number, hi: number): number => lo + rand() * (hi - lo);
      const app = `pipe-storm-${process.pid}-${seed}`;
      const pool = await createPool(server.dsn, {
        driver: "native",
        minSize: 2,
        maxSize: 2,
        pipelineDepth: 8,
        applicationName: app,
        onWarning: () => {},
      });
      const TOTAL = 3000;
      const WORKERS = 32;
      const unbounded = new Tally();
      const bounded = new Tally();
      const wrong: string[] = [];
      const unboundedInserts: Promise<string>[] = [];
      let issued = 0;
      /** One-shots started and not settled, and the most seen sharing the pool's connections at once. */
      let inFlight = 0;
      let mostOnTheWire = 0;
      const abortAfter = (ms: number): AbortSignal => {
        const ac = new AbortController();
        if (ms <= 0) ac.abort(new StormAbort());
        else setTimeout(() => ac.abort(new StormAbort()), ms);
        return ac.signal;
      };
      /** A bound: a timeout of 5–50 ms or a signal aborted within 50 ms (a fifth already aborted). */
      const bound = (): { timeout: number } | { signal: AbortSignal } =>
        rand() < 0.5
          ? { timeout: between(0.005, 0.05) }
          : { signal: abortAfter(rand() < 0.2 ? 0 : between(1, 50)) };
      const track = <T>(p: Promise<T>): Promise<T> => {
        inFlight++;
        mostOnTheWire = Math.max(mostOnTheWire, inFlight - pool.getWaitingCount());
        return p.finally(() => inFlight--);
      };
      const check = (n: number, v: unknown, what: string): void => {
        if (v !== n) wrong.push(`op ${n} (${what}): got ${String(v)} (seed ${seed})`);
      };
      /** Whether the operation drawn as `r` is bounded by a short timeout or an abort. */
      const isBounded = (r: number): boolean => r >= 0.62 && r < 0.98;
      /** Runs operation `n`, of the kind drawn as `r`. */
      const one = async (n: number, r: number): Promise<void> => {
        if (r < 0.45) { // unbounded, a short sleep
          const v = await track(pool.fetchVal("SELECT $1::int FROM pg_sleep($2)", [n, between(0, 0.002)]));
          check(n, v, "unbounded");
          return;
        }
        if (r < 0.55) { // unbounded insert: must be acknowledged
          const outcome = ledger.insert((sql, args) => track(pool.execute(sql, args)), `unbounded ${n}`);
          unboundedInserts.push(outcome);
          if (await outcome !== "acked") throw new Error(`unbounded insert ${n}: ${await outcome}`);
          return;
        }
        if (r < 0.62) { // bounded by a generous timeout, a quick statement: must succeed
          const v = await track(pool.fetchVal("SELECT $1::int", [n], { timeout: 10 }));
          check(n, v, "generous timeout");
          return;
        }
        if (r < 0.9) { // bounded, sleeping long enough to be cancelled, or racing its bound
          const v = await track(
            pool.fetchVal(
              "SELECT $1::int FROM pg_sleep($2)",
              // mostly cancelled; a third race their bound, so some cancels land late
              [n, rand() < 0.67 ? between(0.05, 0.2) : between(0, 0.05)],
              bound(),
            ),
          );
          check(n, v, "bounded");
          return;
        }
        if (r < 0.98) { // bounded insert, cut short at a random moment
          await ledger.write((sql, args) => track(pool.execute(sql, args, bound())), `bounded ${n}`);
          return;
        }
        // a checkout among the one-shots: its connection answers its own queries
        const con = await pool.acquire({ timeout: 10 });
        try {
          check(n, await con.fetchVal("SELECT $1::int", [n]), "checkout");
        } finally {
          await pool.release(con);
        }
      };
      const started = Date.now();
      try {
        const workers = Array.from({ length: WORKERS }, async () => {
          while (issued < TOTAL) {
            const n = issued++;
            const r = rand();
            const tally = isBounded(r) ? bounded : unbounded;
            try {
              await one(n, r);
              tally.ok++;
            } catch (e) {
              tally.fail(e);
            }
          }
        });
        await within(60_000, Promise.all(workers), "the storm");
        const elapsed = Date.now() - started;
        const stats = pool.stats();
        note(
          "pipeline cancel storm",
          `seed ${seed}: ${TOTAL} operations in ${elapsed} ms; unbounded ${unbounded}; bounded ${bounded}; ` +
            `up to ~${mostOnTheWire} one-shots in flight and not waiting in line on 2 connections; ` +
            `connections opened ${stats.connectCount}, closed ${JSON.stringify(stats.closeCount)}`,
        );
        assert.equal(
          unbounded.ok + unbounded.failed + bounded.ok + bounded.failed,
          TOTAL,
          "every operation settled",
        );
        assert.deepEqual(wrong, [], `every success returned its own value (seed ${seed})`);
        assert.equal(unbounded.failed, 0, `no unbounded operation failed (seed ${seed}; ${unbounded})`);
        for (const code of bounded.codes()) {
          assert.ok(
            BOUNDED_CODES.has(code),
            `unexpected error ${code} of a bounded one-shot (seed ${seed}; ${bounded})`,
          );
        }
        assert.ok(mostOnTheWire > 2, `one-shots shared connections (${mostOnTheWire} on the wire at most)`);
        assert.ok(bounded.failed > 0 && bounded.ok > 0, `the bounds fired, and not always (${bounded})`);
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
        await assertPoolInvariants(pool, { label: `pipeline cancel storm (seed ${seed})` });
        await waitForServerSessions(admin, app, pool, 5000);
        const report = await ledger.verify(admin);
        note("pipeline cancel storm", `seed ${seed}: ledger ${describeReport(report)}`);
        assertLedgerClean(report, `seed ${seed}`);
        const outcomes = await Promise.all(unboundedInserts);
        assert.deepEqual(
          outcomes.filter((o) => o !== "acked"),
          [],
          `every unbounded insert acknowledged (seed ${seed})`,
        );
      } finally {
        await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
        await admin.execute(`DROP TABLE IF EXISTS ${ledger.table}`);
        trap.check();
      }
    },
  );
});

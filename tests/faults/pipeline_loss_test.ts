/**
 * Fault scenarios: a connection lost under pipelined one-shots. A backend terminated while six
 * one-shots are in flight on it fails each of them with the session's end (`57P01`) or
 * `CONNECTION_LOST`, never a success or another error, and the pool carries on on a new backend.
 * A byte-cut sweep drops the connection at every point of a pipeline of one-shots (statements,
 * the resets behind them, the answers): each one-shot resolves with its own value or rejects with
 * `CONNECTION_LOST`, the ones that resolve are the first ones issued (answers come in order), the
 * pool works again right after, and the write ledger shows no acknowledged write lost, doubled or
 * phantom.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, createPool } from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import {
  codeOf,
  note,
  trapUnhandledRejections,
  waitFor,
  waitForServerSessions,
  within,
} from "./fault_support.ts";

let server: TestServer;
let admin: Connection;

/** How a one-shot settled: its value, or its error's code. */
type Outcome = { ok: unknown } | { error: string };

const outcome = (p: Promise<unknown>): Promise<Outcome> =>
  p.then((ok) => ({ ok }), (e: unknown) => ({ error: codeOf(e) }));

describe("Faults: connections lost under pipelined one-shots", { timeout: 120_000 }, () => {
  before(async () => {
    server = await getTestServer();
    admin = await connect(server.dsn);
  });

  after(async () => {
    await admin.close();
  });

  it(
    "Pool one-shots in flight on a backend that is terminated each reject with 57P01 or CONNECTION_LOST; the pool carries on",
    {
      timeout: 30_000,
    },
    async () => {
      const trap = trapUnhandledRejections();
      const app = `pipe-term-${process.pid}`;
      const pool = await createPool(server.dsn, {
        driver: "native",
        minSize: 1,
        maxSize: 1,
        applicationName: app,
        onWarning: () => {},
      });
      try {
        const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
        const inFlight = [
          pool.fetchVal("SELECT pg_sleep(5)"),
          pool.fetchVal("SELECT $1::int", [1]),
          pool.execute("SELECT 2"),
          pool.fetchRow("SELECT $1::int AS v", [3]),
          pool.fetch("SELECT generate_series(1, $1::int)", [4]),
          pool.executeMany("SELECT $1::int", [[5], [6]]),
        ].map(outcome);
        assert.equal(pool.getWaitingCount(), 0, "all six are on the connection");
        await waitFor("the sleep to run", async () =>
          Number(
            await admin.fetchVal(
              "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(5)%' AND state = 'active'",
              [pid],
            ),
          ) === 1);
        assert.equal(await admin.fetchVal("SELECT pg_terminate_backend($1)", [pid]), true);
        const got = await within(5000, Promise.all(inFlight), "the one-shots on the terminated backend");
        note("pipeline terminate", got.map((o) => "error" in o ? o.error : "resolved").join(", "));
        for (const [i, o] of got.entries()) {
          assert.ok(
            "error" in o && (o.error === "57P01" || o.error === "CONNECTION_LOST"),
            `one-shot ${i} settled with ${JSON.stringify(o)}`,
          );
        }
        assert.notEqual(await within(5000, pool.fetchVal<number>("SELECT pg_backend_pid()")), pid);
        assert.equal(pool.getSize(), 1);
        await waitForServerSessions(admin, app, pool);
      } finally {
        pool.terminate();
        trap.check();
      }
    },
  );

  it(
    "Pool pipelined one-shots cut at every point of the pipeline: own values in issue order, then CONNECTION_LOST; the ledger stays clean",
    {
      timeout: 60_000,
    },
    async () => {
      const trap = trapUnhandledRejections();
      const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
      const ledger = await Ledger.create(admin, `ledger_pipe_cut_${process.pid}`);
      // minSize 0: nothing reconnects (under the armed cut) before the sweep disarms it.
      const pool = await createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
        driver: "native",
        minSize: 0,
        maxSize: 1,
        onWarning: () => {},
      });
      /** The pipeline: six one-shots of every kind, each with a value of its own (inserts: the ledger's outcome). */
      const pipeline = (round: number): Promise<Outcome>[] => {
        const base = round * 10;
        return [
          outcome(pool.fetchVal("SELECT $1::int", [base + 1])),
          outcome(pool.fetchVal(`SELECT ${base + 2}`)), // a simple query (no parameters)
          outcome(
            ledger.insert((sql, args) => pool.execute(sql, args), `round ${round}`).then((o) => {
              if (o !== "acked") throw new Error(o);
              return base + 3;
            }),
          ),
          outcome(
            pool.fetchRow<{ v: number }>("SELECT $1::int AS v, repeat('x', 500) AS pad", [base + 4]).then((
              r,
            ) => r?.v),
          ),
          outcome(pool.fetchMany<{ v: number }>("SELECT $1::int AS v", [[base + 5]]).then((r) => r[0]?.v)),
          outcome(pool.fetchVal("SELECT $1::int", [base + 6])),
        ];
      };
      const expected = (round: number): number[] => [1, 2, 3, 4, 5, 6].map((i) => round * 10 + i);
      try {
        // One uncut round: the bytes a pipeline moves, to sweep over (the reset statements are
        // prepared on the connection by then).
        await pool.fetchVal("SELECT 1");
        const before = proxy.stats();
        const clean = await Promise.all(pipeline(0));
        assert.deepEqual(clean, expected(0).map((ok) => ({ ok })));
        const after = proxy.stats();
        const total = after.bytesUp + after.bytesDown - before.bytesUp - before.bytesDown;
        const STEPS = 150;
        const cuts: string[] = [];
        let lost = 0;
        /** Cuts that fell among the resets behind the last one-shot. */
        let tail = 0;
        for (let step = 0; step < STEPS; step++) {
          const round = step + 1;
          const budget = Math.floor((step * total) / STEPS);
          await within(5000, pool.fetchVal("SELECT 1"), `a warm connection before cut ${budget}`);
          proxy.cutAfterBytes(budget);
          const got = await within(
            5000,
            Promise.all(pipeline(round)),
            `the pipeline cut after ${budget} bytes`,
          );
          proxy.cutAfterBytes(undefined);
          const want = expected(round);
          let resolved = 0;
          for (const o of got) {
            if (!("ok" in o) || o.ok !== want[resolved]) break;
            resolved++;
          }
          for (let i = resolved; i < got.length; i++) {
            const o = got[i]!;
            // the insert reports its ledger outcome instead of a code: ambiguous is what a loss leaves
            const okLoss = "error" in o &&
              (o.error === "CONNECTION_LOST" || (i === 2 && o.error.endsWith("ambiguous")));
            assert.ok(
              okLoss,
              `cut after ${budget} of ${total} bytes: one-shot ${i} settled with ${JSON.stringify(o)} ` +
                `after ${resolved} resolved (${JSON.stringify(got)})`,
            );
          }
          if (resolved < got.length) lost++;
          cuts.push(`${budget}:${resolved}`);
          // The resets behind the last one-shot are still on their way when it resolves: a cut among
          // them (all six resolved) is the next one-shot's CONNECTION_LOST, as on any connection lost
          // under a statement. Either way the one after that runs on a new connection.
          const next = await outcome(within(5000, pool.fetchVal("SELECT $1::int", [round]), `cut ${budget}`));
          if (!("ok" in next)) {
            assert.ok(
              resolved === got.length && next.error === "CONNECTION_LOST",
              `cut after ${budget} bytes: the first one-shot after ${resolved} resolved got ${next.error}`,
            );
            tail++;
          } else assert.equal(next.ok, round);
          assert.equal(
            await within(5000, pool.fetchVal("SELECT $1::int", [round]), `the pool after cut ${budget}`),
            round,
          );
        }
        const report = await ledger.verify(admin);
        note(
          "pipeline byte cut",
          `${total} bytes a pipeline of 6; ${STEPS} cuts (budget:resolved) ${
            cuts.join(" ")
          }; ${lost} inside, ${tail} behind the last; ${describeReport(report)}`,
        );
        assertLedgerClean(report);
        assert.ok(lost >= STEPS / 2, `most cuts fell inside the pipeline (${lost} of ${STEPS})`);
      } finally {
        pool.terminate();
        await proxy.close();
        await admin.execute(`DROP TABLE IF EXISTS ${ledger.table}`);
        trap.check();
      }
    },
  );
});

/**
 * Faults under pipelined one-shots (several one-shots in flight on one connection, each followed by
 * the reset): a connection cut mid-pipeline fails every one-shot on it with `CONNECTION_LOST`; a
 * one-shot queued behind a reset that fails is told its outcome is unknown (the server may have run
 * it), never the reset's error; and the write ledger stays clean — no acknowledged write lost,
 * doubled or phantom — while backends are terminated and connections cut under a stream of
 * pipelined inserts.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, createPool } from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { assertLedgerClean, describeReport, Ledger } from "../support/ledger.ts";
import { codeOf, note, trapUnhandledRejections, waitFor, within } from "./fault_support.ts";

let server: TestServer;
let admin: Connection;

describe("Faults: pipelined one-shots", { timeout: 120_000 }, () => {
  before(async () => {
    server = await getTestServer();
    admin = await connect(server.dsn);
  });

  after(async () => {
    await admin.close();
  });

  it(
    "Pool one-shots in flight on a connection that is cut each reject with CONNECTION_LOST; the next runs on a new connection",
    {
      timeout: 30_000,
    },
    async () => {
      const trap = trapUnhandledRejections();
      const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
      const app = `pipe-cut-${process.pid}`;
      const pool = await createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
        minSize: 1,
        maxSize: 1,
        applicationName: app,
        onWarning: () => {},
      });
      try {
        const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
        const inFlight = [
          pool.fetchVal("SELECT pg_sleep(5)"),
          ...Array.from({ length: 5 }, (_, i) => pool.fetchVal("SELECT $1::int", [i])),
        ].map((p) => p.then(() => "resolved", (e: unknown) => codeOf(e)));
        assert.equal(pool.getWaitingCount(), 0, "all six are on the connection");
        await waitFor("the sleep to run", async () =>
          Number(
            await admin.fetchVal(
              "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(5)%' AND state = 'active'",
              [pid],
            ),
          ) === 1);
        proxy.resetAll();
        assert.deepEqual(
          await within(5000, Promise.all(inFlight), "the cut one-shots"),
          Array(6).fill("CONNECTION_LOST"),
        );
        assert.notEqual(await within(5000, pool.fetchVal<number>("SELECT pg_backend_pid()")), pid);
        assert.equal(pool.getSize(), 1);
      } finally {
        pool.terminate();
        await proxy.close();
        trap.check();
      }
    },
  );

  it("Pool one-shot queued behind a reset that fails rejects with CONNECTION_LOST, not the reset's error", async () => {
    const trap = trapUnhandledRejections();
    const ledger = await Ledger.create(admin, "ledger_pipe_reset");
    const pool = await createPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: () => {} });
    try {
      await pool.fetchVal("SELECT 1"); // the reset statements are now prepared on the connection
      // DEALLOCATE ALL drops them: the reset behind it fails (26000), after the insert behind that
      // reset was already sent — and the server runs that insert.
      const dropped = pool.execute("DEALLOCATE ALL");
      const insert = ledger.insert((sql, args) => pool.execute(sql, args), "behind a failing reset");
      assert.equal(pool.getWaitingCount(), 0);
      assert.equal(await dropped, "DEALLOCATE ALL");
      assert.equal(await insert, "ambiguous");
      const report = await ledger.verify(admin);
      assert.deepEqual(report.codes.ambiguous, { CONNECTION_LOST: 1 });
      assertLedgerClean(report);
      assert.equal(await pool.fetchVal("SELECT $1::int", [7]), 7, "the pool serves on a new connection");
    } finally {
      pool.terminate();
      trap.check();
    }
  });

  it("Pool pipelined inserts while backends are terminated and connections cut: the ledger stays clean", {
    timeout: 60_000,
  }, async () => {
    const trap = trapUnhandledRejections();
    const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
    const app = `pipe-ledger-${process.pid}`;
    const ledger = await Ledger.create(admin, "ledger_pipe_faults");
    const pool = await createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
      minSize: 2,
      maxSize: 2,
      pipelineDepth: 8,
      applicationName: app,
      onWarning: () => {},
    });
    try {
      const TOTAL = 3000;
      const WORKERS = 32;
      let issued = 0;
      let done = 0;
      const worker = async (): Promise<void> => {
        while (issued < TOTAL) {
          issued++;
          await ledger.insert((sql, args) => pool.execute(sql, args), "pipelined");
          done++;
        }
      };
      const workers = Array.from({ length: WORKERS }, worker);
      const faults: string[] = [];
      for (let round = 0; round < 6; round++) {
        const target = Math.min(TOTAL - 1, done + 300);
        await waitFor(`${target} inserts`, () => done >= target || issued >= TOTAL, 20_000);
        if (round % 2 === 0) {
          const n = Number(
            await admin.fetchVal(
              "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
              [app],
            ),
          );
          faults.push(`terminated ${n}`);
        } else faults.push(`cut ${proxy.resetAll()}`);
      }
      await within(30_000, Promise.all(workers), "the inserts");
      const report = await ledger.verify(admin);
      note("pipeline ledger", `${faults.join(", ")}: ${describeReport(report)}`);
      assertLedgerClean(report);
      assert.equal(report.attempted, TOTAL);
      assert.ok(report.acked > TOTAL / 2, describeReport(report));
      assert.equal(await pool.fetchVal("SELECT $1::int", [1]), 1);
    } finally {
      pool.terminate();
      await proxy.close();
      trap.check();
    }
  });
});

/**
 * Fault scenario: random `pg_terminate_backend` of idle and busy pooled
 * connections under load, on the shared test server. Ends with the pool
 * invariant check, a server-side count of the pool's sessions, and the write
 * ledger.
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
  sleep,
  startLoad,
  trapUnhandledRejections,
  waitFor,
  waitForServerSessions,
  within,
} from "./fault_support.ts";

let server: TestServer;
let admin: Connection;

const KILL_CODES = new Set(["57P01", "CONNECTION_LOST", "CONNECTION_CLOSED", "ECONNRESET", "EPIPE"]);

describe("Faults: backends terminated by the server", { timeout: 60_000 }, () => {
  before(async () => {
    server = await getTestServer();
    admin = await connect(server.dsn, { applicationName: "fault-admin" });
  });

  after(async () => {
    await admin.close();
  });

  it(
    "random pg_terminate_backend of idle and busy connections under a 40-task load: typed errors, no leak, no lost write",
    { timeout: 30_000 },
    async () => {
      const trap = trapUnhandledRejections();
      const app = `fault-kill-${process.pid}-${Date.now()}`;
      const ledger = await Ledger.create(admin, "ledger_terminate");
      const pool = await createPool(server.dsn, {
        minSize: 4,
        maxSize: 8,
        applicationName: app,
        onWarning: () => {},
      });
      try {
        const load = startLoad(40, (w, i) => {
          switch (i % 3) {
            case 0:
              return ledger.write((sql, args) => pool.execute(sql, args, { timeout: 3 }), `w${w}`);
            case 1:
              return pool.fetchVal("SELECT pg_sleep(0.02)::text || $1", [String(w)], { timeout: 3 });
            default:
              return (async () => {
                await using con = await pool.acquire({ timeout: 3 });
                await con.fetchVal("SELECT 1");
                await sleep(5); // held while idle on the server
                await con.fetchVal("SELECT 2");
              })();
          }
        });
        await waitFor("the load to start", () => load.tally.ok >= 100, 5000);
        // Kill until both kinds were hit a few times; each kill comes once the pool has served the
        // load since the previous one (the event), not after a fixed pause. The clock only caps it.
        const kills = { idle: 0, active: 0 };
        const until = Date.now() + 15_000;
        while ((kills.idle < 3 || kills.active < 3) && Date.now() < until) {
          const okBefore = load.tally.ok;
          await waitFor("the load to progress between kills", () => load.tally.ok >= okBefore + 10, 5000);
          const rows = await admin.fetch<{ pid: number; state: string }>(
            "SELECT pid, state FROM pg_stat_activity WHERE application_name = $1 AND state IN ('idle', 'active')",
            [app],
          );
          const victim = rows[Math.floor(Math.random() * rows.length)];
          if (victim !== undefined && await admin.fetchVal("SELECT pg_terminate_backend($1)", [victim.pid])) {
            if (victim.state === "idle") kills.idle++;
            else kills.active++;
          }
        }
        const lastKill = Date.now();
        await waitFor("a success after the last kill", () => load.lastOkAt() > lastKill, 5000);
        const recovered = load.lastOkAt() - lastKill;
        const okRecovered = load.tally.ok;
        await waitFor("the load to keep going after recovery", () => load.tally.ok >= okRecovered + 30, 5000);
        await load.stop();
        assert.ok(
          kills.idle > 0 && kills.active > 0,
          `killed idle and busy backends: ${JSON.stringify(kills)}`,
        );
        for (const code of load.tally.codes()) {
          assert.ok(KILL_CODES.has(code), `unexpected error ${code} (${load.tally})`);
        }
        assert.ok(load.tally.failed > 0, "the kills were felt");
        await assertPoolInvariants(pool, { label: "terminate_backend" });
        // The server has exactly the sessions the pool thinks it has.
        await waitForServerSessions(admin, app, pool, 3000);
        const report = await ledger.verify(admin);
        note(
          "pg_terminate_backend",
          `killed ${kills.idle} idle + ${kills.active} busy; first success ${recovered} ms after the last kill; ` +
            `load ${load.tally}; ledger ${describeReport(report)}`,
        );
        assertLedgerClean(report);
      } finally {
        await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
        trap.check();
      }
    },
  );
});

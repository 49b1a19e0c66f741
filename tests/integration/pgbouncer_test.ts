/**
 * The pool behind a real PgBouncer (issue 13, point 2), started by the harness on loopback in front
 * of the test server (tests/support/pgbouncer.ts): in transaction pool mode with
 * `poolMode: "transaction"` (unnamed statements, no session reset, listeners and COPY refused) and
 * in session pool mode (the normal reset), a 100-task load in both, and a PgBouncer restart under
 * load. Every suite runs on both drivers.
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DriverName, PoolConnection } from "../../mod.ts";
import { pgBouncerAvailable, type PgBouncerInstance, startPgBouncer } from "../support/pgbouncer.ts";
import { skipTest } from "../support/skip.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  rejection,
  waitFor,
  warningLog,
  within,
} from "./pool_support.ts";
import { codeOf, note, sleep, startLoad, trapUnhandledRejections } from "../faults/fault_support.ts";

const DRIVERS: readonly DriverName[] = ["postgres", "native"];

/** PgBouncers shared by the tests of this file (the restart test starts its own). */
const shared = new Map<string, Promise<PgBouncerInstance>>();

function bouncer(poolMode: "transaction" | "session"): Promise<PgBouncerInstance> {
  let b = shared.get(poolMode);
  // A small server pool: the pool's connections must share server sessions for the tests to mean anything.
  if (b === undefined) shared.set(poolMode, b = startPgBouncer({ poolMode, poolSize: 3 }));
  return b;
}

after(async () => {
  for (const b of shared.values()) await (await b.catch(() => undefined))?.destroy();
});

let adminPromise: Promise<Admin> | undefined;
function admin(): Promise<Admin> {
  return adminPromise ??= getTestServer().then((s) => new Admin(s));
}
after(async () => {
  await (await adminPromise)?.close();
});

/** Codes a load may see while PgBouncer goes away and comes back. */
const OUTAGE_CODES = new Set([
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

function unsupported(method: string): (e: unknown) => boolean {
  return (e) =>
    codeOf(e) === "UNSUPPORTED" && e instanceof Error && e.message.includes(`${method}()`) &&
    e.message.includes("transaction pool mode");
}

for (const driver of DRIVERS) {
  describe(`Pool behind PgBouncer in transaction pool mode (${driver} driver)`, { timeout: 120_000 }, () => {
    const table = `pgb_tx_${driver}`;

    it("Pool in transaction mode runs parameterized queries, the same text over and over, from many connections", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 8 });
      const sums = await within(
        20_000,
        Promise.all(
          Array.from({ length: 400 }, (_, i) => pool.fetchVal<number>("SELECT $1::int + $2::int", [i, 1])),
        ),
        "400 one-shots",
      );
      assert.deepEqual(sums, Array.from({ length: 400 }, (_, i) => i + 1));
      // The same text again on one checkout, across transactions that PgBouncer gives different servers.
      await using con = await pool.acquire();
      for (let i = 0; i < 30; i++) {
        assert.equal(await con.fetchVal("SELECT $1::text || 'x'", [String(i)]), `${i}x`);
        assert.deepEqual(await con.fetch("SELECT $1::int AS n", [i]), [{ n: i }]);
      }
      assert.equal(pool.getSize() > 3, true, "more client connections than PgBouncer's server pool");
    });

    // The control: what happens without poolMode "transaction" — statements prepared on one server session
    // are run on another, and fail. (It proves the test above would catch named statements.) Native driver
    // only: postgres.js answers "prepared statement does not exist" by preparing again, which hides it.
    if (driver === "native") {
      it("Pool in session mode (named statements) through a transaction pooler fails the way poolMode prevents", async (t) => {
        if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
        const b = await bouncer("transaction");
        await using pool = await createTestPool(b.dsn, { driver, maxSize: 8, onWarning: () => {} });
        const results = await within(
          20_000,
          Promise.allSettled(
            Array.from({ length: 400 }, (_, i) => pool.fetchVal<number>("SELECT $1::int * 2", [i])),
          ),
          "400 one-shots",
        );
        // A statement's own failure, or (pipelined one-shots) the failed reset that closed the connection
        // under it: a one-shot queued behind a failed reset rejects CONNECTION_LOST with the reset's error as
        // its cause.
        const codes = new Set(
          results.flatMap((r) =>
            r.status === "rejected"
              ? [codeOf(r.reason), codeOf((r.reason as { cause?: unknown }).cause ?? r.reason)]
              : []
          ),
        );
        note(`named statements through a transaction pooler (${driver})`, `errors: ${[...codes].join(", ")}`);
        assert.ok(
          codes.has("26000") || codes.has("42P05"),
          `prepared-statement errors expected, got ${[...codes]}`,
        );
      });
    }

    it("PoolConnection.transaction() commits and rolls back through PgBouncer; SET LOCAL does not outlive it", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      const a = await admin();
      await a.execute(`DROP TABLE IF EXISTS ${table}`);
      await a.execute(`CREATE TABLE ${table} (id int PRIMARY KEY, note text)`);
      await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 4 });
      await using con = await pool.acquire();
      const inside = await con.transaction(async (tx) => {
        await tx.execute(`INSERT INTO ${table} VALUES ($1, $2)`, [1, "committed"]);
        await tx.execute("SET LOCAL statement_timeout = '123s'");
        await tx.execute("SELECT set_config('pgpool.tag', 'mine', true)");
        return [
          await tx.fetchVal<string>("SHOW statement_timeout"),
          await tx.fetchVal<number>("SELECT pg_backend_pid()"),
          await tx.fetchVal<number>("SELECT pg_backend_pid()"),
        ] as const;
      });
      assert.equal(inside[0], "123s");
      assert.equal(inside[1], inside[2], "one server session for the whole transaction");
      const failure = await rejection(con.transaction(async (tx) => {
        await tx.execute(`INSERT INTO ${table} VALUES ($1, $2)`, [2, "rolled back"]);
        await tx.execute(`INSERT INTO ${table} VALUES ($1, $2)`, [1, "duplicate"]);
      }));
      assert.equal(codeOf(failure), "23505");
      assert.deepEqual(await a.value(`SELECT string_agg(note, ',' ORDER BY id) FROM ${table}`), "committed");
      // The transaction-local settings ended with it, whichever server session PgBouncer lends next.
      for (let i = 0; i < 10; i++) {
        const [row] = await pool.fetch<{ timeout: string; tag: string | null }>(
          "SELECT current_setting('statement_timeout') AS timeout, current_setting('pgpool.tag', true) AS tag",
        );
        assert.equal(row!.timeout, "0");
        assert.ok(row!.tag === null || row!.tag === "", `tag ${row!.tag}`);
      }
    });

    it("Pool.release() of a checkout inside a transaction through PgBouncer rolls it back and warns RELEASED_IN_TRANSACTION", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      const a = await admin();
      const name = `${table}_released`;
      await a.execute(`DROP TABLE IF EXISTS ${name}`);
      await a.execute(`CREATE TABLE ${name} (id int)`);
      const warnings = warningLog();
      await using pool = await createTestPool(b.dsn, {
        driver,
        poolMode: "transaction",
        maxSize: 2,
        onWarning: warnings.onWarning,
      });
      const con = await pool.acquire();
      await con.execute("BEGIN");
      await con.execute(`INSERT INTO ${name} VALUES (1)`);
      const pid = await con.fetchVal<number>("SELECT pg_backend_pid()");
      await within(5000, pool.release(con), "release()");
      assert.deepEqual(warnings.codes(), ["RELEASED_IN_TRANSACTION"]);
      // The server session PgBouncer lent is out of the transaction and nothing was committed.
      await waitFor(
        "the lent server session to leave its transaction",
        async () => (await a.value(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [pid])) === "idle",
      );
      assert.equal(await a.value(`SELECT count(*)::int FROM ${name}`), 0);
      assert.equal(await pool.fetchVal("SELECT 7"), 7);
      assert.equal(pool.getIdleSize(), pool.getSize());
    });

    it("PoolConnection listeners and copy methods reject with UNSUPPORTED through PgBouncer; the pool's one-shot copy too", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 2 });
      {
        await using con: PoolConnection = await pool.acquire();
        await assert.rejects(con.addListener("jobs", () => {}), unsupported("addListener"));
        const output = (): void => {};
        await assert.rejects(con.copyFromTable("pg_class", { output }), unsupported("copyFromTable"));
        await assert.rejects(
          con.copyFromQuery("SELECT 1", undefined, { output }),
          unsupported("copyFromQuery"),
        );
        await assert.rejects(con.copyToTable("t", { source: "1\n" }), unsupported("copyToTable"));
        await assert.rejects(
          con.copyRecordsToTable("t", { records: [[1]] }),
          unsupported("copyRecordsToTable"),
        );
        assert.equal(await con.fetchVal("SELECT 1"), 1);
      }
      await assert.rejects(pool.copyToTable("t", { source: "1\n" }), unsupported("copyToTable"));
      assert.equal(pool.getIdleSize(), pool.getSize());
    });

    it("Pool in transaction mode runs executeMany, fetchMany and fetchRow through PgBouncer, all or nothing", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      const a = await admin();
      const name = `${table}_many`;
      await a.execute(`DROP TABLE IF EXISTS ${name}`);
      await a.execute(`CREATE TABLE ${name} (id int PRIMARY KEY)`);
      await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 4 });
      await pool.executeMany(`INSERT INTO ${name} VALUES ($1)`, [[1], [2], [3]]);
      const failed = await rejection(pool.executeMany(`INSERT INTO ${name} VALUES ($1)`, [[4], [1], [5]]));
      assert.equal(codeOf(failed), "23505");
      const rows = await pool.fetchMany<{ id: number }>(`INSERT INTO ${name} VALUES ($1) RETURNING id`, [
        [6],
        [7],
      ]);
      assert.deepEqual(rows.map((r) => r.id), [6, 7]);
      assert.deepEqual(await pool.fetchRow(`SELECT count(*)::int AS n FROM ${name}`), { n: 5 });
      assert.equal(await pool.fetchRow(`SELECT id FROM ${name} WHERE id = $1`, [4]), null);
    });

    it("Pool in transaction mode cancels a query past its timeout through PgBouncer; the pool stays usable", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 2 });
      const started = Date.now();
      const err = await within(10_000, rejection(pool.execute("SELECT pg_sleep(30)", [], { timeout: 0.3 })));
      assert.equal(codeOf(err), "QUERY_TIMEOUT");
      assert.ok(Date.now() - started < 5000, "the cancel went through PgBouncer");
      await using con = await pool.acquire();
      const err2 = await within(10_000, rejection(con.execute("SELECT pg_sleep(30)", [], { timeout: 0.3 })));
      assert.equal(codeOf(err2), "QUERY_TIMEOUT");
      assert.equal(await con.fetchVal("SELECT $1::int", [5]), 5);
      // No server session is left running the sleep.
      const a = await admin();
      await waitFor(
        "the cancelled sleeps to end on the server",
        async () =>
          (await a.value<number>(
            "SELECT count(*)::int FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
          )) === 0,
      );
    });

    it("Pool with pool_mode=transaction in the DSN behaves as poolMode transaction", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("transaction");
      const url = new URL(b.dsn);
      url.searchParams.set("pool_mode", "transaction");
      await using pool = await createTestPool(url.toString(), { driver, maxSize: 8 });
      const sums = await Promise.all(
        Array.from({ length: 200 }, (_, i) => pool.fetchVal("SELECT $1::int + 1", [i])),
      );
      assert.deepEqual(sums, Array.from({ length: 200 }, (_, i) => i + 1));
      await assert.rejects(pool.copyToTable("t", { source: "1\n" }), unsupported("copyToTable"));
    });
  });

  describe(`Pool behind PgBouncer in session pool mode (${driver} driver)`, { timeout: 120_000 }, () => {
    it("Pool.release() through PgBouncer in session mode resets the session: a SET is gone at the next checkout", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer("session");
      await using pool = await createTestPool(b.dsn, { driver, maxSize: 1 });
      let pid: number | null;
      {
        await using con = await pool.acquire();
        await con.execute("SET work_mem = '7MB'");
        await con.execute("SELECT set_config('pgpool.tag', 'mine', false)");
        assert.equal(await con.fetchVal("SHOW work_mem"), "7MB");
        pid = await con.fetchVal<number>("SELECT pg_backend_pid()");
      }
      await using con = await pool.acquire();
      assert.equal(await con.fetchVal("SELECT pg_backend_pid()"), pid, "the same server session");
      assert.equal(await con.fetchVal("SHOW work_mem"), "4MB");
      const tag = await con.fetchVal<string | null>("SELECT current_setting('pgpool.tag', true)");
      assert.ok(tag === null || tag === "", `tag ${tag}`);
      // Listeners and COPY work in session mode.
      const onJob = (): void => {};
      await con.addListener("jobs", onJob);
      await con.removeListener("jobs", onJob);
      let out = "";
      await con.copyFromQuery("SELECT 1", undefined, {
        output: (c) => void (out += new TextDecoder().decode(c)),
      });
      assert.equal(out, "1\n");
    });
  });

  describe(`Pool behind PgBouncer under load (${driver} driver)`, { timeout: 120_000 }, () => {
    for (const poolMode of ["transaction", "session"] as const) {
      it(`Pool one-shots and checkouts from 100 tasks through PgBouncer in ${poolMode} mode all complete with correct answers`, async (t) => {
        if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
        const b = await bouncer(poolMode);
        // In session mode PgBouncer holds a server session per client connection: the pool fits its server pool.
        await using pool = await createTestPool(b.dsn, {
          driver,
          poolMode,
          maxSize: poolMode === "transaction" ? 10 : 3,
        });
        const started = Date.now();
        const tasks = Array.from({ length: 100 }, async (_, task) => {
          let done = 0;
          for (let i = 0; i < 10; i++) {
            if (i % 2 === 0) {
              assert.equal(
                await pool.fetchVal("SELECT $1::int * 1000 + $2::int", [task, i]),
                task * 1000 + i,
              );
            } else {
              await using con = await pool.acquire();
              const got = await con.transaction(async (tx) => [
                await tx.fetchVal<number>("SELECT $1::int", [task]),
                await tx.fetchVal<string>("SELECT $1::text", [`t${task}-${i}`]),
              ]);
              assert.deepEqual(got, [task, `t${task}-${i}`]);
            }
            done++;
          }
          return done;
        });
        const counts = await within(60_000, Promise.all(tasks), "100 tasks");
        assert.equal(counts.reduce((x, y) => x + y, 0), 1000);
        note(
          `100 tasks through PgBouncer (${poolMode}, ${driver})`,
          `1000 operations in ${Date.now() - started} ms`,
        );
        assert.equal(pool.getIdleSize(), pool.getSize());
      });
    }

    it("Pool in transaction mode survives a PgBouncer restart under a 100-task load", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const trap = trapUnhandledRejections();
      await using b = await startPgBouncer({ poolMode: "transaction", poolSize: 5 });
      const pool = await createTestPool(b.dsn, {
        driver,
        poolMode: "transaction",
        minSize: 5,
        maxSize: 10,
        connectTimeout: 2,
        onWarning: () => {},
      });
      try {
        const load = startLoad(100, async (w, i) => {
          if (i % 2 === 0) {
            assert.equal(await pool.fetchVal("SELECT $1::int", [w], { timeout: 3 }), w);
          } else {
            const con = await pool.acquire({ timeout: 3 });
            try {
              const got = await con.transaction(async (tx) => await tx.fetchVal("SELECT $1::int + 1", [w]));
              assert.equal(got, w + 1);
            } finally {
              await pool.release(con);
            }
          }
        });
        await waitFor("the load to get going", () => load.tally.ok >= 300, 10_000);
        const down = Date.now();
        await b.restart();
        const up = Date.now();
        await waitFor("a successful operation after the restart", () => load.lastOkAt() > up, 15_000);
        const recovered = load.lastOkAt() - up;
        const okAtUp = load.tally.ok;
        await waitFor("the load to carry on", () => load.tally.ok >= okAtUp + 300, 10_000);
        await load.stop();
        for (const code of load.tally.codes()) {
          assert.ok(OUTAGE_CODES.has(code), `unexpected error code ${code} (${load.tally})`);
        }
        assert.ok(load.tally.failed > 0, "the restart was felt");
        note(
          `PgBouncer restart (${driver})`,
          `down→up ${up - down} ms; first success ${recovered} ms after; load ${load.tally}`,
        );
        assert.ok(recovered < 5000, `recovered ${recovered} ms after PgBouncer was back`);
        // Afterwards everything works: every slot can be used, and all come back.
        const cons = await within(
          10_000,
          Promise.all(Array.from({ length: 10 }, () => pool.acquire({ timeout: 5 }))),
        );
        assert.deepEqual(
          await Promise.all(cons.map((c, i) => c.fetchVal("SELECT $1::int", [i]))),
          Array.from({ length: 10 }, (_, i) => i),
        );
        await Promise.all(cons.map((c) => pool.release(c)));
        assert.equal(pool.getIdleSize(), pool.getSize());
        await sleep(0);
      } finally {
        await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
        trap.check();
      }
    });
  });
}

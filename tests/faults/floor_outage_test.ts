/**
 * The kept floor during a server outage: while the server is down for about
 * 3 s, the floor's connection attempts stay within its backoff budget (no
 * connect storm), and the floor is back once the server is.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type ConnectOptions, Pool } from "../../mod.ts";
import { postgresAvailable, startPostgres } from "../support/pg_server.ts";
import { note, sleep, waitFor, within } from "./fault_support.ts";
import { skipTest } from "../support/skip.ts";

/**
 * The most floor attempts that fit in `ms` after the first failure: up to
 * `maxConcurrentConnects` at once, then one per pause, each pause at least half
 * of 100 ms doubling to a cap of 5 s.
 */
function attemptBudget(ms: number, concurrent: number): number {
  let n = concurrent;
  let t = 0;
  for (let k = 0;; k++) {
    t += Math.min(5000, 100 * 2 ** k) / 2;
    if (t > ms) return n;
    n++;
  }
}

describe("Faults: the kept floor during a server outage", { timeout: 60_000 }, () => {
  it(
    "Pool floor attempts stay within the backoff budget while the server is down for 3 s, and the floor comes back",
    { timeout: 45_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres();
      const attempts: number[] = [];
      const pool = new Pool(pg.dsn, {
        minSize: 3,
        maxSize: 5,
        connectTimeout: 2,
        onWarning: () => {},
        connect: (options: ConnectOptions) => {
          attempts.push(Date.now());
          return connect(options);
        },
      });
      await pool.init();
      try {
        assert.equal(pool.getSize(), 3);
        const down = Date.now();
        await pg.stop(); // a fast shutdown: the server terminates the sessions
        await sleep(3000); // the outage itself is what is measured
        await pg.start();
        const up = Date.now();
        const during = attempts.filter((at) => at >= down && at <= up);
        const outageMs = up - down;
        const budget = attemptBudget(outageMs, 2);
        await waitFor("the floor to come back", () => pool.getSize() === 3, 10_000);
        const backAfter = Date.now() - up;
        note(
          "floor outage",
          `server down ${outageMs} ms: ${during.length} floor attempts (budget ${budget}); ` +
            `floor back ${backAfter} ms after the server`,
        );
        assert.ok(during.length >= 3, `the floor kept trying (${during.length} attempts)`);
        assert.ok(during.length <= budget, `${during.length} attempts in ${outageMs} ms, budget ${budget}`);
        const stats = pool.stats();
        assert.ok(stats.connectErrorCount >= during.length - 1);
        assert.equal(stats.closeCount.broken, 3);
        assert.equal(await pool.fetchVal("SELECT 1"), 1);
      } finally {
        await within(10_000, pool.close({ timeout: 5 }).catch(() => pool.terminate()), "close()");
      }
    },
  );
});

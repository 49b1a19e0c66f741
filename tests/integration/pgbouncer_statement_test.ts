/**
 * Prepared statements and cursors behind a real PgBouncer in transaction pool mode
 * (`poolMode: "transaction"`, so `prepare: false`), on both drivers: a cursor lives inside its
 * transaction, which PgBouncer keeps on one server session; a prepared statement runs unnamed on
 * the native driver and is refused with `UNSUPPORTED` by the postgres.js driver (it can describe
 * only through a named statement).
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DriverName } from "../../mod.ts";
import { pgBouncerAvailable, type PgBouncerInstance, startPgBouncer } from "../support/pgbouncer.ts";
import { skipTest } from "../support/skip.ts";
import { createTestPool, rejection } from "./pool_support.ts";

const DRIVERS: readonly DriverName[] = ["postgres", "native"];

let shared: Promise<PgBouncerInstance> | undefined;
function bouncer(): Promise<PgBouncerInstance> {
  return shared ??= startPgBouncer({ poolMode: "transaction", poolSize: 3 });
}

after(async () => {
  await (await shared?.catch(() => undefined))?.destroy();
});

for (const driver of DRIVERS) {
  describe(`Prepared statements and cursors behind PgBouncer in transaction pool mode (${driver} driver)`, {
    timeout: 120_000,
  }, () => {
    it("Cursor iterates inside a transaction through PgBouncer while other connections share its servers", async (t) => {
      if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
      const b = await bouncer();
      await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 6 });
      const sums = await Promise.all(Array.from({ length: 6 }, async (_, k) => {
        await using con = await pool.acquire();
        return await con.transaction(async (tx) => {
          let sum = 0;
          const rows = tx.cursor<{ n: number }>(
            "SELECT generate_series(1, $1::int) + $2::int AS n",
            [500, k],
            {
              prefetch: 40,
            },
          );
          for await (const row of rows) sum += row.n;
          return sum;
        });
      }));
      assert.deepEqual(sums, Array.from({ length: 6 }, (_, k) => 125_250 + 500 * k));
    });

    it(
      driver === "native"
        ? "PreparedStatement runs unnamed through PgBouncer, across transactions on different servers"
        : "PreparedStatement is UNSUPPORTED on the postgres.js driver through PgBouncer (prepare false)",
      async (t) => {
        if (!pgBouncerAvailable()) return skipTest(t, "PgBouncer is not installed");
        const b = await bouncer();
        await using pool = await createTestPool(b.dsn, { driver, poolMode: "transaction", maxSize: 4 });
        await using con = await pool.acquire();
        if (driver === "postgres") {
          const error = await rejection(con.prepare("SELECT $1::int AS n"));
          assert.equal(error.code, "UNSUPPORTED");
          assert.equal(await con.fetchVal("SELECT $1::int", [1]), 1, "the connection stays usable");
          return;
        }
        const stmt = await con.prepare("SELECT $1::int * 2 AS doubled");
        assert.deepEqual(stmt.getAttributes().map((a) => a.type.name), ["int4"]);
        // Other checkouts keep PgBouncer's servers busy in between, so runs land on different ones.
        const others = Array.from({ length: 3 }, () => pool.fetchVal("SELECT pg_sleep(0.01)"));
        for (let i = 0; i < 20; i++) assert.equal(await stmt.fetchVal([i]), 2 * i);
        await Promise.all(others);
      },
    );
  });
}

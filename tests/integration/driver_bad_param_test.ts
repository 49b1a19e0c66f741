/**
 * Parameters a driver cannot send: each one fails on its own, promptly, and the connection goes on
 * answering. Regression: on the postgres.js driver the fourth invalid date in a row on one connection
 * never settled (postgres.js rejected the wrong statement when a serializer threw during `Bind`).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DriverConnection } from "../../src/core/driver.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { DRIVERS } from "../support/drivers.ts";
import { codeOf } from "../support/ledger.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

/** Rejects when `p` has not settled within 5 s: a hang fails the test instead of stalling the run. */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within 5 s`)), 5000);
  });
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

for (const { name, create } of DRIVERS) {
  describe(`${name}: parameters that cannot be sent`, () => {
    let server: TestServer;
    let con: DriverConnection;
    before(async () => {
      server = await getTestServer();
      con = await create(nodeConnector).connect({ dsn: server.dsn });
    });
    after(() => con?.terminate());

    it(`${name}: ten invalid dates in a row each reject with a server error and the connection still answers`, async () => {
      for (let i = 0; i < 10; i++) {
        const value = i % 2 === 0 ? "not a date" : new Date(Number.NaN);
        const error = await within(
          con.query("SELECT $1::timestamptz AS v", [value]).then(() => undefined, (e: unknown) => e),
          `invalid date #${i + 1}`,
        );
        assert.equal(codeOf(error), "22007", `invalid date #${i + 1}: ${String(error)}`);
      }
      const ok = await within(con.query("SELECT $1::int AS v", [7]), "the query after them");
      assert.deepEqual(ok.rows, [{ v: 7 }]);
    });

    it(`${name}: a special date value the server knows (infinity) is sent as it is`, async () => {
      const result = await within(con.query("SELECT $1::timestamptz::text AS v", ["infinity"]), "infinity");
      assert.deepEqual(result.rows, [{ v: "infinity" }]);
    });

    it(`${name}: invalid dates pipelined between valid queries fail alone; every valid query gets its own answer`, async () => {
      const runs = Array.from(
        { length: 12 },
        (_, i) =>
          i % 3 === 1
            ? con.query("SELECT $1::timestamptz AS v", ["garbage"]).then(
              () => "resolved",
              (e: unknown) => codeOf(e),
            )
            : con.query("SELECT $1::int AS v", [i]).then((r) => r.rows[0]!.v),
      );
      const got = await within(Promise.all(runs), "the pipelined queries");
      assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => i % 3 === 1 ? "22007" : i));
    });

    it(`${name}: a value no serializer accepts (a cyclic object for jsonb) rejects without running the statement`, async () => {
      await con.query("CREATE TEMP TABLE IF NOT EXISTS bad_param_t (v jsonb)", []);
      const loop: Record<string, unknown> = {};
      loop.self = loop;
      for (let i = 0; i < 5; i++) {
        const error = await within(
          con.query("INSERT INTO bad_param_t VALUES ($1)", [loop]).then(() => undefined, (e: unknown) => e),
          `cyclic value #${i + 1}`,
        );
        assert.ok(error instanceof Error, `cyclic value #${i + 1} rejects`);
      }
      const count = await within(con.query("SELECT count(*)::int AS n FROM bad_param_t", []), "the count");
      assert.deepEqual(count.rows, [{ n: 0 }], "nothing was inserted");
    });
  });
}

/**
 * `DriverConnection.describe()` on both drivers against a real server: the
 * parameter and column types, what stays prepared on the server (never more
 * than the statement cache's bound), refusals, and runs of a described text.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ConnectOptions, DriverConnection } from "../../src/core/driver.ts";
import { PostgresError } from "../../src/core/errors.ts";
import { DRIVERS, type DriverUnderTest } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

let server: TestServer;
const open: DriverConnection[] = [];

async function connect(under: DriverUnderTest, options: ConnectOptions = {}): Promise<DriverConnection> {
  const con = await under.create(nodeConnector).connect({ dsn: server.dsn, sslmode: "disable", ...options });
  open.push(con);
  return con;
}

/** The texts prepared on this connection's backend that mention `marker`. */
async function prepared(con: DriverConnection, marker: string): Promise<string[]> {
  const result = await con.query(
    `SELECT statement FROM pg_prepared_statements WHERE strpos(statement, '${marker}') > 0 ORDER BY statement`,
    [],
  );
  return result.rows.map((r) => String(r.statement));
}

for (const under of DRIVERS) {
  const native = under.name === "NativeDriver";
  describe(`${under.name}: describe()`, () => {
    before(async () => {
      server = await getTestServer();
    });
    after(() => {
      for (const con of open) con.terminate();
    });

    it(`${under.name}.describe() reports parameter and column type oids`, async () => {
      const con = await connect(under);
      const d = await con.describe!("SELECT $1::int8 AS id, $2::text AS name, true AS ok WHERE $3::int > 0");
      assert.deepEqual(d.parameterTypes, [20, 25, 23]);
      assert.deepEqual(d.columns, [{ name: "id", typeOid: 20 }, { name: "name", typeOid: 25 }, {
        name: "ok",
        typeOid: 16,
      }]);
      const none = await con.describe!("SET application_name = 'describe'");
      assert.deepEqual(none, { parameterTypes: [], columns: [] });
    });

    it(`${under.name}.describe() leaves at most the statement cache's bound prepared on the server`, async () => {
      const con = await connect(under, { statementCacheSize: 2 });
      for (let i = 0; i < 5; i++) {
        const sql = `SELECT $1::int + ${i} AS describe_bound`;
        await con.describe!(sql);
        await con.describe!(sql);
        assert.deepEqual((await con.query(sql, [1])).rows, [{ describe_bound: 1 + i }]);
      }
      const left = await prepared(con, "describe_bound");
      // The native engine keeps described texts in its cache; postgres.js deallocates its describe
      // statement and prepares the texts it runs again (none here: each ran once).
      if (native) assert.equal(left.length, 2);
      else assert.deepEqual(left, []);
    });

    it(`${under.name}.describe() then runs of the same text bind the server's parameter types`, async () => {
      const con = await connect(under);
      const sql = "SELECT $1::jsonb -> 'a' AS a, $2::text[] AS tags, $3::int + 1 AS n";
      await con.describe!(sql);
      for (let i = 0; i < 3; i++) {
        const result = await con.query(sql, [{ a: i }, ["x", "y"], i]);
        assert.deepEqual(result.rows, [{ a: i, tags: ["x", "y"], n: i + 1 }]);
      }
    });

    it(`${under.name}.describe() of a statement the server refuses rejects with its error; the connection stays usable`, async () => {
      const con = await connect(under);
      await assert.rejects(con.describe!("SELEC 1"), (e: unknown) => {
        assert.ok(e instanceof PostgresError);
        assert.equal(e.code, "42601");
        return true;
      });
      assert.deepEqual((await con.query("SELECT $1::int AS n", [1])).rows, [{ n: 1 }]);
      const d = await con.describe!("SELECT 1 AS one");
      assert.deepEqual(d.columns, [{ name: "one", typeOid: 23 }]);
    });

    it(
      `${under.name}.describe() with prepare false ${
        native ? "describes the unnamed statement" : "is UNSUPPORTED"
      }`,
      async () => {
        const con = await connect(under, { prepare: false });
        const sql = "SELECT $1::int AS describe_unnamed";
        assert.equal(
          con.capabilities?.describeUnnamed,
          native,
          "the capability flag says what the driver does",
        );
        if (con.capabilities?.describeUnnamed) {
          const d = await con.describe!(sql);
          assert.deepEqual(d.parameterTypes, [23]);
          assert.deepEqual((await con.query(sql, [3])).rows, [{ describe_unnamed: 3 }]);
          assert.deepEqual(await prepared(con, "describe_unnamed"), []);
        } else {
          await assert.rejects(con.describe!(sql), { code: "UNSUPPORTED" });
          assert.deepEqual((await con.query(sql, [3])).rows, [{ describe_unnamed: 3 }]);
        }
      },
    );
  });
}

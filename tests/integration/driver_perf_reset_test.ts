/**
 * A pipelined reset asked for while nothing else is queued on the connection
 * is written at once, without going through the queue of operations. These
 * tests pin down that it still waits for whatever is queued or running, or
 * for a cancel under way, and that on its own it changes the session exactly
 * as the queued reset did.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DriverConnection } from "../../src/core/driver.ts";
import { createPostgresDriver } from "../../src/drivers/postgresjs/driver.ts";
import type { Connector } from "../../src/runtime/transport.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { runtimeConnector } from "../support/tls_wire.ts";

const { connector }: { connector: Connector } = await runtimeConnector();
const driver = createPostgresDriver(connector);

describe("PostgresConnection pipelined reset written at once", () => {
  let server: TestServer;
  let admin: DriverConnection;
  const open: DriverConnection[] = [];

  async function connect(): Promise<DriverConnection> {
    const con = await driver.connect({ dsn: server.dsn, applicationName: "perf_reset" });
    open.push(con);
    return con;
  }

  before(async () => {
    server = await getTestServer();
    admin = await driver.connect({ dsn: server.dsn });
  });

  after(() => {
    for (const con of open) con.terminate();
    admin?.terminate();
  });

  it("a reset asked for while a statement runs waits for it, then resets the session", async () => {
    const con = await connect();
    await con.query("SET application_name = 'changed'", []);
    const before = con.queryCount;
    const running = con.query("SELECT current_setting('application_name') AS a, pg_sleep(0.05)", []);
    const reset = con.reset({ query: true, pipeline: true });
    assert.equal((await running).rows[0]!.a, "changed", "the reset did not overtake the running statement");
    await reset;
    const after = await con.query("SELECT current_setting('application_name') AS a", []);
    assert.equal(after.rows[0]!.a, "perf_reset");
    assert.equal(con.queryCount, before + 3);
    assert.equal(con.isClosed(), false);
  });

  it("a reset with nothing after it still reaches the server (an advisory lock is let go)", async () => {
    const con = await connect();
    await con.query("SELECT pg_advisory_lock(424242)", []);
    await con.reset({ query: true, pipeline: true });
    const deadline = Date.now() + 2000;
    let got = false;
    while (!got && Date.now() < deadline) {
      got = (await admin.query("SELECT pg_try_advisory_lock(424242) AS ok", [])).rows[0]!.ok as boolean;
      if (!got) await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(got, true, "the lock was let go without another statement on the connection");
    await admin.query("SELECT pg_advisory_unlock(424242)", []);
  });

  it("a reset inside a transaction rolls it back before the next statement", async () => {
    const con = await connect();
    await con.query("BEGIN", []);
    await con.query("CREATE TEMP TABLE perf_reset_tx (x int)", []);
    assert.equal(con.transactionStatus, "transaction");
    await con.reset({ query: true, pipeline: true });
    assert.equal(con.transactionStatus, "idle");
    const { rows } = await con.query(
      "SELECT now() <> statement_timestamp() AS xact, to_regclass('pg_temp.perf_reset_tx')::text AS t",
      [],
    );
    assert.deepEqual(rows, [{ xact: false, t: null }]);
  });

  it("a reset right after a timed-out statement waits for the cancel, and the connection stays usable", async () => {
    const con = await connect();
    for (let i = 0; i < 3; i++) {
      await assert.rejects(con.query("SELECT pg_sleep(5)", [], { timeout: 0.05 }), { code: "QUERY_TIMEOUT" });
      const reset = con.reset({ query: true, pipeline: true });
      const result = await con.query("SELECT $1::int AS v", [i]);
      await reset;
      assert.deepEqual(result.rows, [{ v: i }], `round ${i}`);
    }
    assert.equal(con.isClosed(), false);
  });

  it("many resets and statements in a row each get their own answer", async () => {
    const con = await connect();
    for (let i = 0; i < 200; i++) {
      await con.reset({ query: true, pipeline: true });
      const { rows } = await con.query("SELECT $1::int AS v", [i]);
      assert.deepEqual(rows, [{ v: i }]);
    }
    assert.equal(con.isClosed(), false);
  });
});

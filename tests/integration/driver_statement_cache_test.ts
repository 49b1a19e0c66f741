/**
 * How many named prepared statements a connection keeps. postgres.js keeps
 * every statement it prepared for the life of the connection (and so does the
 * server); the driver prepares a bounded number of texts per connection, only
 * texts that come back, and runs the rest unnamed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ConnectOptions, DriverConnection } from "../../src/core/driver.ts";
import { DRIVERS, type DriverUnderTest } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { MAX_CACHEABLE_LENGTH, StatementCache } from "../../src/drivers/statement_cache.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

let server: TestServer;
const open: DriverConnection[] = [];

async function connect(under: DriverUnderTest, options: ConnectOptions = {}): Promise<DriverConnection> {
  const con = await under.create(nodeConnector).connect({
    dsn: server.dsn,
    sslmode: "disable",
    ...options,
  });
  open.push(con);
  return con;
}

/** The texts prepared on this connection's backend (a query without parameters is never prepared). */
async function prepared(con: DriverConnection): Promise<string[]> {
  const result = await con.query("SELECT statement FROM pg_prepared_statements ORDER BY statement", []);
  return result.rows.map((r) => String(r.statement));
}

/** Runs `count` distinct parameterized texts, each `times` times, checking every answer. */
async function runTexts(con: DriverConnection, count: number, times: number): Promise<void> {
  for (let t = 0; t < times; t++) {
    for (let i = 0; i < count; i++) {
      const result = await con.query(`SELECT $1::int + ${i} AS v`, [t]);
      assert.deepEqual(result.rows, [{ v: t + i }]);
    }
  }
}

for (const under of DRIVERS) {
  describe(`${under.name}: statement cache`, () => {
    before(async () => {
      server = await getTestServer();
    });
    after(() => {
      for (const con of open) con.terminate();
    });

    it("a text run once is not prepared; run again, it is", async () => {
      const con = await connect(under);
      await con.query("SELECT $1::int AS once", [1]);
      assert.deepEqual(await prepared(con), []);
      await con.query("SELECT $1::int AS twice", [1]);
      await con.query("SELECT $1::int AS twice", [2]);
      assert.deepEqual(await prepared(con), ["SELECT $1::int AS twice"]);
    });

    it("a connection prepares at most statementCacheSize texts; the others still run (regression)", async () => {
      const con = await connect(under, { statementCacheSize: 5 });
      await runTexts(con, 20, 3);
      assert.equal((await prepared(con)).length, 5);
    });

    it("by default a connection prepares at most 100 texts (regression: postgres.js kept every one)", async () => {
      const con = await connect(under);
      await runTexts(con, 150, 2);
      assert.equal((await prepared(con)).length, 100);
    });

    it("a batch prepares its text at once", async () => {
      const con = await connect(under);
      const results = await con.queryMany("SELECT $1::int AS batch", [[1], [2], [3]]);
      assert.deepEqual(results.map((r) => r.rows), [[{ batch: 1 }], [{ batch: 2 }], [{ batch: 3 }]]);
      assert.deepEqual(await prepared(con), ["SELECT $1::int AS batch"]);
    });

    it("statementCacheSize 0 and prepare false prepare nothing", async () => {
      for (const options of [{ statementCacheSize: 0 }, { prepare: false }]) {
        const con = await connect(under, options);
        await runTexts(con, 3, 3);
        await con.queryMany("SELECT $1::int AS batch", [[1], [2]]);
        assert.deepEqual(await prepared(con), [], JSON.stringify(options));
      }
    });

    it("a prepared text whose result type changed (ALTER TABLE) works again on the next run (regression: native failed forever)", async () => {
      const con = await connect(under);
      const table = `stale_plan_${under.name.toLowerCase()}`;
      await con.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (a int)`, []);
      await con.query(`INSERT INTO ${table} VALUES (1)`, []);
      const sql = `SELECT * FROM ${table} WHERE a = $1`;
      for (let i = 0; i < 3; i++) assert.deepEqual((await con.query(sql, [1])).rows, [{ a: 1 }]);
      assert.ok((await prepared(con)).includes(sql), "the text is prepared");
      await con.query(`ALTER TABLE ${table} ADD COLUMN b int DEFAULT 7`, []);
      // postgres.js runs it again by itself; the native engine reports the server's error once.
      await con.query(sql, [1]).then(
        (r) => assert.deepEqual(r.rows, [{ a: 1, b: 7 }]),
        (e: { code?: string }) => assert.equal(e.code, "0A000"),
      );
      for (let i = 0; i < 3; i++) assert.deepEqual((await con.query(sql, [1])).rows, [{ a: 1, b: 7 }]);
      if (under.name === "NativeDriver") {
        // postgres.js prepares it again under a new name and leaves the old one on the server.
        assert.equal(
          (await prepared(con)).filter((t) => t === sql).length,
          1,
          "the stale statement is closed",
        );
      }
      await con.query(`DROP TABLE ${table}`, []);
    });

    it("a text longer than 15 KiB is never prepared", async () => {
      const con = await connect(under);
      const long = `SELECT $1::int AS v -- ${"x".repeat(16 * 1024)}`;
      for (let i = 0; i < 3; i++) assert.deepEqual((await con.query(long, [i])).rows, [{ v: i }]);
      assert.deepEqual(await prepared(con), []);
    });
  });
}

describe("StatementCache", () => {
  it("StatementCache.admit() prepares a text on its second sighting and keeps it", () => {
    const cache = new StatementCache(2);
    assert.equal(cache.admit("a", 1), false);
    assert.equal(cache.admit("a", 1), true);
    assert.equal(cache.admit("a", 1), true);
    assert.equal(cache.size, 1);
  });

  it("StatementCache.admit() prepares a batch's text at once, and nothing once full", () => {
    const cache = new StatementCache(2);
    assert.equal(cache.admit("a", 3), true);
    assert.equal(cache.admit("b", 2), true);
    assert.equal(cache.admit("c", 5), false);
    assert.equal(cache.admit("c", 1), false);
    assert.equal(cache.admit("c", 1), false);
    assert.equal(cache.size, 2);
    assert.equal(cache.admit("a", 1), true);
  });

  it("StatementCache.admit() never prepares with capacity 0 or a text over the size limit", () => {
    const none = new StatementCache(0);
    for (let i = 0; i < 3; i++) assert.equal(none.admit("a", i + 1), false);
    const cache = new StatementCache(10);
    const long = "x".repeat(MAX_CACHEABLE_LENGTH + 1);
    for (let i = 0; i < 3; i++) assert.equal(cache.admit(long, 2), false);
    assert.equal(cache.size, 0);
  });

  it("StatementCache.admit() forgets old sightings after 4,096 other unprepared texts", () => {
    const cache = new StatementCache(10);
    assert.equal(cache.admit("first", 1), false);
    for (let i = 0; i < 4096; i++) cache.admit(`other ${i}`, 1);
    // the sightings were cleared: "first" counts as new again
    assert.equal(cache.admit("first", 1), false);
    assert.equal(cache.admit("first", 1), true);
  });
});

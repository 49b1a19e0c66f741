/**
 * `con.prepare()` against a real server, on the driver PGPOOL_DRIVER picks (CI runs this file on
 * both): the run helpers, the described types, explain, the checkout's end (every method throws
 * `CONNECTION_RELEASED` synchronously) and the server side bounded by the statement cache.
 * Ported in spirit from asyncpg's tests/test_prepare.py.
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, PostgresError, type PreparedStatement } from "../../mod.ts";
import { createTestPool, getTestServer, rejection, type TestServer, warningLog } from "./pool_support.ts";
import { collectGarbage } from "../support/gc.ts";

let server: TestServer;

/** Calls every method of a statement; each must throw `CONNECTION_RELEASED` at once (no promise). */
function assertAllReleased(stmt: PreparedStatement): void {
  const calls: [string, () => unknown][] = [
    ["fetch", () => stmt.fetch([1])],
    ["fetchRow", () => stmt.fetchRow([1])],
    ["fetchVal", () => stmt.fetchVal([1])],
    ["execute", () => stmt.execute([1])],
    ["executeMany", () => stmt.executeMany([[1]])],
    ["cursor", () => stmt.cursor([1])],
    ["getParameters", () => stmt.getParameters()],
    ["getAttributes", () => stmt.getAttributes()],
    ["getQuery", () => stmt.getQuery()],
    ["getStatusMsg", () => stmt.getStatusMsg()],
    ["explain", () => stmt.explain([1])],
  ];
  for (const [name, call] of calls) {
    assert.throws(call, (e: Error & { code?: string }) => {
      assert.equal(e.code, "CONNECTION_RELEASED", name);
      assert.match(e.message, new RegExp(`PreparedStatement\\.${name}\\(\\)`));
      return true;
    });
  }
}

describe("PreparedStatement on a real server", () => {
  before(async () => {
    server = await getTestServer();
  });

  it("PreparedStatement runs with fetch, fetchRow, fetchVal, execute and executeMany, keeping the last status", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    await con.execute("CREATE TEMP TABLE prep_t (x int, label text)");
    const insert = await con.prepare("INSERT INTO prep_t VALUES ($1, $2)");
    assert.equal(insert.getStatusMsg(), "");
    assert.equal(await insert.execute([1, "one"]), "INSERT 0 1");
    await insert.executeMany([[2, "two"], [3, "three"]]);
    assert.equal(insert.getStatusMsg(), "INSERT 0 1");
    const select = await con.prepare("SELECT x, label FROM prep_t WHERE x >= $1 ORDER BY x");
    assert.deepEqual(await select.fetch([2]), [{ x: 2, label: "two" }, { x: 3, label: "three" }]);
    assert.equal(select.getStatusMsg(), "SELECT 2");
    assert.deepEqual(await select.fetchRow([3]), { x: 3, label: "three" });
    assert.equal(await select.fetchRow([4]), null);
    assert.equal(await select.fetchVal([1], { column: "label" }), "one");
    assert.equal(await select.fetchVal([9]), null);
    assert.equal(select.getStatusMsg(), "SELECT 0");
    assert.equal(select.getQuery(), "SELECT x, label FROM prep_t WHERE x >= $1 ORDER BY x");
    // Run many times: the same answers.
    for (let i = 0; i < 20; i++) assert.equal(await select.fetchVal([3]), 3);
  });

  it("PreparedStatement reports parameter and column types from the server's description", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    await con.execute("CREATE TEMP TABLE prep_row (a int, b text)");
    const stmt = await con.prepare(
      "SELECT $1::int8 AS id, $2::text[] AS tags, r AS whole, now() AS at FROM prep_row r WHERE r.a = $3",
    );
    assert.deepEqual(
      stmt.getParameters().map((t) => [t.name, t.kind, t.schema]),
      [["int8", "scalar", "pg_catalog"], ["_text", "array", "pg_catalog"], ["int4", "scalar", "pg_catalog"]],
    );
    const attributes = stmt.getAttributes();
    assert.deepEqual(attributes.map((a) => a.name), ["id", "tags", "whole", "at"]);
    assert.deepEqual(attributes.map((a) => a.type.name), ["int8", "_text", "prep_row", "timestamptz"]);
    assert.equal(attributes[2]!.type.kind, "composite");
    assert.match(attributes[2]!.type.schema, /^pg_temp/);
    assert.equal(attributes[0]!.type.oid, 20);
    const none = await con.prepare("CREATE TEMP TABLE prep_none (x int)");
    assert.deepEqual(none.getParameters(), []);
    assert.deepEqual(none.getAttributes(), []);
  });

  it("PreparedStatement.explain() returns the JSON plan; with analyze the statement's changes are rolled back", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    await con.execute("CREATE TEMP TABLE prep_ex (x int)");
    const select = await con.prepare("SELECT * FROM generate_series(1, $1::int) AS n");
    const [plan] = await select.explain([7]) as { Plan: Record<string, unknown> }[];
    assert.equal(plan!.Plan["Node Type"], "Function Scan");
    assert.equal(plan!.Plan["Actual Rows"], undefined);
    const [analyzed] = await select.explain([7], { analyze: true }) as { Plan: Record<string, unknown> }[];
    assert.equal(analyzed!.Plan["Actual Rows"], 7);
    const insert = await con.prepare("INSERT INTO prep_ex VALUES (1)");
    const [ins] = await insert.explain({ analyze: true }) as { Plan: Record<string, unknown> }[];
    assert.equal(ins!.Plan["Node Type"], "ModifyTable");
    assert.equal(await con.fetchVal("SELECT count(*)::int FROM prep_ex"), 0, "rolled back");
    // Inside a transaction: a savepoint, the transaction goes on.
    await con.transaction(async (tx) => {
      await tx.execute("INSERT INTO prep_ex VALUES (2)");
      await insert.explain({ analyze: true });
      assert.equal(await tx.fetchVal("SELECT count(*)::int FROM prep_ex"), 1);
    });
    assert.equal(await con.fetchVal("SELECT count(*)::int FROM prep_ex"), 1);
  });

  it("PreparedStatement methods throw CONNECTION_RELEASED synchronously after release", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    const con = await pool.acquire();
    const stmt = await con.prepare("SELECT $1::int AS n");
    assert.equal(await stmt.fetchVal([1]), 1);
    await pool.release(con);
    assertAllReleased(stmt);
    assert.throws(() => con.prepare("SELECT 1"), { code: "CONNECTION_RELEASED" });
    // The next checkout of the same connection is not affected, and prepares its own.
    await using next = await pool.acquire();
    const again = await next.prepare("SELECT $1::int AS n");
    assert.equal(await again.fetchVal([2]), 2);
    assertAllReleased(stmt);
  });

  it("PreparedStatement methods throw CONNECTION_RELEASED once the release began, before it finished", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    const con = await pool.acquire();
    const stmt = await con.prepare("SELECT $1::int AS n");
    const releasing = pool.release(con);
    assertAllReleased(stmt);
    await releasing;
  });

  it("PreparedStatement keeps its checkout: a dropped proxy is not reclaimed as a leak while the statement is reachable", async () => {
    const warnings = warningLog();
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      onWarning: warnings.onWarning,
    });
    const stmt = await (async () => {
      const con = await pool.acquire();
      return await con.prepare("SELECT $1::int AS n");
    })(); // the proxy is unreachable from here, except through the statement
    for (let i = 0; i < 5; i++) {
      collectGarbage();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.deepEqual(warnings.codes(), []);
    assert.equal(pool.getIdleSize(), 0);
    assert.equal(await stmt.fetchVal([6]), 6);
    pool.terminate();
  });

  it("PreparedStatement statements stay on the server only within the connection's statement cache", async () => {
    const cacheSize = 4;
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      statementCacheSize: cacheSize,
    });
    for (let round = 0; round < 3; round++) {
      await using con = await pool.acquire();
      for (let i = 0; i < 10; i++) {
        const stmt = await con.prepare(`SELECT $1::int + ${i} AS prep_leak_${round}_${i}`);
        assert.equal(await stmt.fetchVal([1]), 1 + i);
        assert.equal(await stmt.fetchVal([2]), 2 + i);
      }
    }
    await using con = await pool.acquire();
    const count = await con.fetchVal<number>(
      "SELECT count(*)::int FROM pg_prepared_statements WHERE statement LIKE '%prep_leak_%'",
    );
    // Statements are really prepared (the cache's other places may hold the driver's own), and no more.
    assert.ok(count !== null && count >= 1 && count <= cacheSize, `${count} named, at most ${cacheSize}`);
  });

  it("PreparedStatement with a statement the server refuses rejects with its error and leaves the connection usable", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    const error = await rejection(con.prepare("SELEC 1"));
    assert.ok(error instanceof PostgresError);
    assert.equal(error.code, "42601");
    const missing = await rejection(con.prepare("SELECT * FROM prep_no_such_table WHERE x = $1"));
    assert.equal(missing.code, "42P01");
    assert.equal(await con.fetchVal("SELECT 1"), 1);
    const stmt = await con.prepare("SELECT $1::int AS n");
    assert.equal(await stmt.fetchVal([3]), 3);
  });

  it("PreparedStatement on a standalone connection becomes invalid at reset()", async () => {
    await using con = await connect({ dsn: server.dsn });
    const stmt = await con.prepare("SELECT $1::int AS n");
    assert.equal(await stmt.fetchVal([4]), 4);
    await con.reset();
    assert.throws(() => stmt.fetchVal([1]), { code: "CONNECTION_RELEASED" });
    const again = await con.prepare("SELECT $1::int AS n");
    assert.equal(await again.fetchVal([5]), 5);
  });
});

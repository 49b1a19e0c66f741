/**
 * asyncpg's connection surface beyond queries, against a real PostgreSQL, on
 * pooled and standalone connections: `getResetQuery()` (a custom reset that
 * extends the default one), log listeners (`addLogListener` /
 * `removeLogListener`, removed at release with `RELEASED_WITH_LISTENERS`) and
 * the row factory (`rowFactory`) and type codecs (`setTypeCodec` / `resetTypeCodec`). Runs on the driver `PGPOOL_DRIVER` picks
 * (`test:other` reruns it on postgres.js).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, type Notice } from "../../mod.ts";
import { connectionInternals } from "../../src/core/connection.ts";
import { createTestPool, getTestServer, type TestServer, warningLog } from "./pool_support.ts";

let server: TestServer;

const POSTGRES_RESET =
  "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET SESSION AUTHORIZATION;\nRESET ALL;";

/** A DO block raising one notice of `severity` with every optional field set. */
const FULL_NOTICE = `DO $$ BEGIN
  RAISE WARNING 'disk % almost full', 'd1' USING
    ERRCODE = '01P42', DETAIL = 'only 1% left', HINT = 'add a disk',
    SCHEMA = 'a_schema', TABLE = 'a_table', COLUMN = 'a_column',
    CONSTRAINT = 'a_constraint', DATATYPE = 'a_type';
END $$`;

/** Session state a reset clears: a setting and an advisory lock. */
async function dirty(con: { execute(sql: string): Promise<string> }): Promise<void> {
  await con.execute("SET work_mem = '7777kB'");
  await con.execute("SELECT pg_advisory_lock(4243)");
  await con.execute("CREATE TEMP TABLE scratch (x int)");
}

describe("Connection surface: getResetQuery() (real server)", () => {
  before(async () => {
    server = await getTestServer();
  });

  it("Connection.getResetQuery() returns the statements the pool's reset runs on PostgreSQL", async () => {
    await using con = await connect(server.dsn);
    assert.equal(con.getResetQuery(), POSTGRES_RESET);
    await using pool = await createTestPool(server.dsn, { maxSize: 1 });
    await using pooled = await pool.acquire();
    assert.equal(pooled.getResetQuery(), POSTGRES_RESET);
  });

  it("a custom reset that extends getResetQuery() runs both the default reset and its own statements", async () => {
    const ran: string[] = [];
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      reset: async (con: Connection) => {
        const defaults = con.getResetQuery();
        ran.push(defaults);
        await con.execute(defaults);
        await con.execute("DISCARD TEMP"); // the hook's own part
      },
    });
    const a = await pool.acquire();
    const pid = a.getServerPid();
    const defaultWorkMem = await a.fetchVal("SHOW work_mem");
    await dirty(a);
    assert.equal(await a.fetchVal("SHOW work_mem"), "7777kB");
    await pool.release(a);
    assert.deepEqual(ran, [POSTGRES_RESET]);
    await using b = await pool.acquire();
    assert.equal(b.getServerPid(), pid, "the same backend");
    assert.deepEqual(
      await b.fetchRow(
        `SELECT current_setting('work_mem') AS work_mem,
          (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
          to_regclass('pg_temp.scratch')::text AS scratch`,
      ),
      { work_mem: defaultWorkMem, locks: 0, scratch: null },
      "RESET ALL and the advisory unlock (default part) and DISCARD TEMP (own part) all ran",
    );
  });

  it("PoolConnection.getResetQuery() throws CONNECTION_RELEASED synchronously after release", async () => {
    await using pool = await createTestPool(server.dsn, { maxSize: 1 });
    const con = await pool.acquire();
    await pool.release(con);
    assert.throws(() => con.getResetQuery(), { code: "CONNECTION_RELEASED" });
    assert.throws(() => con.addLogListener(() => {}), { code: "CONNECTION_RELEASED" });
    assert.throws(() => con.removeLogListener(() => {}), { code: "CONNECTION_RELEASED" });
  });
});

describe("Connection surface: log listeners (real server)", () => {
  before(async () => {
    server = await getTestServer();
  });

  it("Connection.addLogListener() receives a RAISE WARNING with every field", async () => {
    await using con = await connect(server.dsn);
    const notices: Notice[] = [];
    con.addLogListener((n) => notices.push(n));
    await con.execute(FULL_NOTICE);
    assert.equal(notices.length, 1);
    const n = notices[0]!;
    assert.deepEqual(
      {
        severity: n.severity,
        code: n.code,
        message: n.message,
        detail: n.detail,
        hint: n.hint,
        schema: n.schema,
        table: n.table,
        column: n.column,
        constraint: n.constraint,
        dataType: n.dataType,
      },
      {
        severity: "WARNING",
        code: "01P42",
        message: "disk d1 almost full",
        detail: "only 1% left",
        hint: "add a disk",
        schema: "a_schema",
        table: "a_table",
        column: "a_column",
        constraint: "a_constraint",
        dataType: "a_type",
      },
    );
    assert.match(n.where ?? "", /PL\/pgSQL function inline_code_block line 2 at RAISE/);
    assert.equal(typeof n.file, "string");
    assert.equal(typeof n.line, "number");
    assert.equal(typeof n.routine, "string");
  });

  it("Connection.addLogListener() receives the server's own warnings and notices of a query, before its result", async () => {
    await using con = await connect(server.dsn);
    const notices: Notice[] = [];
    con.addLogListener((n) => notices.push(n));
    await con.execute("ROLLBACK"); // WARNING 25P01 there is no transaction in progress
    assert.deepEqual(notices.map((n) => [n.severity, n.code]), [["WARNING", "25P01"]]);
    await con.execute(`DO $$ BEGIN RAISE NOTICE 'one'; RAISE INFO 'two'; END $$`);
    assert.deepEqual(notices.slice(1).map((n) => [n.severity, n.message]), [["NOTICE", "one"], [
      "INFO",
      "two",
    ]]);
  });

  it("Connection.removeLogListener() stops delivery; a throwing listener does not stop the others", async () => {
    await using con = await connect(server.dsn);
    const a: string[] = [];
    const b: string[] = [];
    const listenerA = (n: Notice): void => void a.push(n.message);
    con.addLogListener(() => {
      throw new Error("a broken listener");
    });
    con.addLogListener(listenerA);
    con.addLogListener(listenerA); // once only
    con.addLogListener((n) => b.push(n.message));
    await con.execute(`DO $$ BEGIN RAISE NOTICE 'first'; END $$`);
    con.removeLogListener(listenerA);
    await con.execute(`DO $$ BEGIN RAISE NOTICE 'second'; END $$`);
    assert.deepEqual(a, ["first"]);
    assert.deepEqual(b, ["first", "second"]);
    assert.equal(await con.fetchVal("SELECT 1"), 1, "the connection still works");
    assert.throws(() => con.addLogListener("no" as unknown as () => void), { code: "INVALID_ARGUMENT" });
  });

  it("Pool.release() removes log listeners left on a connection, with RELEASED_WITH_LISTENERS", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const first = await pool.acquire();
    const pid = first.getServerPid();
    const old: string[] = [];
    first.addLogListener((n) => old.push(n.message));
    await first.execute(`DO $$ BEGIN RAISE NOTICE 'mine'; END $$`);
    assert.deepEqual(old, ["mine"]);
    await pool.release(first);
    assert.deepEqual(log.codes(), ["RELEASED_WITH_LISTENERS"]);
    assert.match(log.list[0]!.message, /1 active listener\b/);
    await using second = await pool.acquire();
    assert.equal(second.getServerPid(), pid, "the same backend");
    const now: string[] = [];
    second.addLogListener((n) => now.push(n.message));
    await second.execute(`DO $$ BEGIN RAISE NOTICE 'not yours'; END $$`);
    assert.deepEqual(old, ["mine"], "the released checkout's listener hears nothing more");
    assert.deepEqual(now, ["not yours"]);
  });

  it("Pool.release() of a connection whose log listeners were all removed warns nothing", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { maxSize: 1, onWarning: log.onWarning });
    const con = await pool.acquire();
    const listener = (): void => {};
    con.addLogListener(listener);
    con.removeLogListener(listener);
    await pool.release(con);
    assert.deepEqual(log.codes(), []);
  });
});

describe("Connection surface: rowFactory (real server)", () => {
  before(async () => {
    server = await getTestServer();
  });

  it('rowFactory "array" makes every fetch helper return arrays in column order; fetchVal and execute are unaffected', async () => {
    await using pool = await createTestPool(server.dsn, { maxSize: 1, rowFactory: "array" });
    const sql = "SELECT n, n * 10 AS n, NULL::text AS empty, 'x' AS __proto__ FROM generate_series(1, $1) n";
    assert.deepEqual(await pool.fetch(sql, [2]), [[1, 10, null, "x"], [2, 20, null, "x"]], "one-shot fetch");
    await using con = await pool.acquire();
    assert.deepEqual(await con.fetch<unknown[]>(sql, [2]), [[1, 10, null, "x"], [2, 20, null, "x"]]);
    assert.deepEqual(await con.fetchRow<unknown[]>(sql, [1]), [1, 10, null, "x"]);
    assert.equal(await con.fetchRow(sql, [0]), null);
    assert.deepEqual(
      await con.fetch("SELECT 1 AS a; SELECT 2 AS b, 3 AS c"),
      [[2, 3]],
      "a simple query's last result",
    );
    assert.deepEqual(await con.fetchMany("SELECT $1::int AS v, 'k' AS k", [[1], [2]]), [[1, "k"], [2, "k"]]);
    assert.equal(await con.fetchVal("SELECT 1 AS a, 2 AS b", [], { column: "b" }), 2, "fetchVal by name");
    assert.equal(await con.fetchVal("SELECT 7"), 7);
    assert.equal(await con.execute("SELECT 1 UNION ALL SELECT 2"), "SELECT 2");
  });

  it("rowFactory as a function builds each row from the column names and the row's values", async () => {
    class Item {
      constructor(readonly id: number, readonly name: string) {}
    }
    const seen: (readonly string[])[] = [];
    await using pool = await createTestPool(server.dsn, {
      maxSize: 1,
      rowFactory: (columns, values) => {
        seen.push(columns);
        return new Item(values[columns.indexOf("id")] as number, values[columns.indexOf("name")] as string);
      },
    });
    const items = await pool.fetch<Item>("SELECT id, 'item ' || id AS name FROM generate_series(1, 3) id");
    assert.deepEqual(items, [new Item(1, "item 1"), new Item(2, "item 2"), new Item(3, "item 3")]);
    assert.ok(items.every((i) => i instanceof Item));
    assert.deepEqual(seen[0], ["id", "name"]);
    assert.ok(seen.every((c) => c === seen[0]), "one column array per result, shared by its rows");
    const one = await pool.fetchRow<Item>("SELECT 5 AS id, 'five' AS name");
    assert.ok(one instanceof Item && one.name === "five");
    const many = await pool.fetchMany<Item>("SELECT $1::int AS id, 'n' AS name", [[8], [9]]);
    assert.deepEqual(many.map((i) => i.id), [8, 9]);
    assert.ok(many.every((i) => i instanceof Item));
  });

  it("rowFactory builds the rows of prepared statements and cursors too; fetchVal and explain are unaffected", async () => {
    class Item {
      constructor(readonly id: number) {}
    }
    await using pool = await createTestPool(server.dsn, {
      maxSize: 1,
      rowFactory: (columns, values) => new Item(values[columns.indexOf("id")] as number),
    });
    await using con = await pool.acquire();
    const stmt = await con.prepare("SELECT id FROM generate_series(1, $1::int) id");
    const rows = await stmt.fetch<Item>([3]);
    assert.deepEqual(rows, [new Item(1), new Item(2), new Item(3)]);
    assert.ok(rows.every((r) => r instanceof Item));
    assert.ok((await stmt.fetchRow<Item>([1])) instanceof Item);
    assert.equal(await stmt.fetchVal([2]), 1, "fetchVal picks a value, no row built");
    assert.equal(typeof await stmt.explain([2]), "object");
    await con.transaction(async (tx) => {
      const cursor = tx.cursor<Item>("SELECT id FROM generate_series(1, 5) id", [], { prefetch: 2 });
      assert.ok((await cursor.fetchRow()) instanceof Item);
      assert.deepEqual(await cursor.fetch(2), [new Item(2), new Item(3)]);
      const rest: Item[] = [];
      for await (
        const row of tx.cursor<Item>("SELECT id FROM generate_series(4, 5) id", [], { prefetch: 1 })
      ) {
        rest.push(row);
      }
      assert.deepEqual(rest, [new Item(4), new Item(5)]);
      assert.ok(rest.every((r) => r instanceof Item));
    });
  });

  it("connect({ rowFactory }) applies it on a standalone connection; a wrong rowFactory is a TypeError", async () => {
    await using con = await connect(server.dsn, { rowFactory: "array" });
    assert.deepEqual(await con.fetch("SELECT 1 AS a, 2 AS a"), [[1, 2]], "duplicate names are kept");
    await using plain = await connect(server.dsn);
    assert.deepEqual(await plain.fetch("SELECT 1 AS a, 2 AS b"), [{ a: 1, b: 2 }], "default: plain objects");
    await assert.rejects(connect(server.dsn, { rowFactory: "object" as "array" }), {
      name: "TypeError",
      message:
        `Cannot connect as 'rowFactory' must be "array" or a function (columns, values) => row: got 'object'`,
    });
    await assert.rejects(createTestPool(server.dsn, { rowFactory: 1 as unknown as "array" }), {
      name: "TypeError",
      message: /^Cannot create pool as 'rowFactory' must be "array" or a function/,
    });
  });
});

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

class Decimal {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Parses a composite literal of two ints, `(1,2)`. */
function parsePoint(text: string): Point {
  const [x, y] = text.slice(1, -1).split(",").map(Number);
  return new Point(x!, y!);
}

const DRIVER = process.env.PGPOOL_DRIVER === "postgres" ? "postgres" : "native";

describe("Connection surface: type codecs (real server)", () => {
  const suffix = `${process.pid}_${Date.now() % 100000}`;
  const pointType = `s14_point_${suffix}`;
  const priceDomain = `s14_price_${suffix}`;

  before(async () => {
    server = await getTestServer();
    await using con = await connect(server.dsn);
    await con.execute(`CREATE TYPE ${pointType} AS (x int, y int)`);
    await con.execute(`CREATE DOMAIN ${priceDomain} AS numeric(10, 2) CHECK (VALUE >= 0)`);
  });

  after(async () => {
    await using con = await connect(server.dsn);
    await con.execute(`DROP TYPE IF EXISTS ${pointType}; DROP DOMAIN IF EXISTS ${priceDomain}`);
  });

  it("a codec set in init decodes a composite type and a domain over numeric on every connection, also after releases", async () => {
    let inits = 0;
    await using pool = await createTestPool(server.dsn, {
      maxSize: 2,
      init: async (con) => {
        inits++;
        await con.setTypeCodec(pointType, { decoder: parsePoint, encoder: (p) => `(${p.x},${p.y})` });
        await con.setTypeCodec("numeric", { decoder: (t) => new Decimal(t), encoder: String });
      },
    });
    const pids = new Set<number>();
    for (let round = 0; round < 3; round++) {
      const cons = [await pool.acquire(), await pool.acquire()];
      for (const con of cons) {
        pids.add(con.getServerPid());
        await con.execute("SET work_mem = '7777kB'"); // something for the reset to clear
        const row = await con.fetchRow<{ p: Point; price: Decimal; ps: Point[]; n: unknown }>(
          `SELECT ROW(1, 2)::${pointType} AS p, 12.5::${priceDomain} AS price,
            ARRAY[ROW(3, 4)::${pointType}, NULL] AS ps, 7::int4 AS n`,
        );
        assert.deepEqual(row, {
          p: new Point(1, 2),
          price: new Decimal("12.50"),
          ps: [new Point(3, 4), null],
          n: 7,
        });
        assert.ok(row!.p instanceof Point && row!.price instanceof Decimal, `round ${round}`);
        assert.deepEqual(
          await con.fetchRow(`SELECT ($1::${pointType}).y AS y, cardinality($2::${pointType}[]) AS n`, [
            new Point(5, 6),
            [new Point(1, 1), new Point(2, 2)],
          ]),
          { y: 6, n: 2 },
          "arguments go through the encoder, arrays element by element",
        );
        assert.deepEqual(
          await con.fetchVal(`SELECT $1::${priceDomain} + 1`, [new Decimal("1.25")]),
          new Decimal("2.25"),
        );
      }
      for (const con of cons) await pool.release(con);
    }
    assert.equal(pids.size, 2, "two connections");
    assert.equal(inits, 2, "init ran once per connection; the codecs outlived every release's reset");
    assert.deepEqual(
      await pool.fetchVal(`SELECT ROW(9, 9)::${pointType}`),
      new Point(9, 9),
      "one-shots too",
    );
  });

  it("Connection.setTypeCodec() refuses an unknown type, a domain and a binary format with clear codes", async () => {
    await using con = await connect(server.dsn);
    const codec = { decoder: (t: string) => t, encoder: String };
    await assert.rejects(con.setTypeCodec("no_such_type_at_all", codec), {
      code: "UNKNOWN_TYPE",
      message: "Cannot set a type codec as the server has no type named 'no_such_type_at_all'",
    });
    await assert.rejects(con.setTypeCodec(pointType, { ...codec, schema: "no_such_schema" }), {
      code: "UNKNOWN_TYPE",
    });
    await assert.rejects(con.setTypeCodec("not a type (", codec), { code: "UNKNOWN_TYPE" });
    await assert.rejects(con.setTypeCodec(priceDomain, codec), {
      code: "UNSUPPORTED",
      message: new RegExp(
        `^Cannot set a type codec on '${priceDomain}' as it is a domain: .*set the codec on numeric$`,
      ),
    });
    await assert.rejects(con.setTypeCodec("int4", { ...codec, format: "binary" as "text" }), {
      code: "UNSUPPORTED",
    });
    await assert.rejects(con.setTypeCodec("int4", { decoder: String } as never), {
      code: "INVALID_ARGUMENT",
    });
    await assert.rejects(con.resetTypeCodec("no_such_type_at_all"), { code: "UNKNOWN_TYPE" });
    assert.equal(await con.fetchVal("SELECT 1"), 1, "the connection still works");
  });

  it("Connection.resetTypeCodec() puts the built-in codec back; a schema-qualified name is exact", async () => {
    await using con = await connect(server.dsn);
    await con.setTypeCodec(pointType, { schema: "public", decoder: parsePoint, encoder: String });
    await con.setTypeCodec("int4", { decoder: (t) => BigInt(t), encoder: String });
    assert.deepEqual(await con.fetchRow(`SELECT 7::int4 AS n, ROW(1, 2)::${pointType} AS p`), {
      n: 7n,
      p: new Point(1, 2),
    });
    await con.resetTypeCodec("int4");
    await con.resetTypeCodec(pointType, { schema: "public" });
    assert.deepEqual(await con.fetchRow(`SELECT 7::int4 AS n, ROW(1, 2)::${pointType} AS p`), {
      n: 7,
      p: "(1,2)",
    });
  });

  it(`a codec set after a statement was prepared applies to it on the ${DRIVER} driver as documented`, async () => {
    await using con = await connect(server.dsn);
    const sql = "SELECT $1::int4 AS n";
    assert.equal(await con.fetchVal(sql, [1]), 1);
    assert.equal(await con.fetchVal(sql, [1]), 1); // run again: now a prepared statement
    await con.setTypeCodec("int4", { decoder: (t) => BigInt(t), encoder: String });
    // The native engine chooses the parsers of described statements again; postgres.js keeps the
    // parsers a statement was prepared with (README: set codecs in init). Its capability flag says so.
    const flag = connectionInternals().driver(con).capabilities?.codecsOnPrepared;
    assert.equal(flag, DRIVER === "native");
    assert.equal(await con.fetchVal(sql, [2]), flag ? 2n : 2);
    assert.equal(await con.fetchVal("SELECT $1::int4 AS fresh", [3]), 3n, "a new statement uses the codec");
  });
});

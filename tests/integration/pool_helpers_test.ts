/**
 * The pool's one-shot helpers and the query/copy API of pooled connections
 * against a real PostgreSQL: 200-way concurrency, executeMany, the copy
 * helpers with awkward identifiers, and server errors that must leave the
 * connection usable. Ported in spirit from asyncpg's tests/test_pool.py (tests
 * 23, 24) and test_cache_invalidation.py's pool tests.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Pool, PostgresError, quoteIdentifier } from "../../mod.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  outsideTransaction,
  rejection,
  type TestServer,
  warningLog,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

const SCHEMA = "s p";
const TABLE = `we"ird tåble`;
const COPY_TABLE = `an"other tåble`;
const COLUMNS = ["id", "nä me", `quo"te col`];
const qualified = (table: string): string => `${quoteIdentifier(SCHEMA)}.${quoteIdentifier(table)}`;

function jitter(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 10));
}

/**
 * Runs `fn` 200 times at once (each after a small random delay). Every call must finish, and
 * the calls must really have overlapped: at some point more of them were in flight than the pool
 * has connections. One at a time per connection (`queued`), some of them then waited in the pool's
 * queue, so the queue and its hand-offs were exercised; with pipelined one-shots they may instead
 * share connections.
 */
async function run200(pool: Pool, fn: (i: number) => Promise<void>, queued: boolean): Promise<void> {
  const done = new Set<number>();
  let peakWaiting = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    await jitter();
    const call = fn(i);
    peakInFlight = Math.max(peakInFlight, ++inFlight);
    peakWaiting = Math.max(peakWaiting, pool.getWaitingCount());
    try {
      await call;
    } finally {
      inFlight--;
    }
    done.add(i);
  }));
  assert.equal(done.size, 200, "every call finished");
  assert.ok(peakInFlight > pool.getMaxSize(), `the calls overlapped: ${peakInFlight} in flight at once`);
  if (queued) assert.ok(peakWaiting > 0, "calls queued for a connection: the pool's queue was exercised");
}

describe("Pool helpers and queries on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("200 concurrent fetch / fetchRow / fetchVal / execute one-shots on a pool of 10", async () => {
    const cases: [string, (pool: Pool, i: number) => Promise<void>][] = [
      ["fetch", async (pool, i) => assert.deepEqual(await pool.fetch(`SELECT ${i}::int AS n`), [{ n: i }])],
      [
        "fetchRow",
        async (pool, i) => assert.deepEqual(await pool.fetchRow(`SELECT ${i}::int AS n`), { n: i }),
      ],
      ["fetchVal", async (pool, i) => assert.equal(await pool.fetchVal(`SELECT ${i}::int`), i)],
      [
        "execute",
        async (pool) => assert.equal(await pool.execute("SELECT generate_series(0, 10)"), "SELECT 11"),
      ],
      [
        "execute with arguments",
        async (pool, i) =>
          assert.equal(await pool.execute("SELECT generate_series(0, $1::int)", [i]), `SELECT ${i + 1}`),
      ],
      [
        "fetchMany",
        async (pool, i) =>
          assert.deepEqual(await pool.fetchMany("SELECT $1::int AS n", [[i], [i + 1]]), [{ n: i }, {
            n: i + 1,
          }]),
      ],
    ];
    for (const [name, call] of cases) {
      for (const pipelineDepth of [1, 16]) {
        const log = warningLog();
        await using pool = await createTestPool(server.dsn, {
          minSize: 5,
          maxSize: 10,
          pipelineDepth,
          onWarning: log.onWarning,
        });
        await run200(pool, (i) => call(pool, i), pipelineDepth === 1);
        assert.ok(pool.getSize() <= 10, name);
        assert.equal(pool.getIdleSize(), pool.getSize(), `${name}: every connection is back`);
        assert.deepEqual(log.codes(), [], name);
      }
    }
  });

  it("200 concurrent executeMany one-shots insert every row", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 5, maxSize: 10 });
    await pool.execute("DROP TABLE IF EXISTS exmany; CREATE TABLE exmany (a text, b int)");
    try {
      await run200(pool, async () => {
        await pool.executeMany("INSERT INTO exmany VALUES ($1, $2)", [["a", 1], ["b", 2], ["c", 3], [
          "d",
          4,
        ]]);
      }, false);
      assert.equal(await pool.fetchVal("SELECT count(*)::int FROM exmany"), 800);
      assert.equal(await pool.fetchVal("SELECT sum(b)::int FROM exmany"), 2000);
    } finally {
      await pool.execute("DROP TABLE exmany");
    }
  });

  it("Pool.executeMany() is all or nothing: a failing run leaves none of the batch's rows (regression)", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await pool.execute("DROP TABLE IF EXISTS exatomic; CREATE TABLE exatomic (id int PRIMARY KEY)");
    try {
      // the third run violates the primary key: the first two must not stay either
      const error = await rejection(
        pool.executeMany("INSERT INTO exatomic VALUES ($1)", [[1], [2], [1], [3]]),
      );
      assert.ok(error instanceof PostgresError);
      assert.equal(error.code, "23505", "the failing run's own error, not the aborted transaction's");
      assert.equal(await pool.fetchVal("SELECT count(*)::int FROM exatomic"), 0);
      await using con = await pool.acquire();
      await con.executeMany("INSERT INTO exatomic VALUES ($1)", [[1], [2], [3]]);
      assert.equal(await con.fetchVal("SELECT count(*)::int FROM exatomic"), 3);
      // fetchMany takes the same path: its failure keeps nothing either
      await assert.rejects(
        con.fetchMany("INSERT INTO exatomic VALUES ($1) RETURNING id", [[4], [5], [3]]),
        { code: "23505" },
      );
      assert.deepEqual(await con.fetch("SELECT id FROM exatomic ORDER BY id"), [{ id: 1 }, { id: 2 }, {
        id: 3,
      }]);
    } finally {
      await pool.execute("DROP TABLE exatomic");
    }
  });

  it("Pool.executeMany() rejects with the COMMIT's error when a deferred constraint fails there, keeping nothing", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await pool.execute(
      "DROP TABLE IF EXISTS exdeferred; CREATE TABLE exdeferred (id int, UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)",
    );
    try {
      // every INSERT succeeds; the duplicate is found only when the batch commits
      await assert.rejects(pool.executeMany("INSERT INTO exdeferred VALUES ($1)", [[1], [2], [1]]), {
        code: "23505",
      });
      assert.equal(await pool.fetchVal("SELECT count(*)::int FROM exdeferred"), 0);
      await pool.executeMany("INSERT INTO exdeferred VALUES ($1)", [[1], [2]]);
      assert.equal(await pool.fetchVal("SELECT count(*)::int FROM exdeferred"), 2);
    } finally {
      await pool.execute("DROP TABLE exdeferred");
    }
  });

  it("PoolConnection.executeMany() inside transaction() fails that transaction and leaves it to roll back", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await pool.execute("DROP TABLE IF EXISTS exatomic2; CREATE TABLE exatomic2 (id int PRIMARY KEY)");
    try {
      await using con = await pool.acquire();
      await assert.rejects(
        con.transaction(async (tx) => {
          await tx.execute("INSERT INTO exatomic2 VALUES (10)");
          await tx.executeMany("INSERT INTO exatomic2 VALUES ($1)", [[1], [1]]);
        }),
        { code: "23505" },
      );
      assert.equal(await con.fetchVal("SELECT count(*)::int FROM exatomic2"), 0);
      // a batch inside a transaction that commits is kept, run by run
      await con.transaction(async (tx) => {
        await tx.executeMany("INSERT INTO exatomic2 VALUES ($1)", [[1], [2]]);
      });
      assert.equal(await con.fetchVal("SELECT count(*)::int FROM exatomic2"), 2);
    } finally {
      await pool.execute("DROP TABLE exatomic2");
    }
  });

  it("the copy helpers quote schema, table and column names with quotes, spaces and unicode", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 2 });
    const columns = COLUMNS.map(quoteIdentifier);
    const ddl = (table: string): string =>
      `CREATE TABLE ${qualified(table)} (${columns[0]} int PRIMARY KEY, ${columns[1]} text, ${
        columns[2]
      } text)`;
    await pool.execute(`DROP SCHEMA IF EXISTS ${quoteIdentifier(SCHEMA)} CASCADE`);
    await pool.execute(`CREATE SCHEMA ${quoteIdentifier(SCHEMA)}`);
    try {
      await pool.execute(ddl(TABLE));
      await pool.execute(ddl(COPY_TABLE));
      const records = [
        [1, "plain", "x"],
        [2, "tab\there\nnew line \\ backslash", null],
        [3, "ünïcödé ✓", ""],
      ];
      assert.equal(await pool.copyRecordsToTable(TABLE, { schemaName: SCHEMA, records }), "COPY 3");
      assert.equal(
        await pool.copyToTable(TABLE, {
          schemaName: SCHEMA,
          columns: [COLUMNS[0]!, COLUMNS[2]!, COLUMNS[1]!],
          source: "4\tq4\tfour\n",
        }),
        "COPY 1",
      );
      const rows = await pool.fetch(`SELECT * FROM ${qualified(TABLE)} ORDER BY 1`);
      assert.deepEqual(rows, [
        { id: 1, "nä me": "plain", [`quo"te col`]: "x" },
        { id: 2, "nä me": "tab\there\nnew line \\ backslash", [`quo"te col`]: null },
        { id: 3, "nä me": "ünïcödé ✓", [`quo"te col`]: "" },
        { id: 4, "nä me": "four", [`quo"te col`]: "q4" },
      ]);

      // Table → bytes → the other table: a lossless round trip.
      const chunks: Uint8Array[] = [];
      assert.equal(
        await pool.copyFromTable(TABLE, { schemaName: SCHEMA, output: (c) => void chunks.push(c.slice()) }),
        "COPY 4",
      );
      const dump = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) dump.set(c, (at += c.length) - c.length);
      assert.equal(await pool.copyToTable(COPY_TABLE, { schemaName: SCHEMA, source: dump }), "COPY 4");
      assert.deepEqual(await pool.fetch(`SELECT * FROM ${qualified(COPY_TABLE)} ORDER BY 1`), rows);

      // One column out, as CSV with a header, into a WritableStream.
      let csv = "";
      const decoder = new TextDecoder();
      const sink = new WritableStream<Uint8Array>({
        write: (chunk) => void (csv += decoder.decode(chunk, { stream: true })),
      });
      assert.equal(
        await pool.copyFromTable(TABLE, {
          schemaName: SCHEMA,
          columns: [COLUMNS[1]!],
          format: "csv",
          header: true,
          output: sink,
        }),
        "COPY 4",
      );
      assert.equal(csv.split("\n")[0], `nä me`);
      assert.ok(csv.includes("ünïcödé ✓"));

      // A query with arguments.
      let text = "";
      assert.equal(
        await pool.copyFromQuery(
          `SELECT ${columns[0]}, ${columns[2]} FROM ${qualified(TABLE)} WHERE ${columns[0]} > $1 ORDER BY 1`,
          [2],
          { output: (c) => void (text += decoder.decode(c)) },
        ),
        "COPY 2",
      );
      assert.equal(text, "3\t\n4\tq4\n");
    } finally {
      await pool.execute(`DROP SCHEMA ${quoteIdentifier(SCHEMA)} CASCADE`);
    }
  });

  it("a copy helper on a missing table rejects with 42P01 and the connection stays usable", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const pid = await pool.fetchVal("SELECT pg_backend_pid()");
    const attempts: [string, () => Promise<unknown>][] = [
      ["copyToTable", () => pool.copyToTable("no such täble", { source: "1\n" })],
      ["copyRecordsToTable", () => pool.copyRecordsToTable("no such täble", { records: [[1]] })],
      ["copyFromTable", () => pool.copyFromTable("no such täble", { output: () => {} })],
      [
        "copyFromQuery",
        () => pool.copyFromQuery("SELECT * FROM no_such_table", undefined, { output: () => {} }),
      ],
      [
        "copyToTable in a missing schema",
        () => pool.copyToTable("t", { schemaName: "no such schema", source: "1\n" }),
      ],
    ];
    for (const [name, attempt] of attempts) {
      const err = await rejection(attempt());
      assert.ok(err instanceof PostgresError, `${name}: ${String(err)}`);
      assert.ok(err.code === "42P01" || err.code === "3F000", `${name}: ${err.code}`);
      assert.equal(pool.getIdleSize(), 1, `${name}: the connection went back`);
      assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid, `${name}: and was kept`);
    }
    assert.deepEqual(log.codes(), []);
  });

  it("an SQL error inside a checkout leaves the connection usable", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    {
      await using con = await pool.acquire();
      const missing = await rejection(con.execute("SELECT * FROM no_such_table"));
      assert.ok(missing instanceof PostgresError);
      assert.equal(missing.code, "42P01");
      assert.match(missing.message, /no_such_table/);
      const syntax = await rejection(con.fetchVal("SELEC 1"));
      assert.ok(syntax instanceof PostgresError);
      assert.equal(syntax.code, "42601");
      assert.equal(await con.fetchVal("SELECT 1"), 1);
      const inTx = await rejection(con.transaction(async (tx) => {
        await tx.execute("CREATE TEMP TABLE rolled_back (x int)");
        await tx.execute("SELECT 1/0");
      }));
      assert.equal(inTx.code, "22012");
      assert.equal(await outsideTransaction(con), true);
      assert.equal(await con.fetchVal("SELECT to_regclass('pg_temp.rolled_back')"), null);
    }
    assert.deepEqual(log.codes(), []);
    {
      // An error inside a manual transaction leaves it aborted; release rolls it back.
      await using con = await pool.acquire();
      await con.execute("BEGIN");
      await assert.rejects(con.execute("SELECT 1/0"), { code: "22012" });
      await assert.rejects(con.fetchVal("SELECT 1"), { code: "25P02" });
    }
    assert.deepEqual(log.codes(), ["RELEASED_IN_TRANSACTION"]);
    assert.equal(await pool.fetchVal("SELECT 2"), 2);
  });

  it("after a column type change every pooled connection returns the new type", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2 });
    await pool.execute("DROP TABLE IF EXISTS cache_inval; CREATE TABLE cache_inval (a int)");
    try {
      await pool.execute("INSERT INTO cache_inval VALUES (1)");
      const a = await pool.acquire();
      const b = await pool.acquire();
      try {
        for (const con of [a, b]) assert.equal(await con.fetchVal("SELECT a FROM cache_inval"), 1);
        await admin.execute("ALTER TABLE cache_inval ALTER COLUMN a TYPE text USING a::text || 'x'");
        for (const con of [a, b]) assert.equal(await con.fetchVal("SELECT a FROM cache_inval"), "1x");
        for (const con of [a, b]) {
          assert.deepEqual(await con.fetch("SELECT * FROM cache_inval"), [{ a: "1x" }]);
        }
      } finally {
        await pool.release(a);
        await pool.release(b);
      }
    } finally {
      await pool.execute("DROP TABLE cache_inval");
    }
  });
});

/**
 * The Kysely dialect against a real server, with the real `kysely` package:
 * selects, inserts with RETURNING, affected row counts, transactions on one
 * checkout, savepoints, streaming, introspection, and the checkout going back
 * to the pool after every query. Runs under Deno and Bun.
 */

import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AbortedTransactionError, CompiledQuery, type Generated, Kysely, sql } from "kysely";
import { PgpoolDialect, type PgpoolDialectConfig } from "../../kysely.ts";
import type { Pool } from "../../mod.ts";
import { createTestPool, getTestServer, rejection, type TestServer } from "./pool_support.ts";

interface Database {
  kysely_person: { id: Generated<number>; name: string };
}

const TABLE = "kysely_person";

let server: TestServer;
let pool: Pool;
let db: Kysely<Database>;

/** The backend pid of whatever connection `q` runs on. */
async function backendPid(q: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(q);
  return rows[0]!.pid;
}

/**
 * Resolves once every connection of the two-connection pool is free: Kysely
 * releases a stream's checkout without waiting, so the test waits for the event
 * (both acquires succeeding) rather than reading the idle count at once.
 */
async function allCheckoutsBack(): Promise<void> {
  const cons = await Promise.all([pool.acquire({ timeout: 5 }), pool.acquire({ timeout: 5 })]);
  await Promise.all(cons.map((c) => pool.release(c)));
  assert.equal(pool.getIdleSize(), 2);
}

async function names(): Promise<string[]> {
  const rows = await db.selectFrom(TABLE).select("name").orderBy("id").execute();
  return rows.map((r) => r.name);
}

describe("Kysely dialect on a real server", () => {
  before(async () => {
    server = await getTestServer();
    pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2 });
    db = new Kysely<Database>({ dialect: new PgpoolDialect({ pool }) });
    await db.schema.dropTable(TABLE).ifExists().execute();
    await db.schema.createTable(TABLE)
      .addColumn("id", "serial", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull())
      .execute();
  });

  beforeEach(async () => {
    await db.deleteFrom(TABLE).execute();
  });

  after(async () => {
    await db.schema.dropTable(TABLE).ifExists().execute();
    await db.destroy();
  });

  it("PgpoolDialect runs selects with parameters and returns typed rows", async () => {
    await db.insertInto(TABLE).values([{ name: "ada" }, { name: "grace" }, { name: "linus" }]).execute();
    const rows = await db.selectFrom(TABLE).select(["name"]).where("name", "like", "%a%").orderBy("name")
      .execute();
    assert.deepEqual(rows, [{ name: "ada" }, { name: "grace" }]);
    const one = await db.selectFrom(TABLE).select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirstOrThrow();
    assert.equal(Number(one.n), 3);
  });

  it("PgpoolDialect returns INSERT … RETURNING rows, and the inserted row count without RETURNING", async () => {
    const inserted = await db.insertInto(TABLE).values([{ name: "a" }, { name: "b" }]).returning([
      "id",
      "name",
    ])
      .execute();
    assert.deepEqual(inserted.map((r) => r.name), ["a", "b"]);
    assert.ok(inserted.every((r) => typeof r.id === "number" && r.id > 0));
    assert.notEqual(inserted[0]!.id, inserted[1]!.id);

    const result = await db.insertInto(TABLE).values([{ name: "c" }, { name: "d" }, { name: "e" }])
      .executeTakeFirstOrThrow();
    assert.equal(result.numInsertedOrUpdatedRows, 3n);
    assert.equal(result.insertId, undefined);
    assert.deepEqual(await names(), ["a", "b", "c", "d", "e"]);
  });

  it("PgpoolDialect reports numAffectedRows for UPDATE, DELETE and MERGE, built or raw", async () => {
    await db.insertInto(TABLE).values([{ name: "a" }, { name: "b" }, { name: "c" }]).execute();
    const updated = await db.updateTable(TABLE).set({ name: "z" }).where("name", "in", ["a", "b"])
      .executeTakeFirstOrThrow();
    assert.equal(updated.numUpdatedRows, 2n);

    const none = await db.updateTable(TABLE).set({ name: "y" }).where("name", "=", "nobody")
      .executeTakeFirstOrThrow();
    assert.equal(none.numUpdatedRows, 0n);

    const raw = await sql`UPDATE kysely_person SET name = ${"w"} WHERE name = ${"z"}`.execute(db);
    assert.equal(raw.numAffectedRows, 2n);
    assert.deepEqual(raw.rows, []);

    const rawReturning = await sql<{ name: string }>`UPDATE kysely_person SET name = 'v' RETURNING name`
      .execute(db);
    assert.equal(rawReturning.numAffectedRows, 3n);
    assert.equal(rawReturning.rows.length, 3);

    const merged = await db.mergeInto(`${TABLE} as t`).using(`${TABLE} as s`, "s.id", "t.id").whenMatched()
      .thenUpdateSet({ name: "m" }).executeTakeFirstOrThrow();
    assert.equal(merged.numChangedRows, 3n);

    const deleted = await db.deleteFrom(TABLE).where("name", "=", "m").executeTakeFirstOrThrow();
    assert.equal(deleted.numDeletedRows, 3n);

    const select = await sql`SELECT 1 AS one`.execute(db);
    assert.equal(select.numAffectedRows, undefined);
    assert.deepEqual(select.rows, [{ one: 1 }]);
  });

  it("db.transaction().execute() runs on one checkout (one backend) and commits", async () => {
    const outside = new Set<number>();
    const pids = await db.transaction().execute(async (trx) => {
      assert.equal(pool.getIdleSize(), 1, "the transaction holds one of the two connections");
      // Statements outside the transaction meanwhile run on the other connection.
      outside.add(await backendPid(db));
      await trx.insertInto(TABLE).values({ name: "in-tx" }).execute();
      const seen = await Promise.all([backendPid(trx), backendPid(trx), backendPid(trx)]);
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM kysely_person`.execute(db);
      assert.deepEqual(rows, [{ n: 0 }], "uncommitted: another connection does not see the row");
      return [...seen, await backendPid(trx)];
    });
    assert.equal(new Set(pids).size, 1, `one backend for the whole transaction: ${pids.join(", ")}`);
    assert.ok(!outside.has(pids[0]!), "the statement outside ran on the other connection");
    assert.deepEqual(await names(), ["in-tx"]);
    assert.equal(pool.getIdleSize(), 2, "the checkout is back after the commit");
  });

  it("db.transaction().execute() rolls back when the callback throws, leaving no row", async () => {
    const error = new Error("boom");
    const thrown = await rejection(
      db.transaction().execute(async (trx) => {
        await trx.insertInto(TABLE).values({ name: "ghost" }).execute();
        assert.equal((await trx.selectFrom(TABLE).selectAll().execute()).length, 1);
        throw error;
      }),
    );
    assert.equal(thrown, error);
    assert.deepEqual(await names(), []);
    assert.equal(pool.getIdleSize(), 2);
  });

  it("db.transaction() honours the isolation level and access mode", async () => {
    const settings = await db.transaction().setIsolationLevel("serializable").setAccessMode("read only")
      .execute(async (trx) => {
        const { rows } = await sql<{ iso: string; ro: string }>`
          SELECT current_setting('transaction_isolation') AS iso,
                 current_setting('transaction_read_only') AS ro`.execute(trx);
        return rows[0];
      });
    assert.deepEqual(settings, { iso: "serializable", ro: "on" });

    const readOnly = await rejection(
      db.transaction().setAccessMode("read only").execute((trx) =>
        trx.insertInto(TABLE).values({ name: "x" }).execute()
      ),
    );
    assert.equal(readOnly.code, "25006", "read_only_sql_transaction");

    const snapshot = await rejection(
      db.transaction().setIsolationLevel("snapshot").execute(() => Promise.resolve()),
    );
    assert.equal(snapshot.code, "INVALID_ARGUMENT");
    assert.equal(pool.getIdleSize(), 2);
  });

  it("commit of a transaction the server aborted rejects with Kysely's AbortedTransactionError", async () => {
    const thrown = await rejection(
      db.transaction().execute(async (trx) => {
        await trx.insertInto(TABLE).values({ name: "lost" }).execute();
        await sql`SELECT 1 / 0`.execute(trx).catch(() => {}); // swallowed, but the transaction is aborted
      }),
    );
    assert.ok(thrown instanceof AbortedTransactionError, String(thrown));
    assert.deepEqual(await names(), []);
    assert.equal(pool.getIdleSize(), 2);
  });

  it("controlled transactions roll back to a savepoint and commit the rest", async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto(TABLE).values({ name: "kept" }).execute();
    const sp = await trx.savepoint('before weird "name"').execute();
    await sp.insertInto(TABLE).values({ name: "undone" }).execute();
    const back = await sp.rollbackToSavepoint('before weird "name"').execute();
    const sp2 = await back.savepoint("second").execute();
    await sp2.insertInto(TABLE).values({ name: "released" }).execute();
    const done = await sp2.releaseSavepoint("second").execute();
    assert.equal(pool.getIdleSize(), 1);
    await done.commit().execute();
    assert.deepEqual(await names(), ["kept", "released"]);
    assert.equal(pool.getIdleSize(), 2);
  });

  it("db.connection().execute() keeps one backend and its session state for the callback", async () => {
    const [first, second, setting] = await db.connection().execute(async (con) => {
      await sql`SET application_name = 'kysely-session'`.execute(con);
      return [
        await backendPid(con),
        await backendPid(con),
        (await sql<{ a: string }>`SELECT current_setting('application_name') AS a`.execute(con)).rows[0]!.a,
      ];
    });
    assert.equal(first, second);
    assert.equal(setting, "kysely-session");
    assert.equal(pool.getIdleSize(), 2);
  });

  it("stream() yields every row, in order, on one checkout that goes back afterwards", async () => {
    await db.insertInto(TABLE).values(Array.from({ length: 250 }, (_, i) => ({ name: `p${i}` }))).execute();
    const streamed: string[] = [];
    for await (const row of db.selectFrom(TABLE).select("name").orderBy("id").stream(100)) {
      if (streamed.length === 0) assert.equal(pool.getIdleSize(), 1, "the stream holds its checkout");
      streamed.push(row.name);
    }
    assert.deepEqual(streamed, Array.from({ length: 250 }, (_, i) => `p${i}`));
    await allCheckoutsBack();

    // Leaving the loop early releases the checkout too.
    for await (const _row of db.selectFrom(TABLE).select("name").stream(10)) break;
    await allCheckoutsBack();
  });

  it("streamQuery() hands out chunks of chunkSize rows and rejects a chunkSize that is not a positive integer", async () => {
    const driver = new PgpoolDialect({ pool }).createDriver();
    await driver.init();
    const con = await driver.acquireConnection();
    try {
      const query = CompiledQuery.raw("SELECT n FROM generate_series(1, 250) AS n");
      const sizes: number[] = [];
      let last = 0;
      for await (const chunk of con.streamQuery<{ n: number }>(query, 100)) {
        sizes.push(chunk.rows.length);
        for (const { n } of chunk.rows) assert.equal(n, ++last);
      }
      assert.deepEqual(sizes, [100, 100, 50]);
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        const error = await rejection(con.streamQuery(query, bad).next());
        assert.equal(error.code, "INVALID_ARGUMENT", String(bad));
      }
    } finally {
      await driver.releaseConnection(con);
    }
    assert.equal(pool.getIdleSize(), 2);
  });

  it("db.introspection.getTables() lists the table and its columns", async () => {
    const tables = await db.introspection.getTables();
    const table = tables.find((t) => t.name === TABLE && t.schema === "public");
    assert.ok(table, `found among ${tables.map((t) => t.name).join(", ")}`);
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.dataType, c.isNullable, c.isAutoIncrementing]),
      [["id", "int4", false, true], ["name", "text", false, false]],
    );
  });

  it("every query releases its checkout: idle size is back after each, even after an error", async () => {
    for (let i = 0; i < 5; i++) {
      await db.insertInto(TABLE).values({ name: `n${i}` }).execute();
      assert.equal(pool.getIdleSize(), 2, `after insert ${i}`);
      await db.selectFrom(TABLE).selectAll().execute();
      assert.equal(pool.getIdleSize(), 2, `after select ${i}`);
    }
    const error = await rejection(sql`SELECT * FROM no_such_table`.execute(db));
    assert.equal(error.code, "42P01");
    assert.equal(pool.getIdleSize(), 2, "after a failed query");
    // Twenty concurrent queries on two connections: each waits for a released checkout.
    const counts = await Promise.all(
      Array.from({ length: 20 }, () => db.selectFrom(TABLE).select("id").execute().then((r) => r.length)),
    );
    assert.deepEqual(counts, Array(20).fill(5));
    assert.equal(pool.getIdleSize(), 2);
    assert.equal(pool.getSize(), 2);
  });
});

describe("Kysely dialect: pool ownership", () => {
  before(async () => {
    server = await getTestServer();
  });

  it("new PgpoolDialect() rejects a config without a pool with INVALID_ARGUMENT", () => {
    for (const config of [{}, { pool: null }, { pool: "postgres://x" }, undefined]) {
      assert.throws(
        () => new PgpoolDialect(config as unknown as PgpoolDialectConfig),
        (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT" && /'pool'/.test(e.message),
      );
    }
  });

  it("PgpoolDialect calls a pool factory once, on first use, and destroy() closes that pool", async () => {
    const made: Pool[] = [];
    const lazy = new Kysely<Database>({
      dialect: new PgpoolDialect({
        pool: async () => {
          const p = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
          made.push(p);
          return p;
        },
      }),
    });
    assert.equal(made.length, 0, "nothing connects before the first query");
    const [a, b] = await Promise.all([backendPid(lazy), backendPid(lazy)]);
    assert.equal(a, b, "one pool of one connection");
    assert.equal(made.length, 1);
    await lazy.destroy();
    const error = await rejection(made[0]!.acquire());
    assert.equal(error.code, "POOL_CLOSED");
    const after = await rejection(sql`SELECT 1`.execute(lazy));
    assert.match(after.message, /destroyed/);
  });

  it("PgpoolDriver.destroy() during init() closes the pool the factory resolves to afterwards", async () => {
    let resolvePool!: (p: Pool) => void;
    const driver = new PgpoolDialect({
      pool: () => new Promise<Pool>((resolve) => resolvePool = resolve),
    }).createDriver();
    const initializing = driver.init();
    await driver.destroy();
    const made = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    resolvePool(made);
    await initializing;
    assert.equal((await rejection(made.acquire())).code, "POOL_CLOSED");
    assert.equal((await rejection(driver.acquireConnection())).code, "POOL_CLOSED");
  });

  it("Kysely.destroy() while a stream holds a checkout waits for the stream to finish, then closes the pool", async () => {
    const own = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const k = new Kysely<Database>({ dialect: new PgpoolDialect({ pool: own }) });
    const rows = sql<{ n: number }>`SELECT generate_series(1, 3) AS n`.execute(k);
    assert.equal((await rows).rows.length, 3);
    const stream = k.selectNoFrom(sql<number>`generate_series(1, 3)`.as("n")).stream(1)
      [Symbol.asyncIterator]();
    assert.deepEqual(await stream.next(), { done: false, value: { n: 1 } });
    let destroyed = false;
    const destroying = k.destroy().then(() => destroyed = true);
    assert.deepEqual(await stream.next(), { done: false, value: { n: 2 } });
    assert.deepEqual(await stream.next(), { done: false, value: { n: 3 } });
    assert.equal(destroyed, false, "close() waits for the stream's checkout");
    assert.equal(own.getSize(), 1);
    assert.deepEqual(await stream.next(), { done: true, value: undefined });
    await destroying;
    assert.equal(own.getSize(), 0);
  });

  it("a failed release does not fail the query that ran: the pool drops the connection", async () => {
    let resets = 0;
    await using own = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      reset: () => {
        resets++;
        return Promise.reject(new Error("reset refused"));
      },
      onWarning: () => {},
    });
    const k = new Kysely<Database>({ dialect: new PgpoolDialect({ pool: own }) });
    const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(k);
    assert.deepEqual(rows, [{ one: 1 }]);
    assert.equal(resets, 1);
    assert.equal(own.getSize(), 0, "the connection whose reset failed is gone");
    assert.deepEqual((await sql<{ one: number }>`SELECT 1 AS one`.execute(k)).rows, [{ one: 1 }]);
  });
});

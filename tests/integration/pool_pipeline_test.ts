/**
 * Pipelined one-shots against a real PostgreSQL: one-shots that share one backend each see a
 * freshly reset session, whatever their neighbours did (`SET`, `set_config()`, advisory locks,
 * `LISTEN`, `DECLARE … WITH HOLD`, a bare `BEGIN`); answers reach their own callers; a failing
 * one-shot fails alone; recycling keeps its meaning. On the postgres.js driver (no `pipelining`
 * capability; `PGPOOL_DRIVER=postgres`, as `test:other` runs this file) the same one-shots run one at
 * a time and see the same clean sessions.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Admin, createTestPool, getTestServer, type TestServer } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** Whether the pool's driver pipelines (the native one does; postgres.js does not). */
const PIPELINES = (process.env.PGPOOL_DRIVER ?? "native") === "native";

describe("Pool pipelined one-shots on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool one-shots fired together on one backend are pipelined and each sees a freshly reset session", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, pipelineDepth: 8 });
    const table = `pipe_tx_${process.pid}`;
    await admin.execute(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int)`);
    const locks = "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()";
    const calls: [string, Promise<unknown>][] = [
      ["pid", pool.fetchVal("SELECT pg_backend_pid()")],
      ["SET", pool.execute("SET search_path = nowhere")],
      ["search_path", pool.fetchVal("SELECT current_setting('search_path')")],
      ["SET statement_timeout", pool.execute("SET statement_timeout = 1234")],
      ["statement_timeout", pool.fetchVal("SHOW statement_timeout")],
      ["set_config", pool.fetchVal("SELECT set_config('pipe.k', 'v', false)")],
      ["pipe.k", pool.fetchVal("SELECT current_setting('pipe.k', true)")],
      ["lock", pool.fetchVal("SELECT pg_advisory_lock($1)", [42])],
      ["locks", pool.fetchVal(locks)],
      ["LISTEN", pool.execute("LISTEN pipe_channel")],
      ["channels", pool.fetchVal("SELECT count(*)::int FROM pg_listening_channels()")],
      ["DECLARE", pool.execute("DECLARE pipe_cursor CURSOR WITH HOLD FOR SELECT 1")],
      ["cursors", pool.fetchVal("SELECT count(*)::int FROM pg_cursors")],
      ["BEGIN", pool.execute(`BEGIN; INSERT INTO ${table} VALUES (1)`)],
      ["in transaction", pool.fetchVal("SELECT now() <> statement_timestamp()")],
      ["insert", pool.execute(`INSERT INTO ${table} VALUES ($1)`, [2])],
      ["pid after", pool.fetchVal("SELECT pg_backend_pid()")],
    ];
    // All of them were handed to the connection at once (none waits) where the driver pipelines.
    assert.equal(pool.getWaitingCount(), PIPELINES ? Math.max(0, calls.length - 8) : calls.length - 1);
    const got = Object.fromEntries(await Promise.all(calls.map(async ([k, p]) => [k, await p] as const)));
    assert.equal(got["pid after"], got.pid, "one backend ran them all");
    assert.equal(got.search_path, '"$user", public');
    assert.equal(got.statement_timeout, "0");
    assert.equal(got["pipe.k"], "");
    assert.equal(got.locks, 0);
    assert.equal(got.channels, 0);
    assert.equal(got.cursors, 0);
    assert.equal(got["in transaction"], false, "the neighbour of a bare BEGIN runs outside its transaction");
    const ids = await admin.value<string>(`SELECT coalesce(string_agg(id::text, ','), '') FROM ${table}`);
    assert.equal(ids, "2", "the BEGIN's insert was rolled back, its neighbour's committed");
    await admin.execute(`DROP TABLE ${table}`);
  });

  it("Pool.fetchVal() answers 2,000 concurrent one-shots on two connections, each with its own value", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2 });
    const n = 2000;
    const values = await Promise.all(
      Array.from({ length: n }, (_, i) => pool.fetchVal<number>("SELECT $1::int", [i])),
    );
    assert.deepEqual(values, Array.from({ length: n }, (_, i) => i));
    assert.equal(pool.getSize(), 2);
    assert.equal(pool.getIdleSize(), 2);
  });

  it("Pool one-shots: a failing one fails alone; its neighbours on the backend succeed", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const results = await Promise.allSettled([
      pool.fetchVal("SELECT $1::int", [1]),
      pool.fetchVal("SELECT 1/0"),
      pool.fetchVal("SELECT $1::int", [3]),
      pool.execute("SELECT no_such_column"),
      pool.fetchVal("SELECT $1::int", [5]),
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    assert.deepEqual(
      results.filter((r) => r.status === "fulfilled").map((r) =>
        (r as PromiseFulfilledResult<unknown>).value
      ),
      [1, 3, 5],
    );
    assert.equal((results[1] as PromiseRejectedResult).reason.code, "22012");
    assert.equal((results[3] as PromiseRejectedResult).reason.code, "42703");
  });

  it("Pool one-shots past maxQueries move to a new backend and leave no connection behind", async () => {
    const app = `pipe-maxq-${process.pid}`;
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      maxQueries: 20,
      applicationName: app,
    });
    const pids = await Promise.all(
      Array.from({ length: 200 }, () => pool.fetchVal<number>("SELECT pg_backend_pid()")),
    );
    assert.ok(
      new Set(pids).size >= 5,
      `${new Set(pids).size} backends served 200 one-shots at maxQueries 20`,
    );
    const open = async (): Promise<number> =>
      Number(await admin.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [app]));
    for (let i = 0; i < 100 && await open() !== pool.getSize(); i++) {
      await new Promise((r) => setTimeout(r, 20)); // the recycled backends exit in the background
    }
    assert.equal(await open(), pool.getSize());
  });

  it("Pool.expireConnections() while one-shots run: they succeed, and the old backend is gone afterwards", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const old = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    const running = Array.from(
      { length: 6 },
      (_, i) => pool.fetchVal("SELECT $1::int FROM pg_sleep(0.05)", [i]),
    );
    pool.expireConnections();
    const later = pool.fetchVal<number>("SELECT pg_backend_pid()");
    assert.deepEqual(await Promise.all(running), [0, 1, 2, 3, 4, 5]);
    assert.notEqual(await later, old);
    await admin.waitGone(old!);
  });
});

/**
 * Pipelined one-shots at the edges of the native engine, on a real server: statements whose
 * arguments need the server's parameter types first (arrays) (a describe-first round holds everything behind
 * it, resets included), arguments that cannot be sent, statements the server cannot parse, a large
 * result among small ones, statement-cache churn, a copy helper among one-shots (it needs a
 * connection of its own), and `close()` with one-shots in flight. Every neighbour gets its own
 * answer and a fresh session, and the connection goes on serving.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { codeOf } from "../support/ledger.ts";
import { Admin, createTestPool, getTestServer, type TestServer, within } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** How a one-shot settled: its value, or its error's code. */
const settle = (p: Promise<unknown>): Promise<unknown> =>
  p.then((v) => v, (e: unknown) => `error ${codeOf(e)}`);

/** A text no connection has prepared yet (the statement cache keys on the text). */
let unique = 0;
const fresh = (sql: string): string => `${sql} /* ${process.pid}-${unique++} */`;

describe("Pool pipelined one-shots: edges of the engine", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool one-shots whose arguments need the server's types (arrays) pipelined among others: own answers, clean sessions", async () => {
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      pipelineDepth: 32,
    });
    const calls: [unknown, Promise<unknown>][] = [];
    for (let i = 0; i < 8; i++) {
      calls.push([i, settle(pool.fetchVal("SELECT $1::int", [i]))]);
      // first use of each text: Parse + Describe, its Bind written once the types are known
      calls.push([["a", `b,${i}`], settle(pool.fetchVal(fresh("SELECT $1::text[]"), [["a", `b,${i}`]]))]);
      calls.push([[i, i + 1], settle(pool.fetchVal(fresh("SELECT $1::int[]"), [[i, i + 1]]))]);
      // a describe-first one-shot that leaves session state, and a probe behind it
      calls.push([
        "x",
        settle(pool.fetchVal(fresh("SELECT set_config('pipe.j', ($1::text[])[1], false)"), [["x"]])),
      ]);
      calls.push(["", settle(pool.fetchVal("SELECT coalesce(current_setting('pipe.j', true), '')"))]);
    }
    assert.equal(pool.getWaitingCount(), calls.length - 32);
    const got = await within(10_000, Promise.all(calls.map(([, p]) => p)), "the one-shots");
    assert.deepEqual(got, calls.map(([want]) => want));
  });

  it("Pool one-shot whose arguments need the server's types, bounded and given up on before and while it runs: it fails alone", async () => {
    await using pool = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    for (const when of ["ahead runs", "its describe is answered"]) {
      const slow = pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.1)", [1]);
      const ac = new AbortController();
      const bounded = settle(
        pool.fetchVal(fresh("SELECT array_length($1::int[], 1) FROM pg_sleep(0.2)"), [[1, 2]], {
          signal: ac.signal,
        }),
      );
      const later = pool.fetchVal<number>(fresh("SELECT $1::text[]"), [["z"]]);
      if (when === "ahead runs") ac.abort(new Error("given up"));
      else void slow.then(() => ac.abort(new Error("given up")));
      assert.equal(await slow, 1, when);
      assert.equal(await bounded, "error Error:given up", when);
      assert.deepEqual(await later, ["z"], when);
    }
    assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid, "the connection went on serving");
  });

  it("Pool one-shots that fail before or at the server (unsendable arguments, parse errors, wrong argument counts) fail alone", async () => {
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      pipelineDepth: 32,
    });
    const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    const runs: Promise<unknown>[] = [];
    const want: unknown[] = [];
    const bad: [string, () => Promise<unknown>][] = [
      ["invalid date", () => pool.fetchVal("SELECT $1::timestamptz", ["not a date"])],
      ["syntax error", () => pool.fetchVal("SELEC $1::int", [1])],
      ["syntax error, simple", () => pool.fetchVal("SELEC 1")],
      [
        "missing table, describe-first",
        () => pool.fetchVal(fresh("SELECT $1::jsonb FROM pipe_missing"), [{}]),
      ],
      ["too few arguments", () => pool.fetchVal("SELECT $1::int + $2::int", [1])],
      ["a BigInt out of int range", () => pool.fetchVal("SELECT $1::int", [2n ** 40n])],
    ];
    for (const [, run] of bad) {
      runs.push(settle(pool.fetchVal("SELECT $1::int", [runs.length])));
      want.push(want.length);
      runs.push(settle(run()).then((v) => typeof v === "string" && v.startsWith("error ") ? "failed" : v));
      want.push("failed");
    }
    runs.push(settle(pool.fetchVal("SELECT pg_backend_pid()")));
    want.push(pid);
    const got = await within(10_000, Promise.all(runs), "the one-shots");
    assert.deepEqual(got, want, bad.map(([name], i) => `${name}: ${String(got[2 * i + 1])}`).join("; "));
    assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid, "the connection went on serving");
  });

  it("Pool one-shot with a large result among small ones: each gets its own rows", async () => {
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      pipelineDepth: 16,
    });
    const small = Array.from({ length: 6 }, (_, i) => pool.fetchVal<number>("SELECT $1::int", [i]));
    const big = pool.fetch<{ n: number; pad: string }>(
      "SELECT n, repeat('y', 100) AS pad FROM generate_series(1, $1::int) n",
      [100_000],
    );
    const after = Array.from({ length: 6 }, (_, i) => pool.fetchVal<number>("SELECT $1::int", [i + 10]));
    assert.equal(pool.getWaitingCount(), 0);
    assert.deepEqual(await Promise.all(small), [0, 1, 2, 3, 4, 5]);
    const rows = await big;
    assert.equal(rows.length, 100_000);
    assert.equal(rows[99_999]?.n, 100_000);
    assert.deepEqual(await Promise.all(after), [10, 11, 12, 13, 14, 15]);
  });

  it("Pool one-shots past a small statement cache (prepared statements closed while others are in flight): own answers", async () => {
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      statementCacheSize: 4,
    });
    const n = 400;
    const got = await within(
      20_000,
      Promise.all(
        Array.from({ length: n }, (_, i) => pool.fetchVal<number>(`SELECT $1::int + ${i % 13}`, [i])),
      ),
      "the one-shots",
    );
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i + (i % 13)));
    const prepared = await pool.fetchVal<number>(
      "SELECT count(*)::int FROM pg_prepared_statements WHERE NOT from_sql",
    );
    assert.ok(prepared !== null && prepared <= 4 + 8, `${prepared} statements prepared on the connection`);
  });

  it("Pool copy helper among pipelined one-shots waits for a connection of its own, and the one-shots go on", async () => {
    const table = `pipe_copy_${process.pid}`;
    await admin.execute(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int, name text)`);
    await using pool = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    const before = Array.from(
      { length: 4 },
      (_, i) => pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.01)", [i]),
    );
    const copy = pool.copyRecordsToTable(table, { records: [[1, "one"], [2, "two"]] });
    const later = pool.fetchVal<number>("SELECT $1::int", [9]);
    assert.equal(
      pool.getWaitingCount(),
      2,
      "the copy waits for the one-shots' connection; the later one-shot behind it",
    );
    assert.deepEqual(await Promise.all(before), [0, 1, 2, 3]);
    assert.equal(await copy, "COPY 2");
    assert.equal(await later, 9);
    assert.equal(await admin.value(`SELECT count(*)::int FROM ${table}`), 2);
    await admin.execute(`DROP TABLE ${table}`);
  });

  it("Pool.close() with pipelined one-shots in flight lets them finish, then closes", async () => {
    const pool = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    const inFlight = Array.from(
      { length: 6 },
      (_, i) => pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.02)", [i]),
    );
    const closed = pool.close({ timeout: 5 });
    assert.deepEqual(await within(5000, Promise.all(inFlight), "the one-shots"), [0, 1, 2, 3, 4, 5]);
    await within(6000, closed, "close()");
    assert.equal(pool.getSize(), 0);
  });
});

/**
 * `con.cursor()` against a real server, on the driver PGPOOL_DRIVER picks (CI runs this file on
 * both): iteration in batches, the object API, the transaction it needs, the checkout's end
 * (`CONNECTION_RELEASED` synchronously) and flat memory over a large result. Ported in spirit
 * from asyncpg's tests/test_cursor.py.
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { Cursor } from "../../mod.ts";
import { createTestPool, getTestServer, rejection, type TestServer, warningLog } from "./pool_support.ts";
import { collectGarbage } from "../support/gc.ts";

let server: TestServer;

/** Calls every method of a cursor; each must throw `CONNECTION_RELEASED` at once (no promise). */
function assertAllReleased(cursor: Cursor<unknown>): void {
  const calls: [string, () => unknown][] = [
    ["fetch", () => cursor.fetch(1)],
    ["fetchRow", () => cursor.fetchRow()],
    ["forward", () => cursor.forward(1)],
    ["close", () => cursor.close()],
    ["[Symbol.asyncIterator]", () => cursor[Symbol.asyncIterator]()],
  ];
  for (const [name, call] of calls) {
    assert.throws(call, (e: Error & { code?: string }) => {
      assert.equal(e.code, "CONNECTION_RELEASED", name);
      return true;
    });
  }
}

describe("Cursor on a real server", () => {
  before(async () => {
    server = await getTestServer();
  });

  it("Cursor iterates every row in order, fetching prefetch rows per round", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    const seen = await con.transaction(async (tx) => {
      const out: number[] = [];
      for await (
        const row of tx.cursor<{ n: number }>("SELECT generate_series(1, $1::int) AS n", [25], {
          prefetch: 7,
        })
      ) {
        out.push(row.n);
      }
      // Exhausted: closed on the server.
      assert.equal(await tx.fetchVal("SELECT count(*)::int FROM pg_cursors"), 0);
      return out;
    });
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it("Cursor iteration fetches prefetch rows per round: the server-side position stands after the batch", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    await con.transaction(async (tx) => {
      const cursor = tx.cursor<{ n: number }>("SELECT generate_series(1, 100) AS n", [], { prefetch: 10 });
      const it = cursor[Symbol.asyncIterator]();
      assert.deepEqual((await it.next()).value, { n: 1 });
      // One round of 10 fetched: the server-side cursor stands after row 10.
      assert.deepEqual(await cursor.fetchRow(), { n: 11 });
      await it.return?.();
    });
  });

  it("Cursor closes on break, and the transaction goes on", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    await con.transaction(async (tx) => {
      let first: unknown;
      for await (const row of tx.cursor("SELECT generate_series(1, 1000) AS n")) {
        first = row;
        break;
      }
      assert.deepEqual(first, { n: 1 });
      assert.equal(await tx.fetchVal("SELECT count(*)::int FROM pg_cursors"), 0);
      assert.equal(await tx.fetchVal("SELECT 2"), 2);
    });
  });

  it("Cursor.fetch(), fetchRow() and forward() read and skip as asked", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    await con.transaction(async (tx) => {
      const cursor = tx.cursor<{ n: number; s: string }>(
        "SELECT n, $1::text || n AS s FROM generate_series(1, 10) AS n",
        ["row "],
      );
      assert.deepEqual(await cursor.fetch(2), [{ n: 1, s: "row 1" }, { n: 2, s: "row 2" }]);
      assert.equal(await cursor.forward(3), 3);
      assert.deepEqual(await cursor.fetchRow(), { n: 6, s: "row 6" });
      assert.deepEqual((await cursor.fetch(100)).map((r) => r.n), [7, 8, 9, 10]);
      assert.equal(await cursor.fetchRow(), null);
      assert.deepEqual(await cursor.fetch(5), []);
      assert.equal(await cursor.forward(5), 0);
      await cursor.close();
      assert.equal((await rejection(cursor.fetch(1))).code, "CURSOR_CLOSED");
      assert.throws(() => cursor.fetch(0), { code: "INVALID_ARGUMENT" });
    });
  });

  it("Cursor outside a transaction throws NO_TRANSACTION before anything is sent", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    assert.throws(() => con.cursor("SELECT 1"), { code: "NO_TRANSACTION" });
    // Made inside a transaction that ended before its first use: rejected, nothing sent.
    let late: Cursor | undefined;
    await con.transaction((tx) => {
      late = tx.cursor("SELECT 1 AS a");
      return Promise.resolve();
    });
    assert.equal((await rejection(late!.fetchRow())).code, "NO_TRANSACTION");
    assert.throws(() => late![Symbol.asyncIterator](), { code: "NO_TRANSACTION" });
    assert.equal(await con.fetchVal("SELECT 1"), 1);
  });

  it("Cursor with a query the server refuses rejects with its error; the transaction fails as usual", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    const error = await rejection(con.transaction(async (tx) => {
      await tx.cursor("SELECT * FROM cursor_no_such_table").fetch(1);
    }));
    assert.equal(error.code, "42P01");
    assert.equal(await con.fetchVal("SELECT 1"), 1);
  });

  it("Cursor rounds are bounded by the cursor's timeout: a slow FETCH rejects with QUERY_TIMEOUT", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    const error = await rejection(con.transaction(async (tx) => {
      const cursor = tx.cursor<{ n: number }>(
        "SELECT n, pg_sleep(CASE WHEN n = 3 THEN 30 ELSE 0 END) FROM generate_series(1, 5) AS n",
        [],
        { timeout: 0.5 },
      );
      assert.equal((await cursor.fetchRow())?.n, 1);
      assert.equal((await cursor.fetchRow())?.n, 2);
      await cursor.fetchRow(); // row 3 sleeps
    }));
    assert.equal(error.code, "QUERY_TIMEOUT");
    assert.equal(await con.fetchVal("SELECT 1"), 1, "the connection stays usable");
  });

  it("Cursor methods throw CONNECTION_RELEASED synchronously after release", async () => {
    const warnings = warningLog();
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      onWarning: warnings.onWarning,
    });
    const con = await pool.acquire();
    await con.execute("BEGIN");
    const cursor = con.cursor("SELECT generate_series(1, 10) AS n");
    const unopened = con.cursor("SELECT 1");
    assert.deepEqual(await cursor.fetchRow(), { n: 1 });
    const stmt = await con.prepare("SELECT generate_series(1, $1::int) AS n");
    const fromStatement = stmt.cursor([3]);
    await pool.release(con); // rolled back: the server's cursor is gone
    assertAllReleased(cursor);
    assertAllReleased(unopened);
    assertAllReleased(fromStatement);
    assert.throws(() => con.cursor("SELECT 1"), { code: "CONNECTION_RELEASED" });
    assert.deepEqual(warnings.codes(), ["RELEASED_IN_TRANSACTION"]);
    await using next = await pool.acquire();
    assert.equal(await next.fetchVal("SELECT count(*)::int FROM pg_cursors"), 0);
  });

  it("Cursor iteration released mid-way throws CONNECTION_RELEASED at the next round", async () => {
    const warnings = warningLog();
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      onWarning: warnings.onWarning,
    });
    const con = await pool.acquire();
    await con.execute("BEGIN");
    const seen: number[] = [];
    const error = await rejection((async () => {
      for await (
        const row of con.cursor<{ n: number }>("SELECT generate_series(1, 10) AS n", [], { prefetch: 3 })
      ) {
        seen.push(row.n);
        if (row.n === 2) await pool.release(con);
      }
    })());
    assert.equal(error.code, "CONNECTION_RELEASED");
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(warnings.codes(), ["RELEASED_IN_TRANSACTION"]);
  });

  it("Cursor keeps memory flat over a million rows", async () => {
    const total = 1_000_000;
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    await using con = await pool.acquire();
    let count = 0;
    let sum = 0;
    let base = 0;
    let peak = 0;
    const started = Date.now();
    await con.transaction(async (tx) => {
      const rows = tx.cursor<{ n: number; pad: string }>(
        "SELECT n, repeat('x', 20) AS pad FROM generate_series(1, $1::int) AS n",
        [total],
        { prefetch: 1000 },
      );
      for await (const row of rows) {
        count++;
        sum += row.n;
        if (count % 200_000 === 0) {
          collectGarbage();
          const used = process.memoryUsage().heapUsed;
          if (count === 200_000) base = used;
          else peak = Math.max(peak, used);
        }
      }
    });
    assert.equal(count, total);
    assert.equal(sum, (total * (total + 1)) / 2);
    const growth = peak - base;
    // Holding the rows would take about 100 MB; a batch of 1000 is a few hundred kB.
    assert.ok(growth < 16 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(Date.now() - started < 60_000);
  });
});

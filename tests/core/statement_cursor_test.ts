/**
 * The core side of `prepare()` and `cursor()` on the fake driver: what is sent
 * (and what is not), and the checkout boundary. Real-server behaviour is in
 * tests/integration/pool_prepare_test.ts and pool_cursor_test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readyPool } from "../support/core_pool.ts";

describe("Connection.cursor() and prepare() on the core", () => {
  it("PoolConnection.cursor() throws NO_TRANSACTION outside a transaction and sends nothing", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const fake = h.driver.connections[0]!;
    const before = fake.queries.length;
    assert.throws(() => con.cursor("SELECT 1"), { code: "NO_TRANSACTION" });
    assert.equal(fake.queries.length, before);
    await h.pool.release(con);
  });

  it("PoolConnection.cursor() declares at first use, then sends FETCH, MOVE and CLOSE", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const fake = h.driver.connections[0]!;
    await con.transaction(async (tx) => {
      const cursor = tx.cursor("SELECT n FROM t WHERE n > $1", [1], { prefetch: 5 });
      assert.deepEqual(fake.queries, ["BEGIN"], "nothing sent before the first use");
      await cursor.fetch(3);
      await cursor.forward(2);
      await cursor.close();
    });
    const [begin, declare, fetch, move, close, commit] = fake.queries;
    assert.equal(begin, "BEGIN");
    assert.match(
      declare!,
      /^DECLARE "pgpool_cursor_\d+" NO SCROLL CURSOR FOR SELECT n FROM t WHERE n > \$1$/,
    );
    assert.deepEqual(fake.args[1], [1]);
    assert.match(fetch!, /^FETCH FORWARD 3 FROM "pgpool_cursor_\d+"$/);
    assert.match(move!, /^MOVE FORWARD 2 FROM "pgpool_cursor_\d+"$/);
    assert.match(close!, /^CLOSE "pgpool_cursor_\d+"$/);
    assert.equal(commit, "COMMIT");
    await h.pool.release(con);
  });

  it("PoolConnection.cursor() refuses a prefetch or row count that is not a positive integer", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await con.transaction(async (tx) => {
      assert.throws(() => tx.cursor("SELECT 1", [], { prefetch: 0 }), { code: "INVALID_ARGUMENT" });
      const cursor = tx.cursor("SELECT 1");
      assert.throws(() => cursor.fetch(1.5), { code: "INVALID_ARGUMENT" });
      assert.throws(() => cursor.forward(-1), { code: "INVALID_ARGUMENT" });
      await cursor.close(); // never opened: nothing to close
    });
    assert.deepEqual(h.driver.connections[0]!.queries, ["BEGIN", "COMMIT"]);
    await h.pool.release(con);
  });

  it("PoolConnection.prepare() rejects with UNSUPPORTED when the driver cannot describe a statement", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await assert.rejects(con.prepare("SELECT 1"), { code: "UNSUPPORTED" });
    await h.pool.release(con);
    assert.throws(() => con.prepare("SELECT 1"), { code: "CONNECTION_RELEASED" });
    assert.throws(() => con.cursor("SELECT 1"), { code: "CONNECTION_RELEASED" });
  });
});

/**
 * The driver writes statements of its own (the pipelined reset, the statement
 * that absorbs a late cancel) and cuts their answers out of the stream. These
 * tests make the server's bytes arrive a few at a time so that the answers of
 * postgres.js's statements and of the driver's own interleave at every
 * boundary, and check that every statement still gets its own answer.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";
import type { DriverConnection } from "../../src/core/driver.ts";
import { DRIVERS } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import type { Connector } from "../../src/runtime/transport.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

/** The heap after a full collection: what is retained, not garbage not yet collected. */
function retainedHeap(): number {
  const g = globalThis as { Bun?: { gc(sync: boolean): void } };
  if (g.Bun !== undefined) {
    g.Bun.gc(true);
  } else {
    v8.setFlagsFromString("--expose-gc");
    (vm.runInNewContext("gc") as () => void)();
  }
  return process.memoryUsage().heapUsed;
}

/** Delivers what the server sends in 7-byte pieces, one piece per macrotask. */
const dribbling: Connector = (target, handlers, options) => {
  let queue = Promise.resolve();
  return nodeConnector(target, {
    data: (chunk) => {
      const copy = chunk.slice();
      queue = queue.then(async () => {
        for (let i = 0; i < copy.length; i += 7) {
          handlers.data(copy.subarray(i, i + 7));
          await new Promise((r) => setTimeout(r, 0));
        }
      });
    },
    drain: handlers.drain,
    close: (error) => {
      queue = queue.then(() => handlers.close(error));
    },
  }, options);
};

for (const { name: driverName, create: createDriver } of DRIVERS) {
  describe(`${driverName}: PostgresConnection pipelining with answers split at every byte boundary`, () => {
    let server: TestServer;
    let con: DriverConnection;
    before(async () => {
      server = await getTestServer();
      con = await createDriver(dribbling).connect({ dsn: server.dsn, sslmode: "disable" });
    });
    after(() => con?.terminate());

    it("a pipelined reset right after a failed statement never hands its answer to the next statement (regression)", async () => {
      // postgres.js settles a failed statement at its ErrorResponse, before its ReadyForQuery.
      for (let i = 0; i < 30; i++) {
        await assert.rejects(con.query("SELECT 1/0", []), { code: "22012" });
        const reset = con.reset({ query: true, pipeline: true });
        const result = await con.query("SELECT $1::int AS v", [i]);
        await reset;
        assert.deepEqual(result.rows, [{ v: i }], `round ${i}`);
      }
      assert.equal(con.isClosed(), false);
    });

    it("a cancelled statement is followed by statements that get their own answers", async () => {
      for (let i = 0; i < 10; i++) {
        await assert.rejects(con.query("SELECT pg_sleep(5)", [], { timeout: 0.05 }), {
          code: "QUERY_TIMEOUT",
        });
        const result = await con.query("SELECT $1::int AS v", [i]);
        assert.deepEqual(result.rows, [{ v: i }], `round ${i}`);
      }
    });
  });

  describe(`${driverName}: PostgresConnection after a statement fails midway through its rows`, () => {
    let server: TestServer;
    let con: DriverConnection;
    before(async () => {
      server = await getTestServer();
      con = await createDriver(nodeConnector).connect({ dsn: server.dsn, sslmode: "disable" });
    });
    after(() => con?.terminate());

    it("a column named __proto__ comes back as an own property (regression)", async () => {
      const result = await con.query(`SELECT 1 AS "__proto__", 2 AS b`, []);
      assert.deepEqual(result.columns, ["__proto__", "b"]);
      const row = result.rows[0]!;
      assert.equal(Object.hasOwn(row, "__proto__"), true);
      assert.equal(row["__proto__"], 1);
      assert.equal(Object.getPrototypeOf(row), Object.prototype);
      assert.deepEqual(Object.keys(row).sort(), ["__proto__", "b"]);
    });

    it("the next statement's rows start at its first row (postgres.js 3.4.9 keeps a stale row counter; regression)", async () => {
      for (let i = 0; i < 3; i++) {
        // one row goes out, then the second fails: DataRow, ErrorResponse, ReadyForQuery
        await assert.rejects(con.query("SELECT 1 / x AS y FROM (VALUES (1), (0)) v(x)", []), {
          code: "22012",
        });
        const result = await con.query("SELECT $1::int AS v UNION ALL SELECT $1::int + 1", [i]);
        assert.deepEqual(result.rows, [{ v: i }, { v: i + 1 }]);
      }
    });
  });

  describe(`${driverName}: PostgresConnection memory across failed statements`, () => {
    let server: TestServer;
    let con: DriverConnection;
    before(async () => {
      server = await getTestServer();
      // prepare: false so that postgres.js's per-connection statement cache keeps nothing either
      con = await createDriver(nodeConnector).connect({
        dsn: server.dsn,
        sslmode: "disable",
        prepare: false,
      });
    });
    after(() => con?.terminate());

    it("a failed statement leaves nothing behind (postgres.js 3.4.9 keeps one entry per failed unsafe(); regression)", async () => {
      const size = 8192;
      const bytes = new Uint8Array(size).fill(0x78);
      const decoder = new TextDecoder();
      const fail = async (i: number): Promise<void> => {
        // A distinct 8 KB text per statement, decoded so that it owns its characters (a
        // concatenation would share them): whatever keeps the text alive shows up in the heap.
        bytes.set(new TextEncoder().encode(`SELECT 1 / 0 -- ${i} `));
        await assert.rejects(con.query(decoder.decode(bytes), []), { code: "22012" });
      };
      for (let i = 0; i < 50; i++) await fail(i);
      const before = retainedHeap();
      const count = 1000;
      for (let i = 0; i < count; i++) await fail(1000 + i);
      const grown = retainedHeap() - before;
      // kept alive, the texts alone would be count * 8 KB (8 MB)
      assert.ok(grown < (count * size) / 4, `heap grew by ${(grown / 1048576).toFixed(1)} MB`);
    });
  });
}

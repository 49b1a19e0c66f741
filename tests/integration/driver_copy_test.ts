import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getTestServer } from "../support/pg_server.ts";
import { DRIVERS } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { runtimeConnector } from "../support/tls_wire.ts";
import type { Driver } from "../../src/core/driver.ts";
import { PoolTimeoutError, PostgresError } from "../../src/core/errors.ts";
import type { DriverConnection } from "../../src/core/driver.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield enc.encode(part);
}

function suite(adapter: string, driver: Driver, name: string): void {
  describe(`${name}: copy (${adapter} adapter)`, () => {
    let con: DriverConnection;

    before(async () => {
      const server = await getTestServer();
      con = await driver.connect({ dsn: server.dsn });
      await con.query("CREATE TEMP TABLE items (id int PRIMARY KEY, name text)", []);
    });

    after(() => con.terminate());

    it("copyIn() feeds rows split across chunks and resolves the COPY tag", async () => {
      await con.query("TRUNCATE items", []);
      const tag = await con.copyIn("COPY items FROM STDIN", chunks("1\tone\n2\t", "two\n", "3\tth", "ree\n"));
      assert.equal(tag, "COPY 3");
      const { rows } = await con.query("SELECT id, name FROM items ORDER BY id", []);
      assert.deepEqual(rows, [{ id: 1, name: "one" }, { id: 2, name: "two" }, { id: 3, name: "three" }]);
      assert.equal(con.transactionStatus, "idle");
    });

    it("copyOut() hands every chunk to the sink and resolves the COPY tag", async () => {
      await con.query("TRUNCATE items", []);
      await con.copyIn("COPY items FROM STDIN (FORMAT csv)", chunks("1,a\n2,b\n"));
      let text = "";
      const tag = await con.copyOut(
        "COPY (SELECT * FROM items ORDER BY id) TO STDOUT (FORMAT csv)",
        (chunk) => {
          text += dec.decode(chunk);
        },
      );
      assert.equal(tag, "COPY 2");
      assert.equal(text, "1,a\n2,b\n");
    });

    it("copyOut() waits for a slow sink (backpressure) and delivers all rows in order", async () => {
      let lines = 0;
      let last = "";
      let pending = "";
      const tag = await con.copyOut(
        "COPY (SELECT g FROM generate_series(1, 50000) g) TO STDOUT",
        async (chunk) => {
          pending += dec.decode(chunk);
          const parts = pending.split("\n");
          pending = parts.pop()!;
          lines += parts.length;
          if (parts.length > 0) last = parts[parts.length - 1]!;
          if (lines % 5000 < parts.length) await new Promise((resolve) => setTimeout(resolve, 1));
        },
      );
      assert.equal(tag, "COPY 50000");
      assert.equal(lines, 50000);
      assert.equal(last, "50000");
    });

    it("copyIn() of bad data rejects with the server error and leaves the connection usable", async () => {
      await con.query("TRUNCATE items", []);
      const error = await con.copyIn("COPY items FROM STDIN", chunks("1\tok\n", "x\tbad\n")).catch((e) => e);
      assert.ok(error instanceof PostgresError, `got ${error}`);
      assert.equal(error.code, "22P02");
      assert.equal(con.transactionStatus, "idle");
      const { rows } = await con.query("SELECT count(*)::int AS n FROM items", []);
      assert.equal(rows[0]!.n, 0);
    });

    it("copyIn() rejects with a constraint error raised after the end of the data", async () => {
      await con.query("TRUNCATE items", []);
      await con.query("INSERT INTO items VALUES (7, 'x')", []);
      const error = await con.copyIn("COPY items FROM STDIN", chunks("7\tdup\n")).catch((e) => e);
      assert.ok(error instanceof PostgresError, `got ${error}`);
      assert.equal(error.code, "23505");
      assert.equal((await con.query("SELECT 1 AS one", [])).rows[0]!.one, 1);
    });

    it("copyIn() rejects with the source's own error, aborts the COPY and keeps the connection", async () => {
      await con.query("TRUNCATE items", []);
      const boom = new Error("source failed");
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield enc.encode("1\tone\n");
        throw boom;
      }
      await assert.rejects(con.copyIn("COPY items FROM STDIN", failing()), (e) => e === boom);
      const { rows } = await con.query("SELECT count(*)::int AS n FROM items", []);
      assert.equal(rows[0]!.n, 0);
    });

    it("copyIn() that the server refuses rejects before reading the source", async () => {
      let read = false;
      async function* source(): AsyncGenerator<Uint8Array> {
        read = true;
        yield enc.encode("1\n");
      }
      const error = await con.copyIn("COPY no_such_table FROM STDIN", source()).catch((e) => e);
      assert.ok(error instanceof PostgresError);
      assert.equal(error.code, "42P01");
      assert.equal(read, false);
    });

    it("copyIn() with a stalled source times out with QUERY_TIMEOUT and the connection stays usable", async () => {
      await con.query("TRUNCATE items", []);
      let release: () => void = () => {};
      async function* stalled(): AsyncGenerator<Uint8Array> {
        yield enc.encode("1\tone\n");
        await new Promise<void>((resolve) => (release = resolve));
        yield enc.encode("2\ttwo\n");
      }
      const error = await con.copyIn("COPY items FROM STDIN", stalled(), { timeout: 0.2 }).catch((e) => e);
      assert.ok(error instanceof PoolTimeoutError && error.code === "QUERY_TIMEOUT", `got ${error}`);
      release();
      const { rows } = await con.query("SELECT count(*)::int AS n FROM items", []);
      assert.equal(rows[0]!.n, 0);
      assert.equal(con.isClosed(), false);
    });
  });
}

const runtime = await runtimeConnector();
for (const under of DRIVERS) {
  suite("node", under.create(nodeConnector), under.name);
  if (runtime.name !== "node") suite(runtime.name, under.create(runtime.connector), under.name);
}

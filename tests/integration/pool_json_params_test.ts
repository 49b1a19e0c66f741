/**
 * JSON parameters through the pool's API on a real server, on both drivers: what the server stores for
 * a plain object, an array, a string, a number, a boolean or null bound to a json or jsonb parameter
 * (typed `$1::jsonb`, or untyped into a json/jsonb column), checked server-side with
 * `jsonb_typeof` / `json_typeof` so that a client that encodes and decodes symmetrically wrong cannot
 * pass. Once a plain object was stored as a JSON string (`"{\"a\":1}"`): the pool turned it into JSON
 * text and the driver's json serializer encoded that text again.
 *
 * The rule (README, "Query arguments"): a plain object is sent as its JSON text; a string is sent as
 * it is, so bound to json/jsonb it is JSON text the server parses (as with asyncpg and node-postgres);
 * an array or a number bound to json/jsonb is sent as its JSON.
 *
 * @module
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresError } from "../../mod.ts";
import { createTestPool, getTestServer, rejection, type TestServer } from "./pool_support.ts";

let server: TestServer;

const NESTED = { a: 1, b: [true, null, "x", { c: { d: [1.5, -2] } }], e: 'quote " and \\ backslash', f: {} };

/** Values and the JSON the server must hold for them, read back with `to_jsonb(...)::text`'s canonical form. */
const VALUES: [string, unknown, string, unknown][] = [
  // name, argument, jsonb_typeof, value fetched back
  ["a plain object", { a: 1 }, "object", { a: 1 }],
  ["a nested object", NESTED, "object", NESTED],
  ["an object with a null prototype", Object.assign(Object.create(null), { k: "v" }), "object", { k: "v" }],
  ["an empty object", {}, "object", {}],
  ["an array of numbers", [1, 2, 3], "array", [1, 2, 3]],
  ["an array of objects", [{ a: 1 }, { b: [2] }], "array", [{ a: 1 }, { b: [2] }]],
  ["an array of strings", ["x", "y"], "array", ["x", "y"]],
  ["a string holding a JSON object", '{"a":1}', "object", { a: 1 }],
  ["a string holding a JSON string", '"text"', "string", "text"],
  ["a string holding JSON null", "null", "null", null],
  ["a number", 42.5, "number", 42.5],
  ["a negative integer", -7, "number", -7],
];

for (const driver of ["native", "postgres"] as const) {
  describe(`JSON parameters on a real server (${driver} driver)`, () => {
    before(async () => {
      server = await getTestServer();
    });

    for (const [name, value, kind, back] of VALUES) {
      it(`Pool.fetchVal() stores ${name} bound to $1::jsonb and $1::json as JSON ${kind} (${driver})`, async () => {
        await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
        // Twice: the first run learns the parameter types, the second uses what it learned.
        for (let run = 0; run < 2; run++) {
          assert.equal(
            await pool.fetchVal("SELECT jsonb_typeof($1::jsonb)", [value]),
            kind,
            `jsonb run ${run}`,
          );
          assert.equal(await pool.fetchVal("SELECT json_typeof($1::json)", [value]), kind, `json run ${run}`);
          assert.deepEqual(await pool.fetchVal("SELECT $1::jsonb", [value]), back, `jsonb back run ${run}`);
          assert.deepEqual(await pool.fetchVal("SELECT $1::json", [value]), back, `json back run ${run}`);
        }
      });

      it(`PoolConnection.execute() inserts ${name} untyped into jsonb and json columns as JSON ${kind} (${driver})`, async () => {
        await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
        await using con = await pool.acquire();
        await con.execute("CREATE TEMP TABLE json_params_t (b jsonb, j json)");
        for (let run = 0; run < 2; run++) {
          await con.execute("INSERT INTO json_params_t VALUES ($1, $2)", [value, value]);
        }
        const rows = await con.fetch(
          "SELECT jsonb_typeof(b) AS tb, json_typeof(j) AS tj, b, j FROM json_params_t",
        );
        assert.deepEqual(rows, [{ tb: kind, tj: kind, b: back, j: back }, {
          tb: kind,
          tj: kind,
          b: back,
          j: back,
        }]);
      });
    }

    it(`Pool.fetchVal() with null bound to $1::jsonb is SQL NULL, not JSON null (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      assert.deepEqual(
        await pool.fetchRow("SELECT $1::jsonb IS NULL AS is_null, jsonb_typeof($1::jsonb) AS kind", [null]),
        { is_null: true, kind: null },
      );
    });

    it(`Pool.fetchVal() rejects a string that is not JSON text bound to jsonb with 22P02 (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      for (const sql of ["SELECT $1::jsonb", "SELECT $1::json"]) {
        const e = await rejection(pool.fetchVal(sql, ["not json"]));
        assert.ok(e instanceof PostgresError, `${sql}: ${e}`);
        assert.equal(e.code, "22P02", sql);
      }
      assert.equal(await pool.fetchVal("SELECT 1"), 1, "the pool stays usable");
    });

    it(`Pool.fetchVal() rejects a boolean bound to jsonb: it is sent as a bool, which has no cast to jsonb (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      const e = await rejection(pool.fetchVal("SELECT $1::jsonb", [true]));
      assert.ok(e instanceof PostgresError, String(e));
      assert.equal(e.code, "42846"); // cannot cast type boolean to jsonb
      // The documented ways: JSON text, or to_jsonb() of the bool.
      assert.equal(await pool.fetchVal("SELECT jsonb_typeof($1::jsonb)", ["true"]), "boolean");
      assert.equal(await pool.fetchVal("SELECT jsonb_typeof(to_jsonb($1::bool))", [true]), "boolean");
    });

    it(`PoolConnection.executeMany() inserts plain objects into a jsonb column as JSON objects (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      await using con = await pool.acquire();
      await con.execute("CREATE TEMP TABLE json_many_t (n int, b jsonb)");
      const args = [[1, { a: 1 }], [2, NESTED], [3, [1, { b: 2 }]], [4, '{"t":true}']];
      await con.executeMany("INSERT INTO json_many_t VALUES ($1, $2)", args);
      await con.executeMany(
        "INSERT INTO json_many_t VALUES ($1, $2::jsonb)",
        args.map(([n, v]) => [n as number + 10, v]),
      );
      const rows = await con.fetch("SELECT n, jsonb_typeof(b) AS kind, b FROM json_many_t ORDER BY n");
      const expect = (n: number) => [
        { n, kind: "object", b: { a: 1 } },
        { n: n + 1, kind: "object", b: NESTED },
        { n: n + 2, kind: "array", b: [1, { b: 2 }] },
        { n: n + 3, kind: "object", b: { t: true } },
      ];
      assert.deepEqual(rows, [...expect(1), ...expect(11)]);
    });

    it(`PreparedStatement.execute() and fetchVal() send plain objects to jsonb as JSON objects (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      await using con = await pool.acquire();
      await con.execute("CREATE TEMP TABLE json_prep_t (b jsonb)");
      const insert = await con.prepare("INSERT INTO json_prep_t VALUES ($1)");
      await insert.execute([{ a: 1 }]);
      await insert.executeMany([[NESTED], [[1, 2]]]);
      const kind = await con.prepare("SELECT jsonb_typeof($1::jsonb) AS kind, $1::jsonb AS v");
      assert.deepEqual(await kind.fetchRow([{ x: [1] }]), { kind: "object", v: { x: [1] } });
      assert.deepEqual(await kind.fetchRow(['{"y":2}']), { kind: "object", v: { y: 2 } });
      const kinds = await con.fetch<{ kind: string }>(
        "SELECT jsonb_typeof(b) AS kind FROM json_prep_t ORDER BY 1",
      );
      assert.deepEqual(kinds.map((r) => r.kind), ["array", "object", "object"]);
      for (const value of [{ a: 1 }, NESTED, [1, 2]]) {
        assert.equal(
          await con.fetchVal("SELECT count(*)::int FROM json_prep_t WHERE b = $1::jsonb", [value]),
          1,
        );
      }
    });

    it(`Pool.fetchVal() sends plain objects and JSON text in an array bound to jsonb[] as JSON values (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      const kinds = await pool.fetchVal("SELECT array_agg(jsonb_typeof(x)) FROM unnest($1::jsonb[]) x", [
        // A nested JS array would be a dimension of the PostgreSQL array: a JSON array element is JSON text.
        [{ a: 1 }, '{"b":2}', "[3]"],
      ]);
      assert.deepEqual(kinds, ["object", "object", "array"]);
    });

    it(`PoolConnection.setTypeCodec() on jsonb: an encoder receives a plain object as its JSON text, as the README says (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      await using con = await pool.acquire();
      const seen: unknown[] = [];
      await con.setTypeCodec("jsonb", {
        encoder: (v) => {
          seen.push(v);
          return typeof v === "string" ? v : JSON.stringify(v);
        },
        decoder: (text) => JSON.parse(text),
      });
      assert.equal(await con.fetchVal("SELECT jsonb_typeof($1::jsonb) AS codec_kind", [{ a: 1 }]), "object");
      assert.equal(await con.fetchVal("SELECT jsonb_typeof($1::jsonb) AS codec_array", [[1, 2]]), "array");
      assert.deepEqual(seen, ['{"a":1}', [1, 2]]);
    });

    it(`Pool.fetchVal() sends a plain object to a text or untyped parameter as its JSON text (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      await using con = await pool.acquire();
      assert.equal(await con.fetchVal("SELECT $1::text", [{ a: 1, b: "x" }]), '{"a":1,"b":"x"}');
      assert.equal(await con.fetchVal("SELECT $1", [{ a: 1 }]), '{"a":1}');
      await con.execute("CREATE TEMP TABLE json_text_t (s text)");
      await con.execute("INSERT INTO json_text_t VALUES ($1)", [{ a: [1] }]);
      assert.equal(await con.fetchVal("SELECT s FROM json_text_t"), '{"a":[1]}');
    });
  });
}

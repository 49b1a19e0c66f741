/**
 * Scalar parameters through the pool's API on a real server, on both drivers: what the server receives for
 * a string, number, bigint, boolean, Date or Uint8Array bound to bool, int, float, numeric, date,
 * timestamp(tz), bytea, text and array parameters. Every check is made by the server (`$1::bool IS TRUE`,
 * `$1::timestamptz = '<literal>'::timestamptz`, ...) so that a client encoding and decoding the same wrong
 * way cannot pass.
 *
 * Regressions: a string bound to a bool parameter was sent as `f` unless it was `true` itself (`"t"`,
 * `"yes"`, `"1"` were false); a string bound to a date/timestamp/timestamptz parameter went through
 * `new Date()` (microseconds lost, the offset of a `timestamp` string applied, a zone-less string read in
 * the process's time zone instead of the session's, `"1"` became 2001-01-01); a plain object, Date or
 * Uint8Array in an array bound to `text[]` became `[object Object]`, the Date's local `toString()`,
 * `1,2,3`; negative zero bound to float8 became 0; an array of numbers bound to bytea wrapped each
 * number to a byte (300 became 44).
 *
 * The rules (README, "Query arguments"): a string is sent as it is, for the server to read (bytea: its
 * UTF-8 bytes); a number as its JavaScript text (negative zero as `-0`), a bigint as its digits, a
 * boolean as a `bool`, a Date as a `timestamptz` instant, a Uint8Array as `bytea`; inside an array bound
 * to a type without its own rule a plain object is its JSON text, a Date its ISO 8601 UTC text and a
 * Uint8Array its bytea hex text.
 *
 * @module
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InterfaceError, PostgresError } from "../../mod.ts";
import { createTestPool, getTestServer, rejection, type TestServer } from "./pool_support.ts";

let server: TestServer;

/** A case the server must answer `true` to: `[what, sql, args]`. */
type Check = readonly [what: string, sql: string, args: readonly unknown[]];

const BYTES = new Uint8Array([0xff, 0x0a, 0xff, 0x00]).subarray(1, 3); // 0a ff, with an offset
const INSTANT = new Date(Date.UTC(2024, 0, 2, 10, 0, 0, 123));

const BOOL_TRUE = ["t", "true", "TRUE", "yes", "y", "on", "1", " true "];
const BOOL_FALSE = ["f", "false", "no", "off", "0"];

const CHECKS: readonly Check[] = [
  // bool
  ...BOOL_TRUE.map((
    s,
  ): Check => [`the string ${JSON.stringify(s)} bound to bool is true`, "SELECT $1::bool IS TRUE", [s]]),
  ...BOOL_FALSE.map((s): Check => [
    `the string ${JSON.stringify(s)} bound to bool is false`,
    "SELECT $1::bool IS FALSE",
    [s],
  ]),
  ["the boolean true bound to bool is true", "SELECT $1::bool IS TRUE", [true]],
  ["the boolean false bound to bool is false", "SELECT $1::bool IS FALSE", [false]],
  ["the number 1 bound to bool is true", "SELECT $1::bool IS TRUE", [1]],
  ["the number 0 bound to bool is false", "SELECT $1::bool IS FALSE", [0]],
  ["strings in an array bound to bool[] are read by the server", "SELECT $1::bool[] = '{t,f,t,f}'::bool[]", [[
    "t",
    "false",
    "yes",
    "0",
  ]]],
  // Arrays of text: elements that are not strings.
  [
    "a plain object in an array bound to text[] is its JSON text",
    `SELECT ($1::text[])[2] = '{"a":1,"b":[true,null]}'`,
    [["x", { a: 1, b: [true, null] }]],
  ],
  [
    "a plain object first in an array bound to text[] is its JSON text",
    `SELECT $1::text[] = '{"{\\"a\\":1}"}'`,
    [[{
      a: 1,
    }]],
  ],
  [
    "plain objects in a nested array bound to text[] are their JSON text",
    `SELECT ($1::text[])[1][2] = '{"b":2}'`,
    [[[
      { a: 1 },
      { b: 2 },
    ]]],
  ],
  [
    "a Date after a string in an array bound to text[] is its instant with milliseconds",
    "SELECT ($1::text[])[2]::timestamptz = '2024-01-02 10:00:00.123+00'",
    [["x", INSTANT]],
  ],
  [
    "a Uint8Array after a string in an array bound to text[] is its bytea hex text",
    "SELECT ($1::text[])[2] = '\\x0aff'",
    [["x", BYTES]],
  ],
  [
    "numbers, bigints and booleans in an array bound to text[] are their text",
    "SELECT $1::text[] = '{x,1.5,12,true}'",
    [[
      "x",
      1.5,
      12n,
      true,
    ]],
  ],
  // date, timestamp, timestamptz: strings as written, Dates as instants.
  [
    "a timestamptz string keeps its microseconds",
    "SELECT $1::timestamptz = '2024-01-02 10:00:00.123456+00'::timestamptz",
    ["2024-01-02 10:00:00.123456+00"],
  ],
  [
    "a timestamp string with an offset is read as PostgreSQL reads it (the offset ignored)",
    "SELECT $1::timestamp = '2024-01-02 10:00:00'::timestamp",
    ["2024-01-02 10:00:00+05:30"],
  ],
  [
    "a timestamp string keeps its microseconds",
    "SELECT $1::timestamp = '2024-01-02 10:00:00.000001'::timestamp",
    ["2024-01-02 10:00:00.000001"],
  ],
  ["a date string is that date", "SELECT $1::date = '2024-01-02'::date", ["2024-01-02"]],
  ["a BC date string is that date", "SELECT $1::date = '0044-03-15 BC'::date", ["0044-03-15 BC"]],
  ["the string infinity bound to timestamptz is infinity", "SELECT $1::timestamptz = 'infinity'", [
    "infinity",
  ]],
  [
    "strings in an array bound to timestamptz[] keep their microseconds",
    "SELECT $1::timestamptz[] = '{2024-01-02 10:00:00.123456+00,infinity}'::timestamptz[]",
    [["2024-01-02 10:00:00.123456+00", "infinity"]],
  ],
  ["a Date bound to timestamptz is its instant", "SELECT $1::timestamptz = '2024-01-02 10:00:00.123+00'", [
    INSTANT,
  ]],
  ["a Date of year 99 bound to timestamptz is year 99", "SELECT extract(year FROM $1::timestamptz) = 99", [
    new Date("0099-06-01T00:00:00Z"),
  ]],
  // Numbers.
  ["negative zero bound to float8 is negative zero", "SELECT $1::float8::text = '-0'", [-0]],
  ["negative zero bound to float4 is negative zero", "SELECT $1::float4::text = '-0'", [-0]],
  ["negative zero in an array bound to float8[] is negative zero", "SELECT ($1::float8[])[2]::text = '-0'", [[
    1,
    -0,
  ]]],
  ["0.1 bound to float8 is the same double", "SELECT $1::float8 = '0.1'::float8", [0.1]],
  ["0.1 bound to numeric is exactly 0.1", "SELECT $1::numeric = 0.1", [0.1]],
  ["the largest double bound to float8 is itself", "SELECT $1::float8 = '1.7976931348623157e308'::float8", [
    Number.MAX_VALUE,
  ]],
  ["the smallest subnormal bound to float8 is itself", "SELECT $1::float8 = '5e-324'::float8", [
    Number.MIN_VALUE,
  ]],
  ["NaN bound to float8 is NaN", "SELECT $1::float8 = 'NaN'::float8", [Number.NaN]],
  ["Infinity bound to float8 is infinity", "SELECT $1::float8 = 'Infinity'::float8", [Infinity]],
  ["-Infinity bound to float8 is -infinity", "SELECT $1::float8 = '-Infinity'::float8", [-Infinity]],
  ["1e21 bound to numeric is 10^21", "SELECT $1::numeric = 10::numeric ^ 21", [1e21]],
  ["1e-7 bound to numeric is 10^-7", "SELECT $1::numeric = 0.0000001", [1e-7]],
  ["a bigint bound to int8 is exact", "SELECT $1::int8 = 9223372036854775807", [2n ** 63n - 1n]],
  ["a string bound to int8 is exact beyond 2^53", "SELECT $1::int8 = 9007199254740993", ["9007199254740993"]],
  ["a string bound to numeric is exact", "SELECT $1::numeric = 12345678901234567890.123456789", [
    "12345678901234567890.123456789",
  ]],
  // Other types whose strings go as written.
  ["a string bound to interval is that interval", "SELECT $1::interval = '1 day 02:00'::interval", [
    "1 day 02:00",
  ]],
  [
    "an upper-case string bound to uuid is that uuid",
    "SELECT $1::uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
    [
      "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
    ],
  ],
  // bytea.
  ["a Uint8Array view bound to bytea is its bytes", "SELECT $1::bytea = '\\x0aff'::bytea", [BYTES]],
  ["a Uint8Array bound to text is the bytea's hex text", "SELECT $1::text = '\\x0aff'", [BYTES]],
  ["a string bound to bytea is its UTF-8 bytes", "SELECT $1::bytea = '\\x5c78c3a9'::bytea", ["\\xé"]],
  ["an array of byte numbers bound to bytea is those bytes", "SELECT $1::bytea = '\\x00ff10'::bytea", [[
    0,
    255,
    16,
  ]]],
];

/** A case the server (or the pool) must refuse: `[what, sql, args, code]`. */
type Refusal = readonly [what: string, sql: string, args: readonly unknown[], codes: readonly string[]];

const REFUSALS: readonly Refusal[] = [
  ["a string that is no bool", "SELECT $1::bool", ["maybe"], ["22P02"]],
  ["an empty string bound to bool", "SELECT $1::bool", [""], ["22P02"]],
  ["the number 2 bound to bool", "SELECT $1::bool", [2], ["22P02"]],
  ["a string that is no date", "SELECT $1::date", ["1"], ["22007"]],
  ["the string 2024-02-30 bound to date", "SELECT $1::date", ["2024-02-30"], ["22008"]],
  ["1.5 bound to int4", "SELECT $1::int4", [1.5], ["22P02"]],
  ["NaN bound to int4", "SELECT $1::int4", [Number.NaN], ["22P02"]],
  ["Infinity bound to int8", "SELECT $1::int8", [Infinity], ["22P02"]],
  ["2^31 bound to int4", "SELECT $1::int4", [2 ** 31], ["22003"]],
  // A bigint is declared int8: beyond its range it fails (pass a string for numeric).
  ["a bigint beyond int8 bound to numeric", "SELECT $1::numeric", [2n ** 70n], ["22003"]],
  // A number is no date (postgres.js read it as milliseconds since 1970 once it knew the type, the native
  // driver sent its digits before): pass a Date.
  ["a number bound to timestamptz", "SELECT $1::timestamptz", [INSTANT.getTime()], ["22008"]],
  // An array is declared by its first element: one starting with a boolean is a bool, not a bool[].
  ["an array starting with a boolean bound to bool[]", "SELECT $1::bool[]", [[true, "on"]], ["42846"]],
  // Byte numbers out of range: refused before running (native: a TypeError; postgres.js: its NUL stand-in, 22021).
  ["300 in an array of byte numbers bound to bytea", "SELECT $1::bytea", [[1, 300]], ["TypeError", "22021"]],
  ["-1 in an array of byte numbers bound to bytea", "SELECT $1::bytea", [[-1]], ["TypeError", "22021"]],
  ["1.5 in an array of byte numbers bound to bytea", "SELECT $1::bytea", [[1.5]], ["TypeError", "22021"]],
];

function codeOf(e: unknown): string {
  if (e instanceof PostgresError || e instanceof InterfaceError) return e.code;
  return e instanceof Error ? e.name : String(e);
}

for (const driver of ["native", "postgres"] as const) {
  describe(`Scalar parameters on a real server (${driver} driver)`, () => {
    before(async () => {
      server = await getTestServer();
    });

    for (const [what, sql, args] of CHECKS) {
      it(`Pool.fetchVal() sends ${what} (${driver})`, async () => {
        await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
        // Twice: the first run learns the parameter types, the second uses what it learned.
        for (let run = 0; run < 2; run++) {
          assert.equal(await pool.fetchVal(sql, args), true, `${sql} with ${String(args[0])}, run ${run}`);
        }
      });
    }

    for (const [what, sql, args, codes] of REFUSALS) {
      it(`Pool.fetchVal() refuses ${what} instead of sending another value (${driver})`, async () => {
        await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
        for (let run = 0; run < 2; run++) {
          const e = await rejection(pool.fetchVal(sql, args));
          assert.ok(codes.includes(codeOf(e)), `run ${run}: ${codeOf(e)}: ${String(e)}`);
        }
        assert.equal(await pool.fetchVal("SELECT 1"), 1, "the pool stays usable");
      });
    }

    it(`PoolConnection.execute() inserts strings untyped into a bool column as the server reads them (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      await using con = await pool.acquire();
      await con.execute("CREATE TEMP TABLE bool_params_t (n int, b bool)");
      await con.executeMany("INSERT INTO bool_params_t VALUES ($1, $2)", [[1, "t"], [2, "yes"], [3, "off"], [
        4,
        true,
      ]]);
      assert.deepEqual(
        await con.fetch("SELECT n FROM bool_params_t WHERE b ORDER BY n"),
        [{ n: 1 }, { n: 2 }, { n: 4 }],
      );
    });

    it(`PoolConnection.fetchVal() sends a zone-less timestamptz string for the session's TimeZone to read (${driver})`, async () => {
      await using pool = await createTestPool(server.dsn, { driver, maxSize: 1 });
      await using con = await pool.acquire();
      await con.execute("SET TIME ZONE 'Asia/Kolkata'");
      for (let run = 0; run < 2; run++) {
        assert.equal(
          await con.fetchVal("SELECT $1::timestamptz = '2024-01-02 10:00:00+05:30'", ["2024-01-02 10:00:00"]),
          true,
          `run ${run}`,
        );
        // A Date is an instant, whatever the session's zone.
        assert.equal(
          await con.fetchVal("SELECT $1::timestamptz = '2024-01-02 10:00:00.123+00'", [INSTANT]),
          true,
          `Date run ${run}`,
        );
      }
    });
  });
}

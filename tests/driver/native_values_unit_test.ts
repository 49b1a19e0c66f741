import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  createTypeRegistry,
  inferParamOid,
  parseArrayLiteral,
  serializeArrayLiteral,
  serializeParam,
} from "../../src/drivers/native/values/index.ts";
import { parseArray, serializeArray } from "../../src/drivers/postgresjs/arrays.ts";
import { PoolError } from "../../src/core/errors.ts";

const types = createTypeRegistry();

function parse(oid: number, text: string): unknown {
  const parser = types.parser(oid);
  return parser === undefined ? text : parser(text);
}

describe("createTypeRegistry() parsers", () => {
  it("parser() parses int2, int4, oid, float4 and float8 to numbers, NaN and infinities included", () => {
    assert.equal(parse(21, "-32768"), -32768);
    assert.equal(parse(23, "2147483647"), 2147483647);
    assert.equal(parse(26, "4294967295"), 4294967295);
    assert.equal(parse(700, "1.5"), 1.5);
    assert.equal(parse(701, "-1.2345678901234567e-300"), -1.2345678901234567e-300);
    assert.ok(Number.isNaN(parse(701, "NaN")));
    assert.equal(parse(701, "Infinity"), Infinity);
    assert.equal(parse(700, "-Infinity"), -Infinity);
    assert.ok(Object.is(parse(701, "-0"), -0));
  });

  it("parser() is undefined for int8, numeric, money, time, interval, uuid, point, text: they stay text", () => {
    for (const oid of [20, 1700, 790, 1083, 1266, 1186, 2950, 600, 25, 1043, 18, 19, 869]) {
      assert.equal(types.parser(oid), undefined, `oid ${oid}`);
    }
  });

  it("parser() parses bool 't' to true and 'f' to false", () => {
    assert.equal(parse(16, "t"), true);
    assert.equal(parse(16, "f"), false);
  });

  it("parser() parses json and jsonb with JSON.parse", () => {
    assert.deepEqual(parse(114, '{"a":[1,null,"x"]}'), { a: [1, null, "x"] });
    assert.equal(parse(3802, '"s"'), "s");
    assert.equal(parse(3802, "null"), null);
  });

  it("parser() parses date, timestamp and timestamptz with new Date(text)", () => {
    const tz = parse(1184, "2024-02-29 23:59:59.123456+05:30") as Date;
    assert.equal(tz.toISOString(), "2024-02-29T18:29:59.123Z");
    assert.equal(
      (parse(1114, "2024-01-02 03:04:05") as Date).getTime(),
      new Date("2024-01-02 03:04:05").getTime(),
    );
    assert.equal((parse(1082, "2024-01-02") as Date).toISOString(), "2024-01-02T00:00:00.000Z");
    assert.ok(Number.isNaN((parse(1184, "infinity") as Date).getTime()));
  });

  it("parser() parses bytea hex text to a Buffer", () => {
    const value = parse(17, "\\x00ff10");
    assert.ok(Buffer.isBuffer(value));
    assert.deepEqual([...(value as Buffer)], [0, 255, 16]);
    assert.equal((parse(17, "\\x") as Buffer).length, 0);
  });

  it("parser() parses arrays of built-in types with their element parser", () => {
    assert.deepEqual(parse(1007, "{1,NULL,-3}"), [1, null, -3]);
    assert.deepEqual(parse(1016, "{9007199254740993}"), ["9007199254740993"]);
    assert.deepEqual(parse(1000, "{t,f,NULL}"), [true, false, null]);
    assert.deepEqual(parse(3807, '{"{\\"a\\": 1}",NULL}'), [{ a: 1 }, null]);
    assert.deepEqual(parse(1001, '{"\\\\x01ff"}'), [Buffer.from([1, 255])]);
    assert.deepEqual(parse(1185, '{"2024-01-02 03:04:05+00"}'), [new Date("2024-01-02T03:04:05Z")]);
    assert.deepEqual(parse(1231, "{1.50,NaN}"), ["1.50", "NaN"]);
  });

  it("parser() leaves arrays of types outside the built-in set (point[], box[]) as text", () => {
    assert.equal(types.parser(1017), undefined);
    assert.equal(types.parser(1020), undefined);
  });

  it("addArrayTypes() registers new arrays with their delimiter and keeps the ones already known", () => {
    const own = createTypeRegistry();
    const int4s = own.parser(1007);
    own.addArrayTypes([{ oid: 1020, elem: 603, delim: ";" }, { oid: 1007, elem: 25, delim: "," }]);
    assert.equal(own.parser(1007), int4s);
    assert.deepEqual(own.parser(1020)!("{(1,1),(0,0);(3,3),(2,2)}"), ["(1,1),(0,0)", "(3,3),(2,2)"]);
    assert.equal(types.parser(1020), undefined, "registries are independent");
  });

  it("arrayTypeQuery lists the built-in array types", () => {
    assert.match(types.arrayTypeQuery, /^SELECT .*typarray.* FROM pg_catalog\.pg_type/);
    assert.ok(types.arrayTypeQuery.includes("1184"));
  });
});

describe("parseArrayLiteral()", () => {
  const cases: [string, unknown[]][] = [
    ["{}", []],
    ["{a,b}", ["a", "b"]],
    ['{"NULL",NULL,""}', ["NULL", null, ""]],
    ['{"a,b","c}d","e{f","g\\"h","i\\\\j"}', ["a,b", "c}d", "e{f", 'g"h', "i\\j"]],
    ["{{1,2},{3,4}}", [["1", "2"], ["3", "4"]]],
    ["{{{a}},{{b}}}", [[["a"]], [["b"]]]],
    ["[0:1]={x,y}", ["x", "y"]],
    ["[1:1][-1:0]={{a,b}}", [["a", "b"]]],
    ['{" spaced ",tab\tin}', [" spaced ", "tab\tin"]],
    ['{"ünï😀",😀}', ["ünï😀", "😀"]],
    ['{"\\\\"}', ["\\"]],
  ];
  for (const [text, expected] of cases) {
    it(`parseArrayLiteral() reads ${JSON.stringify(text)} like the postgres.js driver`, () => {
      assert.deepEqual(parseArrayLiteral(text), expected);
      assert.deepEqual(parseArrayLiteral(text), parseArray(text));
    });
  }

  it("parseArrayLiteral() applies the element parser to quoted and unquoted elements but not to NULL", () => {
    const seen: string[] = [];
    const result = parseArrayLiteral('{1,"2",NULL}', (t) => (seen.push(t), +t * 10));
    assert.deepEqual(result, [10, 20, null]);
    assert.deepEqual(seen, ["1", "2"]);
  });

  it("parseArrayLiteral() splits on a custom delimiter only", () => {
    assert.deepEqual(parseArrayLiteral("{a,b;c}", undefined, ";"), ["a,b", "c"]);
    assert.deepEqual(parseArrayLiteral('{{"x;y";z}}', undefined, ";"), [["x;y", "z"]]);
  });
});

describe("serializeArrayLiteral()", () => {
  const cases: unknown[][] = [
    [],
    [1, 2, 3],
    [null, undefined, "NULL", ""],
    ['a"b', "c\\d", "{,}", " x "],
    [[1, 2], [3, null]],
    [[[]]],
    [true, 1n, 1.5],
  ];
  for (const value of cases) {
    it(`serializeArrayLiteral() writes ${JSON.stringify(value, (_, v) => typeof v === "bigint" ? `${v}n` : v)} like the postgres.js driver`, () => {
      assert.equal(serializeArrayLiteral(value), serializeArray(value));
    });
  }

  it("serializeArrayLiteral() quotes and escapes every element and round-trips through parseArrayLiteral()", () => {
    const value = [['a"b', "c\\d"], [null, "NULL"]];
    const text = serializeArrayLiteral(value);
    assert.equal(text, '{{"a\\"b","c\\\\d"},{NULL,"NULL"}}');
    assert.deepEqual(parseArrayLiteral(text), value);
  });

  it("serializeArrayLiteral() joins with a custom delimiter and writes a non-array as a scalar", () => {
    assert.equal(serializeArrayLiteral(["a", "b"], undefined, ";"), '{"a";"b"}');
    assert.equal(serializeArrayLiteral(5, (v) => `<${v}>`), "<5>");
  });
});

describe("serializeParam()", () => {
  it("inferParamOid() declares Date as timestamptz, Uint8Array as bytea, boolean as bool, bigint as int8", () => {
    assert.equal(inferParamOid(new Date()), 1184);
    assert.equal(inferParamOid(new Uint8Array(1)), 17);
    assert.equal(inferParamOid(Buffer.from([1])), 17);
    assert.equal(inferParamOid(false), 16);
    assert.equal(inferParamOid(-5n), 20);
  });

  it("inferParamOid() leaves strings, numbers, null and plain objects to the server (0) and takes an array's first element", () => {
    for (const value of ["x", 1, 1.5, null, {}, [], ["a"], [[1]]]) assert.equal(inferParamOid(value), 0);
    assert.equal(inferParamOid([new Date()]), 1184);
    assert.equal(inferParamOid([[true]]), 16);
  });

  it("serializeParam() writes declared types with their own serializer", () => {
    assert.deepEqual(serializeParam(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6))), {
      oid: 1184,
      text: "2024-01-02T03:04:05.006Z",
    });
    assert.deepEqual(serializeParam(new Uint8Array([0, 15, 255])), { oid: 17, text: "\\x000fff" });
    assert.deepEqual(serializeParam(true), { oid: 16, text: "t" });
    assert.deepEqual(serializeParam(false), { oid: 16, text: "f" });
    assert.deepEqual(serializeParam(-9007199254740993n), { oid: 20, text: "-9007199254740993" });
  });

  it("serializeParam() writes null as SQL NULL", () => {
    assert.deepEqual(serializeParam(null), { oid: 0, text: null });
    assert.deepEqual(serializeParam(null, 3802), { oid: 0, text: null });
  });

  it("serializeParam() writes an undeclared value with the described type's serializer", () => {
    // A string bound to json/jsonb is JSON text, sent as it is (a plain object reaches the driver as its JSON
    // text from the pool's core: encoding it again would store a JSON string); other values get JSON.stringify.
    assert.deepEqual(serializeParam('{"a":1}', 3802), { oid: 0, text: '{"a":1}' });
    assert.deepEqual(serializeParam('"x"', 3802), { oid: 0, text: '"x"' });
    assert.deepEqual(serializeParam({ a: 1 }, 114), { oid: 0, text: '{"a":1}' });
    assert.deepEqual(serializeParam([1, { b: "c" }], 3802), { oid: 0, text: '[1,{"b":"c"}]' });
    assert.deepEqual(serializeParam(2.5, 114), { oid: 0, text: "2.5" });
    assert.deepEqual(serializeParam([1, null, 'a"b'], 1007), { oid: 0, text: '{"1",NULL,"a\\"b"}' });
    assert.deepEqual(serializeParam([["x"]], 1009), { oid: 0, text: '{{"x"}}' });
    assert.deepEqual(serializeParam(['{"a":1}', { b: 2 }], 3807), {
      oid: 0,
      text: '{"{\\"a\\":1}","{\\"b\\":2}"}',
    });
    // A string or number bound to bool, date or timestamp is sent as it is, for the server to read or refuse.
    assert.deepEqual(serializeParam(0, 16), { oid: 0, text: "0" });
    assert.deepEqual(serializeParam("yes", 16), { oid: 0, text: "yes" });
    assert.deepEqual(serializeParam("t", 16), { oid: 0, text: "t" });
    assert.deepEqual(serializeParam("2024-01-02", 1082), { oid: 0, text: "2024-01-02" });
    assert.deepEqual(serializeParam("2024-01-02 10:00:00.123456+05:30", 1114), {
      oid: 0,
      text: "2024-01-02 10:00:00.123456+05:30",
    });
    assert.deepEqual(serializeParam("ab", 17), { oid: 0, text: "\\x6162" });
    assert.deepEqual(serializeParam([0, 255], 17), { oid: 0, text: "\\x00ff" });
    assert.throws(() => serializeParam([300], 17), TypeError);
    // Elements without a serializer of their own: never [object Object].
    assert.deepEqual(serializeParam(["x", { a: 1 }, new Date(0), new Uint8Array([10])], 1009), {
      oid: 0,
      text: '{"x","{\\"a\\":1}","1970-01-01T00:00:00.000Z","\\\\x0a"}',
    });
  });

  it("serializeParam() writes other values with string conversion", () => {
    assert.deepEqual(serializeParam(1.5, 701), { oid: 0, text: "1.5" });
    assert.deepEqual(serializeParam(-0, 701), { oid: 0, text: "-0" });
    assert.deepEqual(serializeParam(NaN), { oid: 0, text: "NaN" });
    assert.deepEqual(serializeParam("12345678901234567890", 1700), { oid: 0, text: "12345678901234567890" });
    // An array bound to a type that is no array is written as an array literal (the server refuses it).
    assert.deepEqual(serializeParam([1, 2], 23), { oid: 0, text: '{"1","2"}' });
  });

  it("serializeParam() writes an array with its first element's declared type like postgres.js does", () => {
    // Declared bool or timestamptz, the array is written as an array literal, which the server refuses for
    // that scalar type (it once became 'f', and one Date a timestamptz truncated to seconds).
    assert.deepEqual(serializeParam([true, false]), { oid: 16, text: '{"true","false"}' });
    assert.deepEqual(serializeParam([new Date(0)]), { oid: 1184, text: '{"1970-01-01T00:00:00.000Z"}' });
    const two = [new Date(0), new Date(1)];
    assert.deepEqual(serializeParam(two), {
      oid: 1184,
      text: '{"1970-01-01T00:00:00.000Z","1970-01-01T00:00:00.001Z"}',
    });
  });

  it("serializeParam() rejects undefined with INVALID_ARGUMENT", () => {
    assert.throws(
      () => serializeParam(undefined),
      (e: unknown) => e instanceof PoolError && e.code === "INVALID_ARGUMENT",
    );
  });
});

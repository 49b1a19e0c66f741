import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Cycle, ProtocolTap } from "../../src/drivers/postgresjs/protocol_tap.ts";
import { parseServerVersion, resetQueryFor } from "../../src/drivers/server_session.ts";
import { parseArray, serializeArray } from "../../src/drivers/postgresjs/arrays.ts";

const enc = new TextEncoder();

function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, body.length + 4);
  out.set(body, 5);
  return out;
}

function cstrings(...parts: string[]): Uint8Array {
  return enc.encode(parts.map((p) => p + "\0").join(""));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function int32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  values.forEach((v, i) => new DataView(out.buffer).setInt32(i * 4, v));
  return out;
}

/** A startup-like stream: key data, parameters, a data row, a tag, an error, a notification, ready. */
function sampleStream(): Uint8Array {
  return concat(
    message("K", int32s(4242, 99)),
    message("S", cstrings("server_version", "15.4")),
    message("D", concat(new Uint8Array([0, 1]), int32s(3), enc.encode("abc"))),
    message("C", cstrings("SELECT 1")),
    message("E", cstrings("SERROR", "VERROR", "C42P01", "Mnope", "P7", "")),
    message("A", concat(int32s(77), cstrings("chan", "payload"))),
    message("Z", enc.encode("E")),
  );
}

describe("ProtocolTap", () => {
  for (const size of [1, 2, 3, 5, 7, 1000]) {
    it(`ProtocolTap decodes the same messages when the stream is split into ${size}-byte chunks`, () => {
      const cycles: Cycle[] = [];
      const notes: unknown[] = [];
      const tap = new ProtocolTap({
        cycle: (c) => cycles.push(c),
        notification: (pid, channel, payload) => notes.push([pid, channel, payload]),
      });
      const bytes = sampleStream();
      for (let i = 0; i < bytes.length; i += size) tap.feed(bytes.subarray(i, i + size));
      assert.equal(tap.pid, 4242);
      assert.equal(tap.secret, 99);
      assert.equal(tap.parameters.get("server_version"), "15.4");
      assert.equal(tap.status, "failed");
      assert.equal(tap.cycles, 1);
      assert.deepEqual(notes, [[77, "chan", "payload"]]);
      assert.equal(cycles.length, 1);
      assert.deepEqual(cycles[0]!.tags, ["SELECT 1"]);
      assert.equal(cycles[0]!.error?.code, "42P01");
      assert.equal(cycles[0]!.error?.position, 7);
    });
  }

  it("ProtocolTap reports idle, transaction and failed from ReadyForQuery", () => {
    const tap = new ProtocolTap();
    const seen: string[] = [];
    for (const b of ["T", "E", "I"]) {
      tap.feed(message("Z", enc.encode(b)));
      seen.push(tap.status);
    }
    assert.deepEqual(seen, ["transaction", "failed", "idle"]);
  });
});

describe("server capabilities", () => {
  it("parseServerVersion() reads two- and three-part versions", () => {
    assert.deepEqual(parseServerVersion("15.4 (Debian 15.4-1)"), {
      major: 15,
      minor: 4,
      micro: 0,
      text: "15.4 (Debian 15.4-1)",
    });
    assert.deepEqual(parseServerVersion("9.6.3"), { major: 9, minor: 6, micro: 3, text: "9.6.3" });
    assert.equal(parseServerVersion("16beta1").major, 16);
  });

  it("resetQueryFor() drops statements the server lacks", () => {
    assert.match(resetQueryFor(new Map()), /pg_advisory_unlock_all.*CLOSE ALL.*UNLISTEN \*.*RESET ALL/s);
    assert.equal(resetQueryFor(new Map([["crdb_version", "v23"]])), "RESET ALL;");
    assert.equal(resetQueryFor(new Map([["padb_revision", "1"]])), "CLOSE ALL;\nRESET ALL;");
    assert.equal(resetQueryFor(new Map([["crate_version", "5"]])), "");
  });
});

describe("array types", () => {
  it("parseArray() reads NULLs, quotes, escapes, nesting and dimension prefixes", () => {
    assert.deepEqual(parseArray('{1,NULL,"3"}', Number), [1, null, 3]);
    assert.deepEqual(parseArray('{"a b","c\\"d","NULL",NULL}'), ["a b", 'c"d', "NULL", null]);
    assert.deepEqual(parseArray("{{1,2},{3,4}}", Number), [[1, 2], [3, 4]]);
    assert.deepEqual(parseArray("[0:1]={x,y}"), ["x", "y"]);
    assert.deepEqual(parseArray("{}"), []);
  });

  it("serializeArray() quotes and escapes elements and writes NULL", () => {
    assert.equal(serializeArray([1, null, 'a"b\\c']), '{"1",NULL,"a\\"b\\\\c"}');
    assert.equal(serializeArray([[1], [2]]), '{{"1"},{"2"}}');
  });
});

describe("ProtocolTap.swallow() safety net", () => {
  it("ProtocolTap reports a cut cycle that holds a BindComplete as misaligned", () => {
    let misaligned = 0;
    const swallowed: string[] = [];
    const tap = new ProtocolTap({ misaligned: () => misaligned++, swallowed: () => swallowed.push("cycle") });
    tap.swallow();
    // BindComplete, CommandComplete "SELECT 1", ReadyForQuery idle: an extended-protocol answer
    const bytes = new Uint8Array([
      0x32,
      0,
      0,
      0,
      4,
      0x43,
      0,
      0,
      0,
      13,
      ...new TextEncoder().encode("SELECT 1"),
      0,
      0x5a,
      0,
      0,
      0,
      5,
      0x49,
    ]);
    const passed = tap.feed(bytes);
    assert.equal(misaligned, 1);
    assert.equal(passed.length, 0, "the cut bytes are not passed on");
    assert.deepEqual(swallowed, ["cycle"]);
  });

  it("ProtocolTap cuts a simple-query answer without complaint and passes what follows", () => {
    let misaligned = 0;
    const tap = new ProtocolTap({ misaligned: () => misaligned++ });
    tap.swallow();
    const own = new Uint8Array([
      0x43,
      0,
      0,
      0,
      14,
      ...new TextEncoder().encode("RESET ALL"),
      0,
      0x5a,
      0,
      0,
      0,
      5,
      0x49,
    ]);
    const next = new Uint8Array([0x32, 0, 0, 0, 4, 0x5a, 0, 0, 0, 5, 0x49]);
    const passed = tap.feed(new Uint8Array([...own, ...next]));
    assert.equal(misaligned, 0);
    assert.deepEqual([...passed], [...next]);
    assert.equal(tap.cycles, 1, "only the passed cycle counts");
  });
});

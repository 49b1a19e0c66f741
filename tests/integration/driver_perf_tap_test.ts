/**
 * The protocol tap decodes messages in place and passes views of the chunk it
 * was fed: these properties pin down that however the stream is split and
 * wherever `swallow()` is called between chunks, it reports and passes on
 * exactly what a message-by-message model says.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Cycle, ProtocolTap } from "../../src/drivers/postgresjs/protocol_tap.ts";

const enc = new TextEncoder();

interface Msg {
  type: string;
  body: Uint8Array;
}

function frame(m: Msg): Uint8Array {
  const out = new Uint8Array(5 + m.body.length);
  out[0] = m.type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, m.body.length + 4);
  out.set(m.body, 5);
  return out;
}

function cstr(...parts: string[]): Uint8Array {
  return enc.encode(parts.map((p) => p + "\0").join(""));
}

function int32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, v);
  return out;
}

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const tags = ["SELECT 1", "INSERT 0 3", "RESET", "UNLISTEN", "CLOSE CURSOR ALL", "é tag", ""];

const message: fc.Arbitrary<Msg> = fc.oneof(
  fc.constantFrom(...tags).map((t) => ({ type: "C", body: cstr(t) })),
  fc.uint8Array({ maxLength: 40 }).map((b) => ({ type: "D", body: b })),
  fc.uint8Array({ maxLength: 12 }).map((b) => ({ type: "T", body: b })),
  fc.constantFrom("ERROR", "FATAL").chain((sev) =>
    fc.constantFrom("42P01", "57014").map((code) => ({
      type: "E",
      body: cstr(`S${sev}`, `V${sev}`, `C${code}`, "Mboom", ""),
    }))
  ),
  fc.constant({ type: "N", body: cstr("SNOTICE", "Mhi", "") }),
  fc.constantFrom("a", "bb").map((v) => ({ type: "S", body: cstr("p_" + v, v) })),
  fc.constantFrom("x", "yz").map((ch) => ({ type: "A", body: join(int32(7), cstr(ch, "pay" + ch)) })),
  fc.constant({ type: "K", body: join(int32(4242), int32(99)) }),
  fc.constant({ type: "1", body: new Uint8Array(0) }),
  fc.constant({ type: "2", body: new Uint8Array(0) }),
);

const cycle: fc.Arbitrary<Msg[]> = fc.tuple(
  fc.array(message, { maxLength: 6 }),
  fc.constantFrom("I", "T", "E"),
).map(([msgs, status]) => [...msgs, { type: "Z", body: enc.encode(status) }]);

interface Seen {
  passed: number[][];
  cycles: { tags: string[]; error: string | undefined; status: string }[];
  swallowed: { error: string | undefined; status: string }[];
  notes: string[];
  misaligned: number;
  fatal: number;
  parameters: [string, string][];
  pid: number;
  secret: number;
  count: number;
}

/** The model: frames the whole stream and decides per message, at its first byte, whether it is cut. */
function model(msgs: Msg[], cuts: number[], swallowAt: number[]): Seen {
  const seen: Seen = {
    passed: cuts.slice(1).map(() => []),
    cycles: [],
    swallowed: [],
    notes: [],
    misaligned: 0,
    fatal: 0,
    parameters: [],
    pid: 0,
    secret: 0,
    count: 0,
  };
  const params = new Map<string, string>();
  let offset = 0;
  let pending = 0;
  let nextSwallow = 0;
  let cycleTags: string[] = [];
  let cycleError: string | undefined;
  for (const m of msgs) {
    while (nextSwallow < swallowAt.length && swallowAt[nextSwallow]! <= offset) {
      pending++;
      nextSwallow++;
    }
    const bytes = frame(m);
    const cut = pending > 0;
    if (!cut) {
      for (let i = 0; i < bytes.length; i++) {
        const at = offset + i;
        const feed = cuts.findIndex((c, k) => k < cuts.length - 1 && at >= c && at < cuts[k + 1]!);
        seen.passed[feed]!.push(bytes[i]!);
      }
    }
    offset += bytes.length;
    const text = new TextDecoder().decode(m.body);
    switch (m.type) {
      case "C":
        if (!cut) cycleTags.push(text.slice(0, text.indexOf("\0")));
        break;
      case "E": {
        const code = /C([0-9A-Z]{5})/.exec(text)![1];
        cycleError ??= code;
        if (text.includes("VFATAL")) seen.fatal++;
        break;
      }
      case "S": {
        const [k, v] = text.split("\0");
        params.set(k!, v!);
        break;
      }
      case "A": {
        const [ch, payload] = text.slice(4).split("\0");
        seen.notes.push(`${ch}:${payload}`);
        break;
      }
      case "K":
        seen.pid = 4242;
        seen.secret = 99;
        break;
      case "1":
      case "2":
        if (cut) seen.misaligned++;
        break;
      case "Z": {
        const status = text === "T" ? "transaction" : text === "E" ? "failed" : "idle";
        if (cut) {
          pending--;
          seen.swallowed.push({ error: cycleError, status });
        } else {
          seen.count++;
          seen.cycles.push({ tags: cycleTags, error: cycleError, status });
        }
        cycleTags = [];
        cycleError = undefined;
        break;
      }
    }
  }
  seen.parameters = [...params];
  return seen;
}

function run(stream: Uint8Array, cuts: number[], swallowAt: number[]): Seen {
  const seen: Seen = {
    passed: [],
    cycles: [],
    swallowed: [],
    notes: [],
    misaligned: 0,
    fatal: 0,
    parameters: [],
    pid: 0,
    secret: 0,
    count: 0,
  };
  const tap = new ProtocolTap({
    cycle: (c: Cycle) => seen.cycles.push({ tags: c.tags, error: c.error?.code, status: c.status }),
    swallowed: (c: Cycle) => seen.swallowed.push({ error: c.error?.code, status: c.status }),
    notification: (_pid, channel, payload) => seen.notes.push(`${channel}:${payload}`),
    misaligned: () => seen.misaligned++,
    fatal: () => seen.fatal++,
  });
  let nextSwallow = 0;
  for (let k = 0; k < cuts.length - 1; k++) {
    while (nextSwallow < swallowAt.length && swallowAt[nextSwallow]! <= cuts[k]!) {
      tap.swallow();
      nextSwallow++;
    }
    const chunk = stream.slice(cuts[k]!, cuts[k + 1]!);
    const before = chunk.slice();
    const passed = tap.feed(chunk);
    // The passed bytes must be copied out now: a view of the chunk may be handed on and the chunk reused.
    seen.passed.push([...passed]);
    assert.deepEqual(chunk, before, "the tap does not write into the chunk");
  }
  seen.parameters = [...tap.parameters];
  seen.pid = tap.pid;
  seen.secret = tap.secret;
  seen.count = tap.cycles;
  return seen;
}

describe("ProtocolTap in place", () => {
  it("ProtocolTap passes and reports what the model says, however the stream is split and cut", () => {
    fc.assert(
      fc.property(
        fc.array(cycle, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (cycles, rawCuts, rawSwallows) => {
          const msgs = cycles.flat();
          const stream = join(...msgs.map(frame));
          const n = stream.length;
          const cuts = [...new Set([0, n, ...rawCuts.map((c) => c % (n + 1))])].sort((a, b) => a - b);
          // swallow() is called between chunks only, at chunk boundaries.
          const swallowAt = rawSwallows.map((s) => cuts[s % (cuts.length - 1)]!).sort((a, b) => a - b);
          assert.deepEqual(run(stream, cuts, swallowAt), model(msgs, cuts, swallowAt));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("ProtocolTap returns the chunk itself when nothing is cut, and a view when the cut is a prefix", () => {
    const tap = new ProtocolTap();
    const own = join(frame({ type: "C", body: cstr("RESET") }), frame({ type: "Z", body: enc.encode("I") }));
    const next = join(
      frame({ type: "C", body: cstr("SELECT 1") }),
      frame({ type: "Z", body: enc.encode("I") }),
    );
    const whole = join(next);
    assert.equal(tap.feed(whole), whole);
    tap.swallow();
    const chunk = join(own, next);
    const passed = tap.feed(chunk);
    assert.equal(passed.buffer, chunk.buffer, "a view, not a copy");
    assert.deepEqual([...passed], [...next]);
  });

  it("ProtocolTap reuses the string of a repeated command tag", () => {
    const tags: string[] = [];
    const tap = new ProtocolTap({ cycle: (c) => tags.push(...c.tags) });
    for (const tag of ["SELECT 1", "SELECT 1", "SELECT 2", "SELECT 1"]) {
      tap.feed(join(frame({ type: "C", body: cstr(tag) }), frame({ type: "Z", body: enc.encode("I") })));
    }
    assert.deepEqual(tags, ["SELECT 1", "SELECT 1", "SELECT 2", "SELECT 1"]);
  });
});

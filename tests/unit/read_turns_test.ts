/**
 * When a read loop waits a turn (src/runtime/read_turns.ts), on a hand-driven clock: only after a
 * slice of back-to-back full reads, and only while another connection waits for an answer.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { READ_SLICE_MS, ReadTurns } from "../../src/runtime/read_turns.ts";

/** A stream reader and another connection, on one clock. */
function pair(): { now: { t: number }; stream: ReadTurns; other: ReadTurns } {
  const now = { t: 1000 };
  return {
    now,
    stream: new ReadTurns(() => now.t),
    other: new ReadTurns(() => now.t),
  };
}

/** Full reads one millisecond apart until the stream asks for a turn; how many it took, or -1 within `max`. */
function readsUntilTurn(now: { t: number }, stream: ReadTurns, max = 50): number {
  for (let i = 1; i <= max; i++) {
    if (stream.afterRead(true)) return i;
    now.t += 1;
  }
  return -1;
}

describe("ReadTurns", () => {
  it("ReadTurns.afterRead() asks for a turn once full reads have gone on for a slice while another connection waits", () => {
    const { now, stream, other } = pair();
    other.wrote();
    // The first full read starts the run; the one READ_SLICE_MS later ends the slice.
    assert.equal(readsUntilTurn(now, stream), READ_SLICE_MS + 1);
    // A new run starts after the turn.
    assert.equal(readsUntilTurn(now, stream), READ_SLICE_MS + 1);
    other.closed();
  });

  it("ReadTurns.afterRead() never asks for a turn when no other connection waits for an answer", () => {
    const { now, stream, other } = pair();
    assert.equal(readsUntilTurn(now, stream), -1);
    // The other connection wrote and then got its answer: it waits no more.
    other.wrote();
    other.afterRead(false);
    assert.equal(readsUntilTurn(now, stream), -1);
    // Closed while waiting: it waits no more either.
    other.wrote();
    other.closed();
    assert.equal(readsUntilTurn(now, stream), -1);
  });

  it("ReadTurns.afterRead() starts the slice over after a read that did not fill its buffer", () => {
    const { now, stream, other } = pair();
    other.wrote();
    for (let i = 0; i < 3 * READ_SLICE_MS; i++) {
      // a short read every few milliseconds: the socket was drained each time, the loop went idle
      assert.equal(stream.afterRead(i % (READ_SLICE_MS - 1) !== 0), false, `read ${i}`);
      now.t += 1;
    }
    other.closed();
  });

  it("ReadTurns.wrote() counts a connection once until its next read, and its own writes never make it yield", () => {
    const { now, stream, other } = pair();
    other.wrote();
    other.wrote(); // still one connection waiting
    other.afterRead(false); // answered
    // The stream's own write is answered by the stream's own next read.
    stream.wrote();
    assert.equal(readsUntilTurn(now, stream), -1);
  });
});

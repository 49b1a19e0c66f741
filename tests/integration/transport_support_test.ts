/**
 * The runtime-neutral pieces the Deno and Bun adapters share (no server needed).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  abortableConnect,
  connectionLost,
  isSslRequest,
  tlsFailed,
  toConnectionError,
  WriteQueue,
} from "../../src/runtime/adapter_support.ts";
import { ConnectionError } from "../../src/core/errors.ts";

function bytes(length: number, fill: number): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

describe("adapter support", () => {
  it("WriteQueue.take() joins small chunks in order and counts bytes", () => {
    const q = new WriteQueue();
    q.push(bytes(3, 1));
    q.push(new Uint8Array(0));
    q.push(bytes(2, 2));
    assert.equal(q.bytes, 5);
    assert.deepEqual(q.take(), new Uint8Array([1, 1, 1, 2, 2]));
    assert.equal(q.bytes, 0);
    assert.equal(q.empty, true);
    assert.equal(q.take(), undefined);
  });

  it("WriteQueue.take() hands a large chunk over as is and never joins past 256 KiB", () => {
    const q = new WriteQueue();
    const big = bytes(1024 * 1024, 7);
    q.push(big);
    q.push(bytes(10, 8));
    assert.equal(q.take(), big, "the same buffer, not a copy");
    for (let i = 0; i < 100; i++) q.push(bytes(4096, i));
    const first = q.take()!;
    assert.equal(first.length, 10 + 63 * 4096, "joined up to the batch limit");
    assert.equal(q.bytes, 10 + 100 * 4096 - first.length);
  });

  it("WriteQueue.unshift() puts the unwritten tail of a partial write back in front", () => {
    const q = new WriteQueue();
    q.push(bytes(4, 1));
    q.push(bytes(4, 2));
    const taken = q.take()!;
    q.push(bytes(1, 3));
    q.unshift(taken.subarray(6));
    assert.equal(q.bytes, 3);
    assert.deepEqual(q.take(), new Uint8Array([2, 2, 3]));
  });

  it("isSslRequest() recognises exactly the 8-byte SSLRequest", () => {
    assert.equal(isSslRequest(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47])), true);
    assert.equal(isSslRequest(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 48])), false, "GSSENCRequest");
    assert.equal(isSslRequest(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47, 0])), false);
  });

  it("errors carry stable codes and name the target", () => {
    const refused = toConnectionError(
      Object.assign(new Error("Connection refused (os error 111)"), { code: "ECONNREFUSED" }),
      "Cannot connect to db:5432",
      "CONNECT_FAILED",
    );
    assert.ok(refused instanceof ConnectionError);
    assert.equal(refused.code, "ECONNREFUSED");
    assert.equal(refused.message, "Cannot connect to db:5432: Connection refused (os error 111)");
    assert.equal(toConnectionError("boom", "Cannot write", "CONNECTION_LOST").code, "CONNECTION_LOST");
    assert.equal(toConnectionError(refused, "ignored", "X"), refused);
    const lost = connectionLost({ kind: "unix", path: "/run/.s.PGSQL.5432" });
    assert.equal(lost.code, "CONNECTION_LOST");
    assert.match(lost.message, /\/run\/\.s\.PGSQL\.5432/);
    const tls = tlsFailed("db.local", "certificate has expired");
    assert.equal(tls.code, "TLS_FAILED");
    assert.equal(tls.message, "TLS handshake with db.local failed: certificate has expired");
  });

  /** A connect attempt the test settles by hand, recording the signal it was given. */
  function manualAttempt(): {
    open: (signal: AbortSignal) => Promise<string>;
    signal: () => AbortSignal;
    succeed: (value: string) => void;
    fail: (error: Error) => void;
  } {
    let given: AbortSignal | undefined;
    let succeed!: (value: string) => void;
    let fail!: (error: Error) => void;
    const promise = new Promise<string>((resolve, reject) => {
      succeed = resolve;
      fail = reject;
    });
    return {
      open: (signal) => {
        given = signal;
        return promise;
      },
      signal: () => given!,
      succeed,
      fail,
    };
  }

  it("abortableConnect() resolves with the connection when nobody aborts, and passes failures on", async () => {
    const ok = manualAttempt();
    const discarded: string[] = [];
    const done = abortableConnect(ok.open, new AbortController().signal, (late) => discarded.push(late));
    ok.succeed("conn");
    assert.equal(await done, "conn");
    const bad = manualAttempt();
    const refused = new Error("refused");
    const failed = abortableConnect(bad.open, new AbortController().signal, (late) => discarded.push(late));
    bad.fail(refused);
    await assert.rejects(failed, (e) => e === refused);
    assert.deepEqual(discarded, []);
    assert.equal(ok.signal().aborted, false);
  });

  it("abortableConnect() rejects at once on abort and discards a connection that completes afterwards", async () => {
    const attempt = manualAttempt();
    const controller = new AbortController();
    const discarded: string[] = [];
    const reason = new Error("caller gave up");
    const done = abortableConnect(attempt.open, controller.signal, (late) => discarded.push(late), 60_000);
    controller.abort(reason);
    await assert.rejects(done, (e) => e === reason);
    assert.equal(attempt.signal().aborted, false, "the attempt is not cancelled within the grace");
    attempt.succeed("late conn");
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(discarded, ["late conn"], "the late connection is handed to discard");
  });

  it("abortableConnect() discards a connection that completed just before the abort was seen", async () => {
    const attempt = manualAttempt();
    const controller = new AbortController();
    const discarded: string[] = [];
    const reason = new Error("caller gave up");
    const done = abortableConnect(attempt.open, controller.signal, (late) => discarded.push(late));
    attempt.succeed("conn");
    controller.abort(reason); // before the attempt's continuation ran
    await assert.rejects(done, (e) => e === reason);
    await Promise.resolve();
    assert.deepEqual(discarded, ["conn"]);
  });

  it("abortableConnect() cancels an attempt still pending when the grace ends; its failure is swallowed", async () => {
    const attempt = manualAttempt();
    const controller = new AbortController();
    const discarded: string[] = [];
    const done = abortableConnect(attempt.open, controller.signal, (late) => discarded.push(late), 5);
    controller.abort(new Error("caller gave up"));
    await assert.rejects(done);
    await new Promise<void>((resolve) => attempt.signal().addEventListener("abort", () => resolve()));
    attempt.fail(new Error("cancelled")); // no unhandled rejection follows
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(discarded, []);
  });
});

/**
 * The runtime-neutral pieces the Deno and Bun adapters share (no server needed).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connectionLost,
  isSslRequest,
  tlsFailed,
  toConnectionError,
  WriteQueue,
} from "../../src/runtime/adapter_support.ts";
import { ConnectionError } from "../../src/errors.ts";

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
});

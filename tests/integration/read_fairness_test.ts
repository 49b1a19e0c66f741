/**
 * One connection streaming a large `COPY` must not keep the other connections' answers waiting
 * until it ends. Under Deno a read that finds data waiting completes without the event loop going
 * idle, and only an idle loop learns that other sockets became readable: before the Deno adapter
 * waited a timer turn now and then during a stream (src/runtime/read_turns.ts), a one-row query
 * on another connection could wait as long as the whole stream.
 *
 * The bound is relative, so a loaded machine slows both sides alike: while the stream runs, no
 * gap between the other connection's answers may exceed a quarter of the stream's duration
 * (measured on Deno: about a twentieth with the turns; a sixth to two fifths of it without, failing three runs in four).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Pool } from "../../mod.ts";
import { createTestPool, getTestServer, type TestServer, within } from "./pool_support.ts";

/** What the COPY produces in all. */
const TOTAL = 300 * 1024 * 1024;
/** Bytes of text per row (plus its newline). */
const ROW_TEXT = 1023;

let server: TestServer;
let pool: Pool | undefined;

describe("Read fairness (real server, native driver)", () => {
  before(async () => {
    server = await getTestServer();
  });

  after(async () => {
    await pool?.close({ timeout: 5 }).catch(() => pool?.terminate());
  });

  it(
    "a connection streaming a 300 MB COPY leaves another connection's answers no gap over a quarter of the stream",
    {
      timeout: 120_000,
    },
    async () => {
      pool = await createTestPool(server.dsn, { driver: "native", minSize: 2, maxSize: 2 });
      const other = await pool.acquire();
      const rows = TOTAL / (ROW_TEXT + 1);
      let bytes = 0;
      let firstChunk = -1;
      let started!: () => void;
      const streaming = new Promise<void>((resolve) => started = resolve);
      const copying = pool.copyFromQuery(
        `SELECT repeat('x', ${ROW_TEXT}) FROM generate_series(1, ${rows})`,
        undefined,
        {
          output: (chunk: Uint8Array) => {
            if (bytes === 0) {
              firstChunk = performance.now();
              started();
            }
            bytes += chunk.length;
          },
        },
      );
      copying.catch(() => {});
      await within(30_000, streaming, "the COPY's first bytes");
      let done = false;
      let copyEnd = -1;
      const copied = copying.then((tag) => {
        copyEnd = performance.now();
        done = true;
        return tag;
      });
      const answers: number[] = [];
      while (!done) {
        assert.equal(await other.fetchVal("SELECT 1"), 1);
        if (!done) answers.push(performance.now());
      }
      assert.equal(await within(60_000, copied, "the COPY"), `COPY ${rows}`);
      assert.equal(bytes, TOTAL);
      await pool.release(other);
      const duration = copyEnd - firstChunk;
      const marks = [firstChunk, ...answers, copyEnd];
      let widest = 0;
      for (let i = 1; i < marks.length; i++) widest = Math.max(widest, marks[i]! - marks[i - 1]!);
      console.log(
        `read fairness: ${answers.length} answers during a ${duration.toFixed(0)} ms stream, widest gap ${
          widest.toFixed(1)
        } ms`,
      );
      assert.ok(
        widest < duration / 4,
        `the other connection waited ${widest.toFixed(1)} ms between answers during a ${
          duration.toFixed(0)
        } ms stream (${answers.length} answers)`,
      );
    },
  );
});

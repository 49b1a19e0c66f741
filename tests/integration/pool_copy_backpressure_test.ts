/**
 * COPY backpressure at the pool level: `pool.copyFromQuery()` into a consumer
 * that stops. The server must end up blocked writing to the client (its
 * backend waits on `ClientWrite`) while the process holds no more than a small,
 * bounded amount of the stream, measured after a forced full garbage
 * collection (`deno task test` passes `--v8-flags=--expose-gc`; Bun has
 * `Bun.gc`). Meanwhile the pool serves other callers on its other connection.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { Pool } from "../../mod.ts";
import { createTestPool, getTestServer, type TestServer, waitFor, within } from "./pool_support.ts";
import { skipTest } from "../support/skip.ts";

const MB = 1024 * 1024;
/** What the COPY produces in all. */
const TOTAL = 96 * MB;
/** Where the consumer stops. */
const STOP_AT = 8 * MB;
/** What the process may retain while the consumer is stopped (socket buffers, one batch in flight). */
const RETAINED_BUDGET = 16 * MB;

/** A full, synchronous collection, or undefined when the runtime does not offer one. */
function forcedGc(): (() => void) | undefined {
  const g = globalThis as { Bun?: { gc(sync: boolean): void }; gc?: () => void };
  if (g.Bun !== undefined) return () => g.Bun!.gc(true);
  return g.gc;
}

/** Bytes the JavaScript side retains after a forced collection: heap, external and array buffers. */
function retained(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + (m.arrayBuffers ?? 0);
}

let server: TestServer;
let pool: Pool | undefined;

describe("Pool COPY backpressure (real server)", () => {
  before(async () => {
    server = await getTestServer();
  });

  after(async () => {
    await pool?.close({ timeout: 5 }).catch(() => pool?.terminate());
  });

  it(
    "pool.copyFromQuery() into a stopped consumer blocks the server (ClientWrite) and retains little; the pool serves others meanwhile",
    {
      timeout: 120_000,
    },
    async (t) => {
      const gc = forcedGc();
      if (gc === undefined) return skipTest(t, "no forced GC (run deno test with --v8-flags=--expose-gc)");
      const app = `copy-backpressure-${process.pid}`;
      pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2, applicationName: app });
      const rowText = 1023;
      const rows = TOTAL / (rowText + 1);
      const baseline = retained(gc);
      let bytes = 0;
      let stopped = false;
      let resume!: () => void;
      const gate = new Promise<void>((r) => resume = r);
      let reachedStop!: () => void;
      const atStop = new Promise<void>((r) => reachedStop = r);
      const copying = pool.copyFromQuery(
        `SELECT repeat('x', ${rowText}) FROM generate_series(1, ${rows})`,
        undefined,
        {
          output: async (chunk: Uint8Array) => {
            bytes += chunk.length;
            if (!stopped && bytes >= STOP_AT) {
              stopped = true;
              reachedStop();
              await gate; // the consumer stops here until the test lets it go on
            }
          },
        },
      );
      copying.catch(() => {});
      await within(30_000, atStop, "the consumer to reach its stop");
      // The server is blocked writing to us: the backpressure reached it.
      const copyPid = await waitFor("the COPY's backend to block on ClientWrite", async () => {
        const [row] = await pool!.fetch<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%generate_series%' AND wait_event = 'ClientWrite'",
          [app],
        );
        return row?.pid;
      }, 10_000);
      assert.ok(copyPid !== undefined && copyPid > 0);
      const held = retained(gc) - baseline;
      const delivered = bytes;
      assert.ok(
        held < RETAINED_BUDGET,
        `retained ${(held / MB).toFixed(1)} MB while stopped after ${(delivered / MB).toFixed(1)} MB of ${
          TOTAL / MB
        } MB`,
      );
      // The other connection is free for other callers while the COPY is stalled. Checked out and released
      // (the release waits for its reset): a one-shot returns once its statement is answered, and its reset
      // may still be on the wire when the COPY ends.
      const other = await pool.acquire({ timeout: 5 });
      try {
        assert.equal(await other.fetchVal("SELECT $1::int", [42], { timeout: 5 }), 42);
      } finally {
        await pool.release(other);
      }
      assert.equal(pool.getIdleSize(), 1, "the other connection is back");
      resume();
      const tag = await within(60_000, copying, "the COPY");
      assert.equal(tag, `COPY ${rows}`);
      assert.equal(bytes, TOTAL, "every byte arrived once the consumer went on");
      assert.equal(pool.getIdleSize(), 2, "the COPY's connection came back");
      console.log(
        `pool COPY: stopped after ${(delivered / MB).toFixed(1)} MB, retained ${
          (held / MB).toFixed(1)
        } MB, ` +
          `backend ${copyPid} waited on ClientWrite`,
      );
    },
  );
});

/**
 * Large COPY through the running runtime's adapter and each driver:
 * memory must stay flat because pause/resume and write backpressure reach the
 * server instead of buffering in the process.
 */

import { before, describe } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { type RuntimeConnector, runtimeConnector } from "../support/tls_wire.ts";
import { currentDriver, itOnEachDriver } from "../support/drivers.ts";
import type { DriverConnection } from "../../src/core/driver.ts";

const MB = 1024 * 1024;
const TOTAL = 200 * MB;
/** Growth of the resident set allowed while 200 MB pass through. */
const RSS_BUDGET = 120 * MB;

let server: TestServer;
let adapter: RuntimeConnector;

async function connect(): Promise<DriverConnection> {
  const driver = currentDriver().create(adapter.connector, { env: {} });
  return await driver.connect({
    host: server.host,
    port: server.port,
    user: server.user,
    database: server.database,
    sslmode: "disable",
  });
}

function rss(): number {
  return process.memoryUsage().rss;
}

/** RSS after a full collection where the runtime offers one: what is retained, not garbage not yet collected. */
function retainedRss(): number {
  const g = globalThis as { Bun?: { gc(sync: boolean): void }; gc?: () => void };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else g.gc?.();
  return rss();
}

describe("runtime transport adapter: large COPY", () => {
  before(async () => {
    server = await getTestServer();
    adapter = await runtimeConnector();
  });

  itOnEachDriver(
    "COPY TO STDOUT of 200 MB into a slow sink keeps memory flat",
    { timeout: 120_000 },
    async () => {
      const con = await connect();
      try {
        const rowText = 1000;
        const rows = Math.ceil(TOTAL / (rowText + 1));
        const start = retainedRss();
        let peak = start;
        let bytes = 0;
        let chunks = 0;
        const tag = await con.copyOut(
          `copy (select repeat('x', ${rowText}) from generate_series(1, ${rows})) to stdout`,
          async (chunk) => {
            bytes += chunk.length;
            if (++chunks % 256 === 0) {
              if (chunks % 4096 === 0) peak = Math.max(peak, retainedRss());
              // A consumer slower than the network: the adapter must stop reading meanwhile.
              await new Promise((resolve) => setTimeout(resolve, 1));
            }
          },
        );
        peak = Math.max(peak, retainedRss());
        assert.equal(tag, `COPY ${rows}`);
        assert.equal(bytes, rows * (rowText + 1));
        console.log(
          `[${adapter.name}] COPY OUT ${(bytes / MB).toFixed(0)} MB: rss ${
            (start / MB).toFixed(0)
          } MB -> peak ${(peak / MB).toFixed(0)} MB`,
        );
        assert.ok(peak - start < RSS_BUDGET, `rss grew by ${((peak - start) / MB).toFixed(0)} MB`);
        const after = await con.query("SELECT 1 AS one", []);
        assert.deepEqual(after.rows, [{ one: 1 }], "the connection reads again after the COPY");
      } finally {
        con.terminate();
      }
    },
  );

  itOnEachDriver(
    "COPY FROM STDIN of 200 MB keeps memory flat and every row arrives",
    { timeout: 120_000 },
    async () => {
      const con = await connect();
      try {
        await con.query("create temp table copy_sink (t text)", []);
        const line = new TextEncoder().encode("y".repeat(1023) + "\n");
        const perChunk = 256;
        const chunkCount = TOTAL / (line.length * perChunk);
        const start = retainedRss();
        let peak = start;
        const source = async function* (): AsyncGenerator<Uint8Array> {
          for (let i = 0; i < chunkCount; i++) {
            const chunk = new Uint8Array(line.length * perChunk);
            for (let j = 0; j < perChunk; j++) chunk.set(line, j * line.length);
            yield chunk;
            if (i % 256 === 0) peak = Math.max(peak, retainedRss());
          }
        };
        const tag = await con.copyIn("copy copy_sink from stdin", source());
        peak = Math.max(peak, retainedRss());
        assert.equal(tag, `COPY ${chunkCount * perChunk}`);
        console.log(
          `[${adapter.name}] COPY IN ${(TOTAL / MB).toFixed(0)} MB: rss ${
            (start / MB).toFixed(0)
          } MB -> peak ${(peak / MB).toFixed(0)} MB`,
        );
        assert.ok(peak - start < RSS_BUDGET, `rss grew by ${((peak - start) / MB).toFixed(0)} MB`);
        const [row] =
          (await con.query("select count(*)::int as n, sum(length(t))::bigint as len from copy_sink", []))
            .rows;
        assert.equal(row!.n, chunkCount * perChunk);
      } finally {
        con.terminate();
      }
    },
  );
});

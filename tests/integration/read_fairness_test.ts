/**
 * One connection streaming a large `COPY` must not keep the other connections' answers waiting
 * until it ends. Under Deno a read that finds data waiting completes without the event loop going
 * idle, and only an idle loop learns that other sockets became readable: before the Deno adapter
 * waited a timer turn now and then during a stream (src/runtime/read_turns.ts), a one-row query
 * on another connection could wait as long as the whole stream.
 *
 * Over TLS a read returns at most 8 KB, so the adapter's notion of a full read follows the
 * transport: the same stream through `Deno.startTls` (verify-full) and through node:tls (require)
 * kept another connection waiting 130–300 ms per gap before.
 *
 * The bound is relative, so a loaded machine slows both sides alike: while the stream runs, no
 * gap between the other connection's answers may exceed a quarter of the stream's duration
 * (measured on Deno: about a twentieth with the turns; a sixth to two fifths of it without, failing three runs in four).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Pool, PoolOptions } from "../../mod.ts";
import { createTestPool, getTestServer, type TestServer, within } from "./pool_support.ts";
import { type PostgresInstance, startPostgres } from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";

/** What the COPY produces in all. */
const TOTAL = 300 * 1024 * 1024;
/** Bytes of text per row (plus its newline). */
const ROW_TEXT = 1023;

let server: TestServer;
let certs: TestCerts;
let tlsServer: PostgresInstance;
let pool: Pool | undefined;

/**
 * Streams the COPY on one connection of a two-connection pool while the other runs `SELECT 1` after
 * `SELECT 1`; asserts that no gap between its answers exceeds a quarter of the stream.
 */
async function streamBesideQueries(dsn: string, options: PoolOptions): Promise<void> {
  pool = await createTestPool(dsn, { driver: "native", minSize: 2, maxSize: 2, ...options });
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
  await pool.close({ timeout: 5 });
  pool = undefined;
  const duration = copyEnd - firstChunk;
  const marks = [firstChunk, ...answers, copyEnd];
  let widest = 0;
  for (let i = 1; i < marks.length; i++) widest = Math.max(widest, marks[i]! - marks[i - 1]!);
  console.log(
    `read fairness (${options.sslmode ?? "plain"}): ${answers.length} answers during a ${
      duration.toFixed(0)
    } ms stream, widest gap ${widest.toFixed(1)} ms`,
  );
  assert.ok(
    widest < duration / 4,
    `the other connection waited ${widest.toFixed(1)} ms between answers during a ${
      duration.toFixed(0)
    } ms stream (${answers.length} answers)`,
  );
}

describe("Read fairness (real server, native driver)", () => {
  before(async () => {
    server = await getTestServer();
    certs = await makeTestCerts();
    tlsServer = await startPostgres({
      ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    });
  });

  after(async () => {
    await pool?.close({ timeout: 5 }).catch(() => pool?.terminate());
    await tlsServer?.destroy();
    await certs?.remove();
  });

  it(
    "a connection streaming a 300 MB COPY leaves another connection's answers no gap over a quarter of the stream",
    {
      timeout: 120_000,
    },
    async () => {
      await streamBesideQueries(server.dsn, {});
    },
  );

  it("the same over TLS with verify-full (Deno.startTls on Deno)", { timeout: 120_000 }, async () => {
    await streamBesideQueries(tlsServer.dsn, { sslmode: "verify-full", sslrootcert: certs.ca.pem });
  });

  it("the same over TLS with require (node:tls over the adapter on Deno)", { timeout: 120_000 }, async () => {
    await streamBesideQueries(tlsServer.dsn, { sslmode: "require" });
  });
});

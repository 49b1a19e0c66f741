/**
 * Serverless manners: an idle pool never keeps the process alive (its timers
 * and idle sockets are unref'd), a checked-out connection with a query in
 * flight does. A child process of the same runtime
 * (tests/integration/pool_exit_child.ts) creates a pool, uses it and never
 * closes it; on both drivers.
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createPool } from "../../mod.ts";
import { systemClock } from "../../src/core/clock.ts";
import { Watchdog } from "../../src/core/watchdog.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

interface ChildRun {
  code: number | null;
  output: string;
  /** Milliseconds from the child's "DONE" line (its script ran to the end) to its exit. */
  afterDone: number;
  /** Milliseconds from its "QUERY" line to its exit. */
  afterQuery: number;
}

/** Runs the child; kills it (and fails) when it is still alive 20 s after it started. */
function runChild(env: Record<string, string>): Promise<ChildRun> {
  const child = path.join(here, "pool_exit_child.ts");
  const args = "Deno" in globalThis ? ["run", "-A", child] : ["run", child];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      env: { ...process.env, ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    let doneAt = NaN;
    let queryAt = NaN;
    const decoder = new TextDecoder();
    p.stdout!.on("data", (d: Uint8Array) => {
      output += decoder.decode(d);
      if (Number.isNaN(queryAt) && output.includes("QUERY")) queryAt = performance.now();
      if (Number.isNaN(doneAt) && output.includes("DONE")) doneAt = performance.now();
    });
    p.stderr!.on("data", (d: Uint8Array) => output += decoder.decode(d));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`the child was still running after 20 s; output so far:\n${output}`));
    }, 20_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      const now = performance.now();
      resolve({ code, output, afterDone: now - doneAt, afterQuery: now - queryAt });
    });
  });
}

let server: TestServer;

describe("Pool serverless manners", { timeout: 60_000 }, () => {
  before(async () => {
    server = await getTestServer();
  });

  for (const driver of ["postgres", "native"]) {
    it(
      `A script that creates a pool, runs queries and never closes it exits with code 0 within 2 s (${driver})`,
      {
        timeout: 30_000,
      },
      async () => {
        const run = await runChild({ EXIT_DSN: server.dsn, EXIT_DRIVER: driver, EXIT_MODE: "idle" });
        assert.equal(run.code, 0, run.output);
        assert.match(run.output, /QUERY one-shot/);
        assert.match(run.output, /DONE/, "the script ran to its end");
        assert.ok(run.afterDone < 2_000, `exited ${run.afterDone.toFixed(0)} ms after its script ended`);
      },
    );

    it(`A driver disarms the bound of a release's reset once the reset is answered (${driver})`, async () => {
      // The postgres.js driver once left it armed for releaseTimeout (60 s) after every release, which
      // kept the process alive that long.
      await using pool = await createPool(server.dsn, {
        driver: driver as "postgres" | "native",
        maxSize: 1,
      });
      const first = await pool.acquire();
      await first.execute("SET work_mem = '8MB'");
      await pool.release(first); // the reset is pipelined: it is answered before the next statement
      await using con = await pool.acquire();
      assert.equal(await con.fetchVal("SHOW work_mem"), "4MB", "the reset ran and was answered");
      assert.equal(Watchdog.of(systemClock).size, 0, "no alarm left armed");
    });

    it(
      `A checked-out connection with a pending pg_sleep(0.5) keeps the process alive until it answers (${driver})`,
      {
        timeout: 30_000,
      },
      async () => {
        const run = await runChild({ EXIT_DSN: server.dsn, EXIT_DRIVER: driver, EXIT_MODE: "busy" });
        assert.equal(run.code, 0, run.output);
        assert.match(
          run.output,
          /DONE[\s\S]*QUERY slept/,
          "the script ended first, the query answered later",
        );
        assert.ok(run.afterDone >= 400, `exited ${run.afterDone.toFixed(0)} ms after its script ended`);
        assert.ok(run.afterQuery < 2_000, `exited ${run.afterQuery.toFixed(0)} ms after the query answered`);
      },
    );
  }
});

/**
 * Serverless manners: an idle pool never keeps the process alive (its timers
 * and idle sockets are unref'd), a checked-out connection with a query in
 * flight does. A child process of the same runtime
 * (tests/integration/pool_exit_child.ts) creates a pool, uses it and never
 * closes it; on both drivers.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createPool } from "../../mod.ts";
import { systemClock } from "../../src/core/clock.ts";
import { Watchdog } from "../../src/core/watchdog.ts";
import {
  getTestServer,
  type PostgresInstance,
  startPostgres,
  type TestServer,
} from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

interface ChildRun {
  code: number | null;
  output: string;
  /** Milliseconds from the child's "DONE" line (its script ran to the end) to its exit. */
  afterDone: number;
  /** Milliseconds from its "QUERY" line to its exit. */
  afterQuery: number;
  /** Milliseconds from the signal sent to its exit. */
  afterSignal: number;
}

/** A running child: its output as it comes, a way to signal it, and its exit. */
interface Spawned {
  kill(signal: "SIGINT" | "SIGTERM" | "SIGKILL"): void;
  /** The exit code, or null when a signal ended it. */
  exited: Promise<number | null>;
}

/**
 * Spawns `execPath args`. On Deno through `Deno.Command`: Deno's `node:child_process` reports a child
 * it sent a signal to as killed by that signal even when the child handled it and exited by itself.
 */
function spawnRuntime(
  args: string[],
  env: Record<string, string>,
  onOutput: (text: string) => void,
): Spawned {
  const decoder = new TextDecoder();
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno !== undefined) {
    const child = new deno.Command(deno.execPath(), { args, env, stdout: "piped", stderr: "piped" }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
      for await (const chunk of stream) onOutput(decoder.decode(chunk));
    };
    const streams = Promise.all([pump(child.stdout), pump(child.stderr)]);
    return {
      kill: (signal) => child.kill(signal),
      exited: Promise.all([child.status, streams]).then(([status]) =>
        status.signal === null ? status.code : null
      ),
    };
  }
  const p = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  p.stdout!.on("data", (d: Uint8Array) => onOutput(decoder.decode(d)));
  p.stderr!.on("data", (d: Uint8Array) => onOutput(decoder.decode(d)));
  return {
    kill: (signal) => p.kill(signal),
    exited: new Promise((resolve, reject) => {
      p.on("error", reject);
      p.on("close", (code) => resolve(code));
    }),
  };
}

/**
 * Runs the child; kills it (and fails) when it is still alive 20 s after it started. With `signal`,
 * sends it that signal once it printed READY.
 */
async function runChild(env: Record<string, string>, signal?: "SIGINT" | "SIGTERM"): Promise<ChildRun> {
  const child = path.join(here, "pool_exit_child.ts");
  const args = "Deno" in globalThis ? ["run", "-A", child] : ["run", child];
  let output = "";
  let doneAt = NaN;
  let queryAt = NaN;
  let signalAt = NaN;
  const p: Spawned = spawnRuntime(
    args,
    { ...process.env as Record<string, string>, ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
    (text) => {
      output += text;
      if (Number.isNaN(queryAt) && output.includes("QUERY")) queryAt = performance.now();
      if (Number.isNaN(doneAt) && output.includes("DONE")) doneAt = performance.now();
      if (signal !== undefined && Number.isNaN(signalAt) && output.includes("READY")) {
        signalAt = performance.now();
        p.kill(signal);
      }
    },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`the child was still running after 20 s; output so far:\n${output}`));
    }, 20_000);
  });
  try {
    const code = await Promise.race([p.exited, limit]);
    const now = performance.now();
    return { code, output, afterDone: now - doneAt, afterQuery: now - queryAt, afterSignal: now - signalAt };
  } finally {
    clearTimeout(timer);
  }
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

  describe("over TLS (own server)", () => {
    let certs: TestCerts;
    let tlsServer: PostgresInstance;
    before(async () => {
      certs = await makeTestCerts();
      tlsServer = await startPostgres({
        ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
      });
    });
    after(async () => {
      await tlsServer?.destroy();
      await certs?.remove();
    });

    // require: encrypted without verification (on Deno through node:tls over the adapter's stream);
    // verify-full: the runtime's own TLS. The unref'd state must carry over whichever socket TLS makes.
    for (const sslmode of ["require", "verify-full"]) {
      it(`A script whose pool connects with sslmode ${sslmode} and never closes it exits within 2 s`, {
        timeout: 30_000,
      }, async () => {
        const run = await runChild({
          EXIT_DSN: tlsServer.dsn,
          EXIT_MODE: "idle",
          EXIT_SSLMODE: sslmode,
          // No root certificate with require: libpq's rule would make it verify-ca.
          ...(sslmode === "require" ? {} : { EXIT_CA: certs.ca.pem }),
        });
        assert.equal(run.code, 0, run.output);
        assert.match(run.output, /SSL true/, "the sessions are encrypted");
        assert.ok(run.afterDone < 2_000, `exited ${run.afterDone.toFixed(0)} ms after its script ended`);
      });
    }
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`The README's shutdown line closes the pool on ${signal} within 5 s, letting a running query finish`, {
      timeout: 30_000,
    }, async () => {
      const run = await runChild({ EXIT_DSN: server.dsn, EXIT_MODE: "signal" }, signal);
      assert.equal(run.code, 0, `close() drained the pool: ${JSON.stringify(run)}`);
      assert.match(run.output, /READY[\s\S]*QUERY slept/, "the checkout's query finished before the exit");
      assert.ok(run.afterSignal < 5_000, `exited ${run.afterSignal.toFixed(0)} ms after ${signal}`);
    });
  }

  it("The README's shutdown line still exits within 5 s when a checkout is never released", {
    timeout: 30_000,
  }, async () => {
    const run = await runChild({ EXIT_DSN: server.dsn, EXIT_MODE: "signal", EXIT_SLEEP: "8" }, "SIGTERM");
    assert.equal(run.code, 1, `close() timed out after 4 s and terminated the pool: ${JSON.stringify(run)}`);
    assert.doesNotMatch(run.output, /QUERY/);
    assert.ok(run.afterSignal >= 3_900, `exited ${run.afterSignal.toFixed(0)} ms after SIGTERM`);
    assert.ok(run.afterSignal < 5_000, `exited ${run.afterSignal.toFixed(0)} ms after SIGTERM`);
  });
});

/**
 * Secrets: a password never appears in any error, warning, String()/inspect
 * output or log line. A child process of the same runtime
 * (tests/faults/secrets_child.ts) runs every path that prints something about
 * a connection with a password — wrong password, malformed DSN, connect
 * timeout, refused connect, String()/inspect of pools and connections, default
 * warnings, and an uncaught error at the end, as a failing suite would — and
 * this test scans its whole stdout and stderr for the passwords (raw and
 * percent-encoded).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { getTestServer } from "../support/pg_server.ts";
import { skipTest } from "../support/skip.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

function runChild(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = path.join(here, "secrets_child.ts");
  const args = "Deno" in globalThis ? ["run", "-A", child] : ["run", child];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      env: { ...process.env, ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const decoder = new TextDecoder();
    p.stdout!.on("data", (d: Uint8Array) => output += decoder.decode(d));
    p.stderr!.on("data", (d: Uint8Array) => output += decoder.decode(d));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`the child did not finish in 60 s; output so far:\n${output}`));
    }, 60_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("Secrets", { timeout: 90_000 }, () => {
  it("no password appears in anything a failing run prints (errors, warnings, String, inspect, uncaught)", {
    timeout: 90_000,
  }, async (t) => {
    const server = await getTestServer();
    if (server.scram === undefined) return skipTest(t, "the server has no password role");
    const bad = "Wr0ng-S3cret@pw/x";
    const good = server.scram.password;
    const { code, output } = await runChild({
      SECRET_DSN: server.dsnFor({ host: "127.0.0.1", user: server.scram.user }),
      SECRET_USER: server.scram.user,
      SECRET_GOOD: good,
      SECRET_BAD: bad,
    });
    // The child really went through every step.
    for (
      const step of [
        "STEP wrong-password-connect 28P01",
        "STEP wrong-password-pool-dsn 28P01",
        "STEP wrong-password-pool-options 28P01",
        "STEP bad-dsn-port INVALID_DSN",
        "STEP bad-dsn-sslmode INVALID_DSN",
        "STEP bad-dsn-percent INVALID_DSN",
        "STEP connect-timeout CONNECT_TIMEOUT",
        "STEP connect-timeout-pool CONNECT_TIMEOUT",
        "STEP refused ECONNREFUSED",
        "STEP inspect",
        "STEP warnings",
        "RELEASED_IN_TRANSACTION",
        "STEP query-error 42P01",
        "STEP released-use CONNECTION_RELEASED",
        "STEP uncaught",
      ]
    ) {
      assert.ok(output.includes(step), `the child printed "${step}"; output:\n${output.slice(-3000)}`);
    }
    assert.notEqual(code, 0, "the child ended with an uncaught error, like a failing suite");
    assert.ok(output.length > 2000, "the child printed its errors in full");
    for (const secret of [bad, good]) {
      for (const form of new Set([secret, encodeURIComponent(secret), encodeURI(secret)])) {
        const at = output.indexOf(form);
        assert.equal(
          at,
          -1,
          `the password ${JSON.stringify(form)} appears in the output:\n…${
            output.slice(Math.max(0, at - 300), at + 100)
          }…`,
        );
      }
    }
  });
});

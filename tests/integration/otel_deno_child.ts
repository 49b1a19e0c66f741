/**
 * Child process of otel_deno_test.ts (not a test file itself), run by Deno with
 * `OTEL_DENO=true` and nothing else set up: creates a pool named `otel-e2e`
 * without a `meter`, runs one-shots, holds one checkout, prints READY, and
 * waits for a line on stdin (the parent saw the pool's metrics exported) before
 * it releases, closes the pool and exits.
 *
 * Environment: OTEL_E2E_DSN (the test server).
 *
 * @module
 */

import process from "node:process";
import { createPool } from "../../mod.ts";

const pool = await createPool(process.env.OTEL_E2E_DSN!, { name: "otel-e2e", minSize: 0, maxSize: 2 });
for (let i = 0; i < 3; i++) await pool.fetchVal("SELECT 1");
const con = await pool.acquire();
await pool.fetchVal("SELECT 2"); // a second connection, idle once this returns
console.log("READY");
await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
await pool.release(con);
await pool.close();
process.stdin.destroy();
console.log("DONE");

/**
 * Child process of pool_exit_test.ts (not a test file itself): creates a pool,
 * uses it and never closes it; the parent checks that the process exits by
 * itself once the pool is idle, and not before the work is done.
 *
 * Environment: EXIT_DSN (the test server), EXIT_DRIVER ("postgres" | "native"),
 * EXIT_MODE:
 * - `idle`: a one-shot query and an acquire/release (timers armed: idle lifetime, leak detection).
 * - `busy`: a checkout with a pending `pg_sleep(0.5)` that nobody awaits; released when it answers.
 *
 * @module
 */

import process from "node:process";
import { createPool } from "../../mod.ts";

const env = process.env;
const driver = env.EXIT_DRIVER === "native" ? "native" : "postgres";
const pool = await createPool(env.EXIT_DSN!, {
  driver,
  minSize: 1,
  maxSize: 2,
  maxInactiveConnectionLifetime: 300,
  leakDetectionThreshold: 60,
});
if (env.EXIT_MODE === "busy") {
  const con = await pool.acquire();
  void con.fetchVal("SELECT pg_sleep(0.5)::text || 'slept'").then(async (value) => {
    console.log(`QUERY ${value}`);
    await pool.release(con);
  });
} else {
  console.log(`QUERY ${await pool.fetchVal("SELECT 'one-shot'")}`);
  const con = await pool.acquire();
  await con.execute("SELECT 1");
  await pool.release(con);
}
console.log("DONE");

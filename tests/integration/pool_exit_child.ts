/**
 * Child process of pool_exit_test.ts (not a test file itself): creates a pool,
 * uses it and never closes it; the parent checks that the process exits by
 * itself once the pool is idle, and not before the work is done.
 *
 * Environment: EXIT_DSN (the test server), EXIT_DRIVER ("postgres" | "native"), EXIT_SSLMODE and
 * EXIT_CA (optional: an sslmode and the PEM of the CA to trust),
 * EXIT_MODE:
 * - `idle`: a one-shot query and an acquire/release (timers armed: idle lifetime, leak detection).
 * - `busy`: a checkout with a pending `pg_sleep(0.5)` that nobody awaits; released when it answers.
 * - `signal`: the README's shutdown line, then a checkout running `pg_sleep(1)` (released when it
 *   answers; `EXIT_SLEEP` seconds) while the parent sends SIGINT or SIGTERM.
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
  ...(env.EXIT_SSLMODE === undefined
    ? {}
    : { sslmode: env.EXIT_SSLMODE as "require" | "verify-full", sslrootcert: env.EXIT_CA }),
});
if (env.EXIT_SSLMODE !== undefined) {
  console.log(`SSL ${await pool.fetchVal("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")}`);
}
if (env.EXIT_MODE === "signal") {
  // The README's line, as written there.
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno !== undefined) {
    for (const s of ["SIGINT", "SIGTERM"] as const) {
      deno.addSignalListener(
        s,
        () => pool.close({ timeout: 4 }).then(() => deno.exit(0), () => deno.exit(1)),
      );
    }
  } else {
    for (const s of ["SIGINT", "SIGTERM"]) {
      process.on(s, () => pool.close({ timeout: 4 }).then(() => process.exit(0), () => process.exit(1)));
    }
  }
  const con = await pool.acquire();
  // EXIT_SLEEP: how long the checkout's query runs (default 1 s; the "stuck" case outlasts close()'s 4 s).
  const sleeping = con.fetchVal(`SELECT pg_sleep(${Number(env.EXIT_SLEEP ?? 1)})::text || 'slept'`);
  console.log("READY");
  console.log(`QUERY ${await sleeping}`);
  await pool.release(con);
} else if (env.EXIT_MODE === "busy") {
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

/**
 * Reads the libpq environment (`PGHOST`, `PGUSER`, ..., `DATABASE_URL`) in
 * whichever runtime this is. Without permission to read it (Deno without
 * `--allow-env`), the environment is treated as empty rather than prompting.
 *
 * @module
 */

import type { Env } from "../drivers/dsn.ts";

interface DenoEnvLike {
  env: { toObject(): Record<string, string> };
  permissions?: { querySync?(d: { name: "env" }): { state: string } };
}

/** The process environment, or `{}` when it cannot be read. */
export function readEnv(): Env {
  const g = globalThis as { Deno?: DenoEnvLike; process?: { env?: Env } };
  try {
    if (g.Deno !== undefined) {
      const state = g.Deno.permissions?.querySync?.({ name: "env" }).state;
      if (state !== undefined && state !== "granted") return {};
      return g.Deno.env.toObject();
    }
    return g.process?.env ?? {};
  } catch {
    return {};
  }
}

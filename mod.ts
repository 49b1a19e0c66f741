/**
 * @x/pgpool: a PostgreSQL connection pool for Deno and Bun with asyncpg's semantics. This entry point picks the runtime adapter for the runtime it runs in (Deno, Bun, else `node:net`).
 *
 * @example A pool in a request handler
 * ```ts ignore
 * import { createPool } from "jsr:@x/pgpool";
 * const pool = await createPool(Deno.env.get("DATABASE_URL"), { maxSize: 10 });
 * Deno.serve(async () => {
 *   await using con = await pool.acquire();
 *   return Response.json(await con.fetchRow("SELECT now() AS now"));
 * });
 * ```
 *
 * @module
 */

import { bindConnect, type ConnectFunction } from "./src/_bind.ts";
import type { PoolOptions } from "./src/core/options.ts";
import { BasePool } from "./src/core/pool.ts";
import { readEnv } from "./src/runtime/env.ts";
import { bunConnector } from "./src/runtime/bun.ts";
import { denoConnector } from "./src/runtime/deno.ts";
import { nodeConnector } from "./src/runtime/node.ts";

const detected: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

export * from "./src/public.ts";

const bound = bindConnect(
  detected === "deno" ? denoConnector : detected === "bun" ? bunConnector : nodeConnector,
  readEnv,
);

/** Which runtime adapter this entry point uses: `"deno"`, `"bun"` or `"node"` (postgres.js's own `node:net` path). */
export const runtimeAdapter: "deno" | "bun" | "node" = detected;

/**
 * Opens a standalone, unpooled connection (asyncpg's `connect`): connection
 * options from the DSN, then `options`, then the libpq environment.
 *
 * @example
 * ```ts ignore
 * import { connect } from "jsr:@x/pgpool";
 * await using con = await connect("postgres://postgres@localhost/postgres");
 * console.log(await con.fetchVal("SELECT version()"));
 * ```
 */
export const connect: ConnectFunction = bound.connect;

/**
 * A pool whose connections go through this entry point's runtime adapter. See
 * the core `Pool` for the full behaviour; build one with {@linkcode createPool}
 * (initialized) or `new Pool()` + `init()`.
 *
 * @example
 * ```ts ignore
 * import { Pool } from "jsr:@x/pgpool";
 * const pool = new Pool("postgres://postgres@localhost/postgres", { minSize: 1 });
 * await pool.init();
 * await pool.close();
 * ```
 */
export class Pool extends BasePool {
  /**
   * Builds a pool without connecting; call `init()` next (or use {@linkcode createPool}).
   *
   * @param dsnOrOptions A DSN, or the options.
   * @param options Options when the first argument is a DSN.
   */
  constructor(dsnOrOptions?: string | PoolOptions, options?: PoolOptions) {
    super(dsnOrOptions, options, bound.hook);
  }
}

/**
 * Creates a pool and opens its `minSize` connections. If that fails, the
 * pool is terminated and the error thrown.
 *
 * @param dsnOrOptions A DSN (`postgres://user@host:5432/db?sslmode=require`), or the options.
 * @param options Pool and connection options when the first argument is a DSN.
 * @returns The initialized pool.
 * @throws {TypeError} For options of the wrong type or unknown names.
 * @throws {RangeError} For out-of-range numbers.
 * @example
 * ```ts ignore
 * import { createPool } from "jsr:@x/pgpool";
 * await using pool = await createPool("postgres://postgres@localhost/postgres", { maxSize: 5 });
 * console.log(await pool.fetchVal("SELECT 1"));
 * ```
 */
export async function createPool(dsnOrOptions?: string | PoolOptions, options?: PoolOptions): Promise<Pool> {
  const pool = new Pool(dsnOrOptions, options);
  try {
    await pool.init();
  } catch (e) {
    pool.terminate();
    throw e;
  }
  return pool;
}

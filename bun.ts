/**
 * The Bun entry point: connections go over `Bun.connect` and Bun's TLS upgrade.
 *
 * @example Not run by `deno test --doc`: it needs Bun
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool/bun";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point; a DSN can come
 * // first instead: createPool("postgres://user@host/db", { maxSize: 10 }).
 * await using pool = await createPool({ maxSize: 10 });
 * assert.equal(await pool.fetchVal("SELECT 1"), 1);
 * ```
 * @module
 */
import { type BasePool, bindEntry, type ConnectFunction } from "./src/_bind.ts";
import type { CreatePoolFunction, PoolClass } from "./src/_bind.ts";
import { bunConnector } from "./src/runtime/bun.ts";
export * from "./src/public.ts";

/** This entry point's runtime adapter: `"bun"`. */
export const runtimeAdapter: "deno" | "bun" | "node" = "bun";
const bound = bindEntry(bunConnector);
/** Opens a standalone connection over `Bun.connect`; see {@linkcode ConnectFunction}. */
export const connect: ConnectFunction = bound.connect;
/** The pool class over `Bun.connect` (`new Pool(dsn, options)`, then `init()`); see {@linkcode PoolClass}. */
export const Pool: PoolClass = bound.Pool;
/** A pool made by {@linkcode Pool} or {@linkcode createPool}; its API is {@linkcode BasePool}'s. */
export type Pool = BasePool;
/** Creates a pool over `Bun.connect` and opens it; see {@linkcode CreatePoolFunction}. */
export const createPool: CreatePoolFunction = bound.createPool;

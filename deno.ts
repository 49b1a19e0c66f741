/**
 * The Deno entry point: connections go over `Deno.connect` / `Deno.startTls`.
 *
 * @example
 * ```ts ignore
 * import { createPool } from "jsr:@x/pgpool/deno";
 * await using pool = await createPool("postgres://postgres@localhost/postgres", { maxSize: 10 });
 * console.log(await pool.fetchVal("SELECT 1"));
 * ```
 * @module
 */
import { type BasePool, bindEntry, type ConnectFunction } from "./src/_bind.ts";
import type { CreatePoolFunction, PoolClass } from "./src/_bind.ts";
import { denoConnector } from "./src/runtime/deno.ts";
export * from "./src/public.ts";

/** This entry point's runtime adapter: `"deno"`. */
export const runtimeAdapter: "deno" | "bun" | "node" = "deno";
const bound = bindEntry(denoConnector);
/** Opens a standalone connection over `Deno.connect`; see {@linkcode ConnectFunction}. */
export const connect: ConnectFunction = bound.connect;
/** The pool class over `Deno.connect` (`new Pool(dsn, options)`, then `init()`); see {@linkcode PoolClass}. */
export const Pool: PoolClass = bound.Pool;
/** A pool made by {@linkcode Pool} or {@linkcode createPool}; its API is {@linkcode BasePool}'s. */
export type Pool = BasePool;
/** Creates a pool over `Deno.connect` and opens it; see {@linkcode CreatePoolFunction}. */
export const createPool: CreatePoolFunction = bound.createPool;

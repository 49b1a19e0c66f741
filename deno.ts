/**
 * The Deno entry point: connections go over `Deno.connect` / `Deno.startTls`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, runtimeAdapter } from "@x/pgpool/deno";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point; a DSN can come
 * // first instead: createPool("postgres://user@host/db", { maxSize: 10 }).
 * await using pool = await createPool({ maxSize: 10 });
 * assert.equal(await pool.fetchVal("SELECT 1"), 1);
 * assert.equal(runtimeAdapter, "deno");
 * ```
 * @module
 */
import { type BasePool, bindEntry, type ConnectFunction } from "./src/_bind.ts";
import type { CreatePoolFunction, PoolClass } from "./src/_bind.ts";
import { denoConnector, denoTimerUnref } from "./src/runtime/deno.ts";
export * from "./src/public.ts";

/** This entry point's runtime adapter: `"deno"`. */
export const runtimeAdapter: "deno" | "bun" | "node" = "deno";
const bound = bindEntry(denoConnector, denoTimerUnref);
/** Opens a standalone connection over `Deno.connect`; see {@linkcode ConnectFunction}. */
export const connect: ConnectFunction = bound.connect;
/** The pool class over `Deno.connect` (`new Pool(dsn, options)`, then `init()`); see {@linkcode PoolClass}. */
export const Pool: PoolClass = bound.Pool;
/** A pool made by {@linkcode Pool} or {@linkcode createPool}; its API is {@linkcode BasePool}'s. */
export type Pool = BasePool;
/** Creates a pool over `Deno.connect` and opens it; see {@linkcode CreatePoolFunction}. */
export const createPool: CreatePoolFunction = bound.createPool;

/**
 * @x/pgpool: a PostgreSQL connection pool for Deno and Bun with asyncpg's semantics. This entry point
 * picks the runtime adapter it runs on: Deno's, Bun's, else `node:net`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point; a DSN can come
 * // first instead: createPool("postgres://user@host/db", { maxSize: 10 }).
 * await using pool = await createPool({ maxSize: 10 });
 * assert.equal(await pool.fetchVal("SELECT 1"), 1);
 * ```
 * @module
 */
import { type BasePool, bindEntry, type ConnectFunction, detectRuntime } from "./src/_bind.ts";
import type { CreatePoolFunction, PoolClass } from "./src/_bind.ts";
import { bunConnector } from "./src/runtime/bun.ts";
import { denoConnector, denoTimerUnref } from "./src/runtime/deno.ts";
import { nodeConnector } from "./src/runtime/node.ts";
export * from "./src/public.ts";

/** This entry point's runtime adapter: `"deno"`, `"bun"` or `"node"`, as detected. */
export const runtimeAdapter: "deno" | "bun" | "node" = detectRuntime();
const bound = runtimeAdapter === "deno"
  ? bindEntry(denoConnector, denoTimerUnref)
  : bindEntry(runtimeAdapter === "bun" ? bunConnector : nodeConnector);
/** Opens a standalone connection over the detected adapter; see {@linkcode ConnectFunction}. */
export const connect: ConnectFunction = bound.connect;
/** The pool class over the detected adapter (`new Pool(dsn, options)`, then `init()`); see {@linkcode PoolClass}. */
export const Pool: PoolClass = bound.Pool;
/** A pool made by {@linkcode Pool} or {@linkcode createPool}; its API is {@linkcode BasePool}'s. */
export type Pool = BasePool;
/** Creates a pool over the detected adapter and opens it; see {@linkcode CreatePoolFunction}. */
export const createPool: CreatePoolFunction = bound.createPool;

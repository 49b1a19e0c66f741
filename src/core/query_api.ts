/**
 * The query API, listed once. {@linkcode Connection} implements every method
 * (and documents it); the {@linkcode PoolConnection} proxy forwards each one
 * and the pool runs the query methods as one-shots (acquire, run, release),
 * both generated from {@linkcode METHODS}. Adding a method: write it on
 * `Connection`, then name it in {@linkcode QueryApi} or {@linkcode SessionApi}
 * (the compiler then asks for its entry in `METHODS`).
 *
 * @module
 */

import type { Connection } from "./connection.ts";

/**
 * The query methods of {@linkcode Connection} (`execute`, `executeMany`,
 * `fetch`, `fetchRow`, `fetchVal`, `fetchMany` and the four copy helpers),
 * which a `PoolConnection` and a pool offer too. On a pool each call is a
 * one-shot: acquire, run, release, with the options' `timeout` and `signal`
 * bounding the whole call (the wait for a connection included).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * await using pool = await createPool({ maxSize: 2 });
 * assert.equal(await pool.fetchVal<number>("SELECT $1::int", [7], { timeout: 2 }), 7); // one-shot
 * await using con = await pool.acquire();
 * // On the checked-out connection:
 * const rows = await con.fetch("SELECT pid FROM pg_stat_activity WHERE pid = pg_backend_pid()");
 * assert.deepEqual(rows.map((r) => r.pid), [con.getServerPid()]);
 * ```
 */
export type QueryApi = Pick<
  Connection,
  | "execute"
  | "executeMany"
  | "fetch"
  | "fetchRow"
  | "fetchVal"
  | "fetchMany"
  | "copyFromTable"
  | "copyFromQuery"
  | "copyToTable"
  | "copyRecordsToTable"
>;

/**
 * The session methods of {@linkcode Connection} that a `PoolConnection`
 * forwards too: listeners, server facts, reset, close, terminate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * await using pool = await createPool({ maxSize: 2 });
 * await using con = await pool.acquire();
 * assert.equal(con.getServerPid(), await con.fetchVal("SELECT pg_backend_pid()"));
 * assert.equal(con.getServerVersion().text, await con.fetchVal("SHOW server_version"));
 * ```
 */
export type SessionApi = Pick<
  Connection,
  | "addListener"
  | "removeListener"
  | "addLogListener"
  | "removeLogListener"
  | "getResetQuery"
  | "setTypeCodec"
  | "resetTypeCodec"
  | "getServerPid"
  | "getServerVersion"
  | "reset"
  | "close"
  | "terminate"
  | "isClosed"
>;

/** The name of a query method. */
export type QueryMethod = keyof QueryApi;

/** The name of a session method. */
export type SessionMethod = keyof SessionApi;

/**
 * The list: every method a `PoolConnection` forwards. A query method maps to
 * the position (0-based) of its options argument, whose `timeout` / `signal`
 * bound the pool's one-shot of it; a session method (no one-shot) maps to `null`.
 */
export const METHODS: { readonly [M in QueryMethod]: 1 | 2 } & { readonly [M in SessionMethod]: null } = {
  execute: 2,
  executeMany: 2,
  fetch: 2,
  fetchRow: 2,
  fetchVal: 2,
  fetchMany: 2,
  copyFromTable: 1,
  copyFromQuery: 2,
  copyToTable: 1,
  copyRecordsToTable: 1,
  addListener: null,
  removeListener: null,
  addLogListener: null,
  removeLogListener: null,
  getResetQuery: null,
  setTypeCodec: null,
  resetTypeCodec: null,
  getServerPid: null,
  getServerVersion: null,
  reset: null,
  close: null,
  terminate: null,
  isClosed: null,
};

/** Every method a checked-out connection forwards. */
export const PROXY_METHODS: readonly (QueryMethod | SessionMethod)[] = Object.keys(METHODS) as (
  | QueryMethod
  | SessionMethod
)[];

/** The methods the pool runs as one-shots. */
export const QUERY_METHODS: readonly QueryMethod[] = PROXY_METHODS.filter((m): m is QueryMethod =>
  METHODS[m] !== null
);

/** A method called by name with up to three arguments (the generated forwarders' view of a connection). */
export type ByName = Record<QueryMethod | SessionMethod, (a: unknown, b: unknown, c: unknown) => unknown>;

/**
 * Puts a generated method on `proto` for each name, as a class method would
 * be (non-enumerable, writable), with the name and the `length` of
 * `Connection`'s method.
 */
export function defineMethods<M extends string>(
  proto: object,
  names: Iterable<M>,
  like: object,
  make: (name: M) => (this: never, a: unknown, b: unknown, c: unknown) => unknown,
): void {
  for (const name of names) {
    const method = make(name);
    const model = (like as Record<string, unknown>)[name] as (...a: unknown[]) => unknown;
    Object.defineProperty(method, "name", { value: name });
    Object.defineProperty(method, "length", { value: model.length });
    Object.defineProperty(proto, name, { value: method, writable: true, configurable: true });
  }
}

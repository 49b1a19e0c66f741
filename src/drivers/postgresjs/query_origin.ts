/**
 * A fix for a memory leak in postgres.js 3.4.9.
 *
 * When a query fails, postgres.js appends the query's "origin" (where it was
 * called from) to the error's stack. The `origin` getter caches that text in
 * a module-level `Map` keyed by the query's template strings array. For a
 * tagged template that array is one object per call site, but `sql.unsafe()`
 * (every statement this driver sends) makes a new one-element array per call,
 * so every failed statement adds an entry that is never removed: the entry
 * keeps the statement's text alive for the life of the process.
 *
 * For such a query (untagged, without postgres.js's `debug` option, which this
 * driver never sets) the getter always returns `""`: the fix returns `""`
 * without touching the cache and leaves every other case to the original.
 *
 * @module
 */

/** The fields of a postgres.js query that decide what its `origin` getter does. */
interface QueryOriginFields {
  tagged?: boolean;
  handler?: { debug?: unknown };
}

/** Marks a prototype whose getter was replaced (the module is shared by every connection). */
const FIXED = Symbol("pgpool.queryOriginFixed");

/**
 * Replaces the `origin` getter on the prototype of `query` (a postgres.js
 * query that is never executed) with one that does not grow postgres.js's
 * cache; does nothing when the prototype has no such getter or is fixed.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { fixQueryOrigin } from "./query_origin.ts";
 * const sql = postgres({ max: 1 }); // connects lazily: nothing is opened here
 * fixQueryOrigin(sql.unsafe("")); // a query that is never executed
 * await sql.end();
 * ```
 */
export function fixQueryOrigin(query: object): void {
  const proto = Object.getPrototypeOf(query) as Record<PropertyKey, unknown> | null;
  if (proto === null || Object.hasOwn(proto, FIXED)) return;
  const descriptor = Object.getOwnPropertyDescriptor(proto, "origin");
  const original = descriptor?.get;
  if (original === undefined || descriptor?.configurable !== true) return;
  Object.defineProperty(proto, "origin", {
    configurable: true,
    enumerable: descriptor.enumerable,
    get(this: QueryOriginFields): unknown {
      return this.tagged || this.handler?.debug ? original.call(this) : "";
    },
  });
  Object.defineProperty(proto, FIXED, { value: true });
}

/**
 * The text of an argument bound to a json or jsonb parameter: one rule for both drivers.
 *
 * The pool's core sends a plain object as its JSON text (`JSON.stringify`, whatever the parameter's
 * type: a text parameter gets that text too). So a string reaching a json parameter is JSON text
 * already, the object's or the caller's own, and goes to the server as it is: encoding it again would
 * store a JSON string (`"{\"a\":1}"`) instead of the object. What the core leaves to the parameter's
 * type — an array (a PostgreSQL array for an array parameter, JSON for a json one), a number, a
 * plain object given to a driver directly — is written with `JSON.stringify`.
 *
 * @module
 */

/**
 * Writes a json/jsonb parameter: a string as it is (JSON text, as asyncpg and node-postgres take
 * it), anything else with `JSON.stringify`.
 *
 * @param value The argument (not null: SQL NULL never reaches a serializer).
 * @returns The JSON text the server parses.
 * @throws {TypeError} When `value` has no JSON text (undefined, a function, a symbol) or
 *   `JSON.stringify` throws (a cycle, a bigint).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serializeJsonParam } from "./json_param.ts";
 * assert.equal(serializeJsonParam({ a: [1, null] }), '{"a":[1,null]}');
 * assert.equal(serializeJsonParam('{"a":1}'), '{"a":1}'); // JSON text, not a JSON string
 * assert.equal(serializeJsonParam('"x"'), '"x"'); // a JSON string is written as JSON text
 * assert.equal(serializeJsonParam([1, "b"]), '[1,"b"]');
 * ```
 */
export function serializeJsonParam(value: unknown): string {
  if (typeof value === "string") return value;
  const text: string | undefined = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`A ${typeof value} has no JSON text`);
  return text;
}

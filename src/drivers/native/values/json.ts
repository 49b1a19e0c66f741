/**
 * json and jsonb codecs.
 *
 * @module
 */

/**
 * Parses json/jsonb text.
 *
 * @example
 * ```ts
 * import { parseJson } from "./json.ts";
 * console.log(parseJson('{"a":[1,null]}')); // { a: [ 1, null ] }
 * ```
 */
export function parseJson(text: string): unknown {
  return JSON.parse(text);
}

/**
 * Writes a json/jsonb parameter with `JSON.stringify`: a string becomes a JSON
 * string (the pool turns plain objects into JSON text before, so such text
 * arrives here as a string too).
 *
 * @example
 * ```ts
 * import { serializeJson } from "./json.ts";
 * console.log(serializeJson({ a: 1 }), serializeJson("x")); // {"a":1} "x"
 * ```
 */
export function serializeJson(value: unknown): string {
  return JSON.stringify(value);
}

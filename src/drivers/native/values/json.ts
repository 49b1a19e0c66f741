/**
 * json and jsonb codecs.
 *
 * @module
 */
import { serializeJsonParam } from "../../json_param.ts";

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
 * Writes a json/jsonb parameter: a string as it is (JSON text: the pool has
 * turned plain objects into their JSON text before), anything else with
 * `JSON.stringify`. The rule both drivers share: see `../../json_param.ts`.
 *
 * @example
 * ```ts
 * import { serializeJson } from "./json.ts";
 * console.log(serializeJson({ a: 1 }), serializeJson('{"a":1}'), serializeJson([1])); // {"a":1} {"a":1} [1]
 * ```
 */
export const serializeJson: (value: unknown) => string = serializeJsonParam;

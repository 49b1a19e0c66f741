/**
 * Scalar codecs: int2/int4/oid/float4/float8 as numbers, bool as a boolean.
 * int8, numeric, money, time, interval, uuid... have no parser and stay text.
 *
 * @module
 */
import { paramText, serializeBoolParam } from "../../param_text.ts";

/**
 * Parses int2, int4, oid, float4 and float8 text (`NaN`, `Infinity` and
 * `-Infinity` included) to a number.
 *
 * @example
 * ```ts
 * import { parseNumber } from "./scalars.ts";
 * console.log(parseNumber("-12"), parseNumber("Infinity")); // -12 Infinity
 * ```
 */
export function parseNumber(text: string): number {
  return +text;
}

/**
 * Parses bool text: `t` is true, anything else false.
 *
 * @example
 * ```ts
 * import { parseBool } from "./scalars.ts";
 * console.log(parseBool("t"), parseBool("f")); // true false
 * ```
 */
export function parseBool(text: string): boolean {
  return text === "t";
}

/**
 * Writes a bool parameter: `t` for `true`, `f` for `false`, anything else as it is for the server to
 * read (`"yes"`, `"1"`, `1` are true) or refuse with 22P02. The rule both drivers share: see
 * `../../param_text.ts`.
 *
 * @example
 * ```ts
 * import { serializeBool } from "./scalars.ts";
 * console.log(serializeBool(true), serializeBool("yes"), serializeBool(0)); // t yes 0
 * ```
 */
export const serializeBool: (value: unknown) => string = serializeBoolParam;

/**
 * Writes a parameter of a type without its own serializer: a string as it is, a number as its text
 * (negative zero `-0`), an array as an array literal, a plain object as its JSON text (see
 * `../../param_text.ts`).
 *
 * @example
 * ```ts
 * import { serializeText } from "./scalars.ts";
 * console.log(serializeText(12n), serializeText(-0), serializeText([1, 2])); // 12 -0 {"1","2"}
 * ```
 */
export const serializeText: (value: unknown) => string = paramText;

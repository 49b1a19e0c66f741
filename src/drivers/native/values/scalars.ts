/**
 * Scalar codecs: int2/int4/oid/float4/float8 as numbers, bool as a boolean.
 * int8, numeric, money, time, interval, uuid... have no parser and stay text.
 *
 * @module
 */

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
 * Writes a bool parameter: `t` for `true`, `f` for anything else.
 *
 * @example
 * ```ts
 * import { serializeBool } from "./scalars.ts";
 * console.log(serializeBool(true), serializeBool(1)); // t f
 * ```
 */
export function serializeBool(value: unknown): string {
  return value === true ? "t" : "f";
}

/**
 * Writes a parameter of a type without its own serializer: JavaScript's
 * string conversion (`"" + value`).
 *
 * @example
 * ```ts
 * import { serializeText } from "./scalars.ts";
 * console.log(serializeText(12n), serializeText([1, 2])); // 12 1,2
 * ```
 */
export function serializeText(value: unknown): string {
  return "" + (value as string);
}

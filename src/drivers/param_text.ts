/**
 * The text of an argument bound to a parameter: the rules both drivers share (json and jsonb are in
 * `json_param.ts`).
 *
 * A value is never turned into another value on the way: a string is sent as it is, for the server to
 * read as the parameter's type (`'yes'` for a bool, `'2024-01-02 10:00:00.123456'` for a timestamp, in
 * the session's TimeZone) or refuse; a number is its JavaScript text (negative zero `-0`); a bigint its
 * digits. Only three JavaScript types have a text of their own: a boolean (`t`/`f`), a Date (its ISO 8601
 * UTC instant) and a Uint8Array (bytea hex, `\x0aff`). Inside an array a plain object is its JSON text
 * (as the pool sends a plain object bound to any parameter).
 *
 * @module
 */
import { Buffer } from "node:buffer";

const QUOTE = 34; // "
const BACKSLASH = 92; // \

/**
 * The text of a value for a parameter type without a rule of its own (text, numbers, uuid, interval...):
 * a string as it is; a number as its JavaScript text, negative zero as `-0`; a bigint, boolean as
 * `String()`; a Date as its ISO 8601 UTC text (`Invalid Date` for an invalid one, which the server
 * refuses); a Uint8Array as bytea hex text; an array as a PostgreSQL array literal; a plain object as its
 * JSON text.
 *
 * @param value The argument (not null: SQL NULL never reaches a serializer).
 * @returns The text sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { paramText } from "./param_text.ts";
 * assert.equal(paramText("yes"), "yes");
 * assert.equal(paramText(-0), "-0");
 * assert.equal(paramText(new Uint8Array([10, 255])), "\\x0aff");
 * assert.equal(paramText(["x", { a: 1 }]), '{"x","{\\"a\\":1}"}');
 * ```
 */
export function paramText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
      return value === 0 && 1 / value < 0 ? "-0" : "" + value;
    case "object":
      if (value === null) return "null";
      if (value instanceof Date) return dateText(value);
      if (value instanceof Uint8Array) return bytesHex(value);
      if (Array.isArray(value)) return serializeArrayLiteral(value);
      {
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto === Object.prototype || proto === null) return JSON.stringify(value);
      }
      return String(value);
    default:
      return "" + (value as string);
  }
}

/** Bytes as bytea hex text (`\\x0aff`), without copying them. */
function bytesHex(bytes: Uint8Array): string {
  return "\\x" + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

/** A Date's ISO 8601 UTC text; an invalid Date's `Invalid Date`, which the server refuses (22007). */
function dateText(date: Date): string {
  return Number.isNaN(date.getTime()) ? "Invalid Date" : date.toISOString();
}

/**
 * Writes a bool parameter: `t` for `true`, `f` for `false`, anything else as {@linkcode paramText} gives
 * it, for the server to read (`'yes'`, `'on'`, `'1'`, `1` are true) or refuse (`'maybe'`, `2`: 22P02).
 *
 * @example
 * ```ts
 * import { serializeBoolParam } from "./param_text.ts";
 * console.log(serializeBoolParam(true), serializeBoolParam("yes"), serializeBoolParam(0)); // t yes 0
 * ```
 */
export function serializeBoolParam(value: unknown): string {
  return value === true ? "t" : value === false ? "f" : paramText(value);
}

/**
 * Writes a date, timestamp or timestamptz parameter: a Date as its ISO 8601 UTC instant; anything else
 * (a string, a number) as {@linkcode paramText} gives it, for the server to read in the session's
 * TimeZone (`'2024-01-02 10:00:00.123456'`, `'infinity'`) or refuse.
 *
 * @example
 * ```ts
 * import { serializeDateParam } from "./param_text.ts";
 * console.log(serializeDateParam(new Date(0))); // 1970-01-01T00:00:00.000Z
 * console.log(serializeDateParam("2024-01-02 10:00:00.123456+05:30")); // as it is
 * ```
 */
export function serializeDateParam(value: unknown): string {
  return value instanceof Date ? dateText(value) : paramText(value);
}

/**
 * Writes a bytea parameter in hex format: a Uint8Array byte for byte, a string as its UTF-8 bytes, an
 * array of integers 0-255 as those bytes.
 *
 * @throws {TypeError} For an array holding anything but integers 0-255 (a number would otherwise be
 *   wrapped to a byte: 300 to 44), and for other values (a number, a bigint).
 *
 * @example
 * ```ts
 * import { serializeByteaParam } from "./param_text.ts";
 * console.log(serializeByteaParam(new Uint8Array([10, 255])), serializeByteaParam("é")); // \x0aff \xc3a9
 * ```
 */
export function serializeByteaParam(value: unknown): string {
  if (value instanceof Uint8Array) return bytesHex(value);
  if (typeof value === "string") return "\\x" + Buffer.from(value, "utf8").toString("hex");
  if (Array.isArray(value)) {
    for (const byte of value) {
      if (!Number.isInteger(byte) || (byte as number) < 0 || (byte as number) > 255) {
        throw new TypeError(`A bytea parameter given as an array takes integers 0-255, not ${String(byte)}`);
      }
    }
    return "\\x" + Buffer.from(value as number[]).toString("hex");
  }
  throw new TypeError(
    `A ${typeof value} cannot be sent as bytea; pass a Uint8Array, a string or an array of bytes`,
  );
}

/**
 * Writes a JavaScript array (nested for more dimensions) as an array literal: every non-null element
 * quoted (backslashes and quotes escaped) after `serialize` ({@linkcode paramText} without one), null
 * and undefined as `NULL`. A value that is not an array is written as a scalar.
 *
 * @param value The array.
 * @param serialize The element serializer.
 * @param delim The element type's delimiter, `,` by default.
 *
 * @example
 * ```ts
 * import { serializeArrayLiteral } from "./param_text.ts";
 * console.log(serializeArrayLiteral([1, null, 'a"b', { c: 1 }])); // {"1",NULL,"a\"b","{\"c\":1}"}
 * ```
 */
export function serializeArrayLiteral(
  value: unknown,
  serialize: (value: unknown) => string = paramText,
  delim = ",",
): string {
  if (!Array.isArray(value)) return serialize(value);
  let out = "{";
  for (let k = 0; k < value.length; k++) {
    if (k > 0) out += delim;
    const item: unknown = value[k];
    if (Array.isArray(item)) out += serializeArrayLiteral(item, serialize, delim);
    else if (item === null || item === undefined) out += "NULL";
    else out += quote(serialize(item));
  }
  return out + "}";
}

function quote(text: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE || code === BACKSLASH) {
      out += text.slice(start, i) + "\\";
      start = i;
    }
  }
  return out + text.slice(start) + '"';
}

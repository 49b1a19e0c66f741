/**
 * Parameters: which type oid a JavaScript value is sent with, and its text.
 * The rules are postgres.js's for an untagged query (`sql.unsafe(text, args)`,
 * how the pool's postgres.js driver sends): the oid comes from the value
 * (Date → timestamptz, Uint8Array → bytea, boolean → bool, bigint → int8, an
 * array → its first element's, anything else 0 = the server infers it); the
 * text comes from the serializer of the type finally in effect, the server's
 * described one when the inferred oid is 0.
 *
 * @module
 */
import { InterfaceError } from "../../../core/errors.ts";
import { serializeArrayLiteral } from "./arrays.ts";
import { serializeBytea } from "./bytea.ts";
import { serializeDate } from "./dates.ts";
import { serializeJson } from "./json.ts";
import { BUILTIN_ARRAYS, OID } from "../../type_oids.ts";
import { serializeBool, serializeText } from "./scalars.ts";

type Serialize = (value: unknown) => string;

const SERIALIZERS: Map<number, Serialize> = new Map<number, Serialize>([
  [OID.bool, serializeBool],
  [OID.bytea, serializeBytea],
  [OID.json, serializeJson],
  [OID.jsonb, serializeJson],
  [OID.date, serializeDate],
  [OID.timestamp, serializeDate],
  [OID.timestamptz, serializeDate],
]);
for (const [element, array] of BUILTIN_ARRAYS) {
  const serialize = SERIALIZERS.get(element);
  SERIALIZERS.set(array, (value: unknown): string => serializeArrayLiteral(value, serialize));
}

/** A parameter as it goes on the wire. */
export interface WireParam {
  /** The type oid for Parse; 0 lets the server infer it. */
  oid: number;
  /** The text-format value; null is SQL NULL. */
  text: string | null;
}

/**
 * The type oid a parameter value is declared with in Parse (0 = the server
 * infers it).
 *
 * @example
 * ```ts
 * import { inferParamOid } from "./params.ts";
 * console.log(inferParamOid(new Date()), inferParamOid(1n), inferParamOid("x")); // 1184 20 0
 * ```
 */
export function inferParamOid(value: unknown): number {
  if (value instanceof Date) return OID.timestamptz;
  if (value instanceof Uint8Array) return OID.bytea;
  if (value === true || value === false) return OID.bool;
  if (typeof value === "bigint") return OID.int8;
  if (Array.isArray(value)) return inferParamOid(value[0]);
  return OID.unknown;
}

/**
 * How a parameter value goes on the wire: its declared oid and its text.
 * When the declared oid is 0, pass the oid the server described for the
 * parameter (ParameterDescription) as `describedOid`: the text is written by
 * that type's serializer (an array for a json parameter becomes JSON, for
 * an int4[] parameter an array literal; a string for a json parameter is
 * JSON text and goes as it is).
 *
 * @param value The argument (null for SQL NULL; undefined is refused).
 * @param describedOid The parameter type the server described.
 * @throws {InterfaceError} INVALID_ARGUMENT when `value` is undefined.
 *
 * @example
 * ```ts
 * import { serializeParam } from "./params.ts";
 * console.log(serializeParam(new Date(0))); // { oid: 1184, text: "1970-01-01T00:00:00.000Z" }
 * console.log(serializeParam([1, null], 1007)); // { oid: 0, text: '{"1",NULL}' }
 * ```
 */
export function serializeParam(value: unknown, describedOid?: number): WireParam {
  if (value === undefined) {
    throw new InterfaceError("INVALID_ARGUMENT", "Query argument is undefined; pass null for SQL NULL");
  }
  const oid = inferParamOid(value);
  if (value === null) return { oid, text: null };
  const serialize = SERIALIZERS.get(oid === OID.unknown ? describedOid ?? OID.unknown : oid);
  return { oid, text: serialize === undefined ? serializeText(value) : serialize(value) };
}

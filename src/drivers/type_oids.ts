/**
 * Type oids the value codecs of both drivers know, and the built-in array
 * types they both parse to JavaScript arrays (one list, so they cannot drift).
 *
 * @module
 */

/** Oids of the built-in scalar types that have a codec or an array type here. */
export const OID = {
  unknown: 0,
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  jsonb: 3802,
} as const;

/**
 * Element oid → array oid for the built-in types whose arrays parse to
 * JavaScript arrays: the same set the postgres.js driver registers, so both
 * drivers return the same values (arrays of other types come back as text).
 *
 * @example
 * ```ts
 * import { BUILTIN_ARRAYS } from "./type_oids.ts";
 * console.log(BUILTIN_ARRAYS.find(([element]) => element === 23)); // [23, 1007]
 * ```
 */
export const BUILTIN_ARRAYS: ReadonlyArray<readonly [element: number, array: number]> = [
  [16, 1000], // bool
  [17, 1001], // bytea
  [18, 1002], // char
  [19, 1003], // name
  [20, 1016], // int8
  [21, 1005], // int2
  [23, 1007], // int4
  [25, 1009], // text
  [26, 1028], // oid
  [114, 199], // json
  [650, 651], // cidr
  [700, 1021], // float4
  [701, 1022], // float8
  [790, 791], // money
  [829, 1040], // macaddr
  [869, 1041], // inet
  [1042, 1014], // bpchar
  [1043, 1015], // varchar
  [1082, 1182], // date
  [1083, 1183], // time
  [1114, 1115], // timestamp
  [1184, 1185], // timestamptz
  [1186, 1187], // interval
  [1266, 1270], // timetz
  [1560, 1561], // bit
  [1562, 1563], // varbit
  [1700, 1231], // numeric
  [2950, 2951], // uuid
  [3802, 3807], // jsonb
];

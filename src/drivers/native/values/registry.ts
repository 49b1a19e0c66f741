/**
 * The per-connection table of result parsers by type oid.
 *
 * @module
 */
import { parseArrayLiteral } from "./arrays.ts";
import { parseBytea } from "./bytea.ts";
import { parseDate } from "./dates.ts";
import { parseJson } from "./json.ts";
import { BUILTIN_ARRAYS, OID } from "../../type_oids.ts";
import { parseBool, parseNumber } from "./scalars.ts";

/** A text-format value parser. */
export type Parser = (text: string) => unknown;

/** An array type the server reported: its oid, element oid and delimiter. */
export interface ArrayTypeRow {
  /** The array type's oid. */
  oid: number;
  /** The element type's oid. */
  elem: number;
  /** The element type's delimiter (`typdelim`), `,` for all but box. */
  delim: string;
}

/** Parsers by type oid for one connection. */
export interface TypeRegistry {
  /**
   * The parser of a result column's type; undefined means the text is the
   * value (int8, numeric, time, interval, uuid, money, ...).
   */
  parser(oid: number): Parser | undefined;
  /**
   * Registers array types (rows of {@linkcode TypeRegistry.arrayTypeQuery}),
   * keeping the parsers already known. Arrays of elements without a parser
   * parse to arrays of strings.
   */
  addArrayTypes(rows: readonly ArrayTypeRow[]): void;
  /**
   * SQL listing `oid, elem, delim` of the array types of the built-in element
   * types. The registry already knows all of these (like the postgres.js
   * driver, which skips postgres.js's connect-time type query for this
   * reason), so running it at connect is optional; it is the one place to
   * learn arrays should the set ever widen. Arrays it does not list come back
   * as text, as with the postgres.js driver.
   */
  readonly arrayTypeQuery: string;
}

const SCALAR_PARSERS: ReadonlyArray<readonly [number, Parser]> = [
  [OID.int2, parseNumber],
  [OID.int4, parseNumber],
  [OID.oid, parseNumber],
  [OID.float4, parseNumber],
  [OID.float8, parseNumber],
  [OID.bool, parseBool],
  [OID.json, parseJson],
  [OID.jsonb, parseJson],
  [OID.date, parseDate],
  [OID.timestamp, parseDate],
  [OID.timestamptz, parseDate],
  [OID.bytea, parseBytea],
];

// Columns of type oid parse to numbers, typdelim ("char") stays a string.
const ARRAY_TYPE_QUERY = "SELECT t.typarray AS oid, t.oid AS elem, t.typdelim::text AS delim" +
  " FROM pg_catalog.pg_type t WHERE t.typarray <> 0 AND t.oid IN (" +
  BUILTIN_ARRAYS.map(([element]) => element).join(",") + ")";

/** The registry: a Map from oid to parser. */
class Registry implements TypeRegistry {
  readonly #parsers = new Map<number, Parser>(SCALAR_PARSERS);

  constructor() {
    this.addArrayTypes(BUILTIN_ARRAYS.map(([elem, oid]) => ({ oid, elem, delim: "," })));
  }

  get arrayTypeQuery(): string {
    return ARRAY_TYPE_QUERY;
  }

  parser(oid: number): Parser | undefined {
    return this.#parsers.get(oid);
  }

  addArrayTypes(rows: readonly ArrayTypeRow[]): void {
    for (const { oid, elem, delim } of rows) {
      const id = +oid;
      if (this.#parsers.has(id)) continue;
      const element = this.#parsers.get(+elem);
      const separator = delim || ",";
      this.#parsers.set(id, (text: string): unknown[] => parseArrayLiteral(text, element, separator));
    }
  }
}

/**
 * Makes a connection's type registry, knowing the built-in types: int2, int4,
 * oid, float4, float8 parse to numbers; bool to a boolean; json and jsonb
 * with `JSON.parse`; date, timestamp, timestamptz to Dates; bytea to a
 * Buffer; arrays of built-in types to (nested) arrays of those. Every other
 * type (int8, numeric, money, time, interval, uuid, point, ...) stays text:
 * the values postgres.js returns.
 *
 * @example
 * ```ts
 * import { createTypeRegistry } from "./registry.ts";
 * const types = createTypeRegistry();
 * console.log(types.parser(1007)!("{1,2}")); // [1, 2]
 * console.log(types.parser(20)); // undefined: int8 stays a string
 * ```
 */
export function createTypeRegistry(): TypeRegistry {
  return new Registry();
}

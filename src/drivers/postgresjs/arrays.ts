/**
 * Array types without postgres.js's `fetch_types` round trip. postgres.js
 * learns array types by querying `pg_type` on every new connection; the driver
 * turns that off and registers the built-in array types here instead, so
 * arrays of built-in types parse to JavaScript arrays and JavaScript arrays
 * serialize as array parameters. Arrays of user-defined types come back as
 * their text form.
 *
 * @module
 */

import { BUILTIN_ARRAYS } from "../type_oids.ts";
import { serializeArrayLiteral } from "../param_text.ts";

type Parser = (text: string) => unknown;
type Serializer = (value: unknown) => string;

/** postgres.js's per-instance type tables (`sql.options`). */
export interface TypeTables {
  /** Text parsers by type oid. */
  parsers: Record<number, Parser | undefined>;
  /** Parameter serializers by type oid. */
  serializers: Record<number, Serializer | undefined>;
}

/**
 * Parses a PostgreSQL array literal (`{1,2,NULL}`, `{{"a b","c\"d"}}`,
 * `[0:1]={x,y}`), applying `parse` to every non-null element.
 *
 * @example
 * ```ts
 * import { parseArray } from "./arrays.ts";
 * console.log(parseArray('{1,NULL,"3"}', Number)); // [1, null, 3]
 * ```
 */
export function parseArray(text: string, parse?: Parser): unknown[] {
  let i = text.startsWith("[") ? text.indexOf("=") + 1 : 0;
  const read = (): unknown[] => {
    const out: unknown[] = [];
    i++; // '{'
    while (i < text.length) {
      const c = text[i];
      if (c === "}") {
        i++;
        return out;
      }
      if (c === ",") {
        i++;
        continue;
      }
      if (c === "{") {
        out.push(read());
        continue;
      }
      if (c === '"') {
        let value = "";
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === "\\") i++;
          value += text[i];
          i++;
        }
        i++;
        out.push(parse ? parse(value) : value);
        continue;
      }
      let end = i;
      while (end < text.length && text[end] !== "," && text[end] !== "}") end++;
      const raw = text.slice(i, end);
      i = end;
      out.push(raw === "NULL" ? null : parse ? parse(raw) : raw);
    }
    return out;
  };
  return read();
}

/**
 * Writes a JavaScript array (nested for more dimensions) as an array literal,
 * quoting every element and applying `serialize` to non-null ones (the shared
 * `paramText()` without one: a plain object is its JSON text, never
 * `[object Object]`). The writer both drivers share: `../param_text.ts`.
 *
 * @example
 * ```ts
 * import { serializeArray } from "./arrays.ts";
 * console.log(serializeArray([1, null, 'a"b'])); // {"1",NULL,"a\"b"}
 * ```
 */
export function serializeArray(value: unknown, serialize?: Serializer): string {
  return serializeArrayLiteral(value, serialize);
}

/**
 * Registers parsers and serializers for the built-in array types in a
 * postgres.js instance's type tables, keeping any that already exist.
 *
 * @example
 * ```ts
 * import { installArrayTypes } from "./arrays.ts";
 * import assert from "node:assert/strict";
 * const tables: { parsers: Record<number, (x: string) => unknown>; serializers: Record<number, (x: unknown) => string> } = {
 *   parsers: { 23: (x: string) => +x },
 *   serializers: {},
 * };
 * installArrayTypes(tables);
 * assert.deepEqual(tables.parsers[1007]!("{1,2}"), [1, 2]);
 * ```
 */
export function installArrayTypes(tables: TypeTables): void {
  for (const [element, array] of BUILTIN_ARRAYS) {
    const parse = tables.parsers[element];
    const serialize = tables.serializers[element];
    tables.parsers[array] ??= (text: string): unknown[] => parseArray(text, parse);
    tables.serializers[array] ??= (value: unknown): string => serializeArray(value, serialize);
  }
}

/**
 * Row factories (asyncpg's `record_class`): the connection option
 * `rowFactory` decides what a row of `fetch`, `fetchRow` and `fetchMany` is.
 * Without it rows are plain objects keyed by column name, built by the driver
 * as before (no extra work per row). With `"array"` the driver builds arrays
 * of values in column order instead; with a function the driver builds those
 * arrays and the function turns each into the row.
 *
 * Cursors and prepared statements build their rows with {@linkcode buildRows}
 * / {@linkcode buildRow} over a driver result fetched with
 * {@linkcode arrayRowOptions}, so they honour the same option.
 *
 * @module
 */

import type { DriverQueryOptions, QueryOptions, QueryResult } from "./driver.ts";

/**
 * What a row is: `"array"` (the values in column order, duplicate column names
 * kept) or a function called once per row with the column names (the same
 * array for every row of a result) and that row's values in column order,
 * returning the row. Its return type is the row type a query names:
 * `fetch<User>(...)` with a factory that returns `User`s.
 *
 * @example Rows as class instances
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, type RowFactory } from "@x/pgpool";
 * class Record {
 *   constructor(readonly columns: readonly string[], readonly values: unknown[]) {}
 *   get(name: string): unknown {
 *     return this.values[this.columns.indexOf(name)];
 *   }
 * }
 * const rowFactory: RowFactory<Record> = (columns, values) => new Record(columns, values);
 * await using con = await connect({ rowFactory });
 * const row = await con.fetchRow<Record>("SELECT 1 AS a, 'x' AS b");
 * assert.ok(row instanceof Record);
 * assert.equal(row.get("b"), "x");
 * ```
 */
export type RowFactory<R = unknown> = "array" | ((columns: readonly string[], values: unknown[]) => R);

/**
 * Checks a `rowFactory` option; throws `TypeError` naming `where`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRowFactory } from "./row_factory.ts";
 * checkRowFactory("array", "Cannot connect");
 * assert.throws(() => checkRowFactory("object", "Cannot connect"), TypeError);
 * ```
 */
export function checkRowFactory(value: unknown, where: string): void {
  if (value === undefined || value === "array" || typeof value === "function") return;
  throw new TypeError(
    `${where} as 'rowFactory' must be "array" or a function (columns, values) => row: got ${
      typeof value === "string" ? `'${value}'` : value === null ? "null" : typeof value
    }`,
  );
}

/**
 * The driver options of a query whose rows a factory builds: the caller's
 * bounds, with rows asked for as arrays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrayRowOptions } from "./row_factory.ts";
 * assert.deepEqual(arrayRowOptions({ timeout: 2 }), { timeout: 2, signal: undefined, arrayRows: true });
 * ```
 */
export function arrayRowOptions(opts: QueryOptions | undefined): DriverQueryOptions {
  if (opts === undefined) return ARRAY_ROWS;
  return { timeout: opts.timeout, signal: opts.signal, arrayRows: true };
}

const ARRAY_ROWS: DriverQueryOptions = Object.freeze({ arrayRows: true });

/**
 * The rows of a result fetched with {@linkcode arrayRowOptions}, built by `factory`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildRows } from "./row_factory.ts";
 * const result = { rows: [[1, "a"]] as never[], columns: ["id", "name"], command: "SELECT 1" };
 * assert.deepEqual(buildRows((c, v) => `${c[1]}=${v[1]}`, result), ["name=a"]);
 * assert.deepEqual(buildRows("array", result), [[1, "a"]]);
 * ```
 */
export function buildRows(factory: RowFactory, result: QueryResult): unknown[] {
  const values = result.rows as unknown as unknown[][];
  if (factory === "array") return values;
  const columns = result.columns;
  const rows = new Array<unknown>(values.length);
  for (let i = 0; i < values.length; i++) rows[i] = factory(columns, values[i]!);
  return rows;
}

/**
 * The first row of a result fetched with {@linkcode arrayRowOptions}, built by `factory`; `null` when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildRow } from "./row_factory.ts";
 * const result = { rows: [[1], [2]] as never[], columns: ["n"], command: "SELECT 2" };
 * assert.deepEqual(buildRow((columns, values) => ({ [columns[0]!]: values[0] }), result), { n: 1 });
 * ```
 */
export function buildRow(factory: RowFactory, result: QueryResult): unknown {
  const values = result.rows[0] as unknown as unknown[] | undefined;
  if (values === undefined) return null;
  return factory === "array" ? values : factory(result.columns, values);
}

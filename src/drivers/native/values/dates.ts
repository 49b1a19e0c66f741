/**
 * date, timestamp and timestamptz codecs. Parsing is the runtime's own
 * `new Date(text)` (a timestamp without zone is read as local time, `infinity`
 * gives an invalid date), exactly as postgres.js does.
 *
 * @module
 */

/**
 * Parses date, timestamp or timestamptz text to a Date.
 *
 * @example
 * ```ts
 * import { parseDate } from "./dates.ts";
 * console.log(parseDate("2024-01-02 03:04:05.5+00").toISOString()); // 2024-01-02T03:04:05.500Z
 * ```
 */
export function parseDate(text: string): Date {
  return new Date(text);
}

/**
 * Writes a date/timestamp parameter as ISO 8601 UTC; a value that is not a
 * Date goes through `new Date(value)` first; one that is no valid Date is sent as
 * its text, for the server to read or refuse (SQLSTATE 22007).
 *
 * @example
 * ```ts
 * import { serializeDate } from "./dates.ts";
 * console.log(serializeDate(new Date(0))); // 1970-01-01T00:00:00.000Z
 * ```
 */
export function serializeDate(value: unknown): string {
  const date = value instanceof Date ? value : new Date(value as string);
  // Not a valid Date: the server reads the text itself (an invalid one fails with 22007, `infinity` is kept).
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

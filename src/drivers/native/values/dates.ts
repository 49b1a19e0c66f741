/**
 * date, timestamp and timestamptz codecs. Parsing is the runtime's own
 * `new Date(text)` (a timestamp without zone is read as local time, `infinity`
 * gives an invalid date), exactly as postgres.js does.
 *
 * @module
 */
import { serializeDateParam } from "../../param_text.ts";

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
 * Writes a date/timestamp parameter: a Date as its ISO 8601 UTC instant; a string (or anything else) as
 * it is, for the server to read in the session's TimeZone (microseconds, offsets, `infinity`, BC dates
 * kept) or refuse (SQLSTATE 22007/22008). The rule both drivers share: see `../../param_text.ts`.
 *
 * @example
 * ```ts
 * import { serializeDate } from "./dates.ts";
 * console.log(serializeDate(new Date(0))); // 1970-01-01T00:00:00.000Z
 * console.log(serializeDate("2024-01-02 10:00:00.123456")); // 2024-01-02 10:00:00.123456
 * ```
 */
export const serializeDate: (value: unknown) => string = serializeDateParam;

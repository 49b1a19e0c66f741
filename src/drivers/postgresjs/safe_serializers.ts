/**
 * Parameter serializers that never throw inside postgres.js.
 *
 * postgres.js 3.4.9 serializes parameters while it writes `Bind`. When a serializer throws there for a
 * statement it has cached, and another statement of the connection has not had its `ReadyForQuery`
 * processed yet, postgres.js rejects that other (already settled) statement instead of the failing one,
 * and the failing one then waits forever for an answer to bytes that were never written: the connection
 * hangs (seen with the fourth invalid date in a row on one connection).
 *
 * So no serializer may throw. A date-like value that cannot become a `Date` goes to the server as its
 * text, which the server validates (an invalid one fails with SQLSTATE 22007, a valid special value such
 * as `infinity` is kept). Any other value a serializer refuses is sent as a text holding a NUL byte, which
 * PostgreSQL rejects for every type before the statement runs (SQLSTATE 22021): never a wrong value, and
 * the connection stays usable.
 *
 * @module
 */

/** A parameter serializer as postgres.js keeps them, by type OID. */
type Serializer = (value: unknown) => string;

/** date, timestamp, timestamptz. */
const DATE_TYPES: ReadonlySet<number> = new Set([1082, 1114, 1184]);

/** The text sent for a value its serializer refused: the server rejects the NUL byte before running anything. */
export const REFUSED_PARAMETER = "\u0000";

const refused = (): string => REFUSED_PARAMETER;

/**
 * Wraps every serializer of `serializers` so that it never throws (see the module documentation).
 *
 * @param serializers postgres.js's serializer table (`sql.options.serializers`), changed in place.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guardSerializers, REFUSED_PARAMETER } from "./safe_serializers.ts";
 * const serializers: Record<number, (x: unknown) => string> = {
 *   1184: (x) => (x instanceof Date ? x : new Date(x as string)).toISOString(),
 *   114: (x) => JSON.stringify(x),
 * };
 * guardSerializers(serializers);
 * assert.equal(serializers[1184]!("not a date"), "not a date");
 * const loop: Record<string, unknown> = {};
 * loop.self = loop;
 * assert.equal(serializers[114]!(loop), REFUSED_PARAMETER);
 * ```
 */
export function guardSerializers(serializers: Record<number, Serializer | undefined>): void {
  for (const key of Object.keys(serializers)) {
    const oid = Number(key);
    const serialize = serializers[oid];
    if (serialize === undefined) continue;
    const fallback = DATE_TYPES.has(oid) ? String : refused;
    serializers[oid] = (value: unknown): string => {
      try {
        return serialize(value);
      } catch {
        return fallback(value);
      }
    };
  }
}

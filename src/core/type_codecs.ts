/**
 * Type codecs (asyncpg's `set_type_codec`): a connection's own text encoder
 * and decoder for one PostgreSQL type, found by name in the server's catalog.
 * Codecs are client-side state of the connection: the session reset at
 * release does not touch them, so a codec set in a pool's `init` hook holds for
 * every checkout of that connection.
 *
 * @module
 */

import type { DriverConnection } from "./driver.ts";
import { InterfaceError } from "./errors.ts";

/**
 * A text codec of one type: `decoder` turns the server's text of a value into
 * the application's value, `encoder` turns an argument bound to a parameter of
 * that type into the text the server parses. Arrays of the type use them per
 * element.
 *
 * @example A composite type as a class
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, type TypeCodec } from "@x/pgpool";
 * class Point {
 *   constructor(readonly x: number, readonly y: number) {}
 * }
 * await using con = await connect();
 * await con.execute("CREATE TYPE pg_temp.pt AS (x int, y int)");
 * const codec: TypeCodec<Point> = {
 *   schema: "pg_temp",
 *   decoder: (text) => {
 *     const [x, y] = text.slice(1, -1).split(",").map(Number);
 *     return new Point(x!, y!);
 *   },
 *   encoder: (p) => `(${p.x},${p.y})`,
 * };
 * await con.setTypeCodec("pt", codec);
 * const p = await con.fetchVal<Point>("SELECT $1::pg_temp.pt", [new Point(1, 2)]);
 * assert.deepEqual(p, new Point(1, 2));
 * ```
 */
export interface TypeCodec<T = unknown> {
  /**
   * The type's schema. Without it the name is resolved like a type name in SQL: through
   * `search_path`, folded to lower case unless quoted, and `"numeric"` or `"public.price"` work.
   * With it, both names are taken as they are (case kept).
   */
  schema?: string;
  /** Turns a value into the type's text input. */
  encoder: (value: T) => string;
  /** Turns the type's text output into a value. */
  decoder: (text: string) => T;
  /** The wire format: only `"text"` (the default). */
  format?: "text";
}

/** The codec as a driver installs it: see {@linkcode DriverConnection.setTypeCodec}. */
export interface TextCodec {
  /** Value → text. */
  encoder: (value: unknown) => string;
  /** Text → value. */
  decoder: (text: string) => unknown;
}

/** A type as the catalog describes it: its oid and its array type's oid (0: none). */
export interface CodecType {
  /** The type's oid. */
  oid: number;
  /** The oid of its array type, 0 when it has none. */
  arrayOid: number;
}

// typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange.
const LOOKUP_SQL =
  "SELECT t.oid::int8::text AS oid, t.typarray::int8::text AS array_oid, t.typtype::text AS kind," +
  " format_type(t.oid, NULL) AS name, format_type(t.typbasetype, NULL) AS base" +
  " FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype($1)";

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Checks the arguments of `setTypeCodec()`; throws `INVALID_ARGUMENT`, or
 * `UNSUPPORTED` for a format other than text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTypeCodec } from "./type_codecs.ts";
 * checkTypeCodec("numeric", { encoder: String, decoder: Number });
 * assert.throws(() => checkTypeCodec("numeric", { encoder: String, decoder: Number, format: "binary" as "text" }), {
 *   code: "UNSUPPORTED",
 * });
 * ```
 */
export function checkTypeCodec(typeName: unknown, codec: unknown): void {
  checkTypeName(typeName, "set a type codec");
  const c = codec as Partial<TypeCodec> | null | undefined;
  if (c === null || typeof c !== "object") {
    throw new InterfaceError("INVALID_ARGUMENT", "Cannot set a type codec as the codec must be an object");
  }
  for (const key of ["encoder", "decoder"] as const) {
    if (typeof c[key] !== "function") {
      throw new InterfaceError("INVALID_ARGUMENT", `Cannot set a type codec as '${key}' must be a function`);
    }
  }
  if (c.format !== undefined && c.format !== "text") {
    throw new InterfaceError(
      "UNSUPPORTED",
      `Cannot set a type codec of format '${String(c.format)}' as only the text format is supported`,
    );
  }
  if (c.schema !== undefined && (typeof c.schema !== "string" || c.schema === "")) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      "Cannot set a type codec as 'schema' must be a non-empty string",
    );
  }
}

function checkTypeName(typeName: unknown, action: string): void {
  if (typeof typeName !== "string" || typeName === "") {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      `Cannot ${action} as the type name must be a non-empty string`,
    );
  }
}

/**
 * Finds a type in the server's catalog. Throws `UNKNOWN_TYPE` when the server
 * has no such type, and `UNSUPPORTED` for a domain (its values reach the
 * client as its base type: the codec belongs on that) or a pseudo-type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { createNativeDriver } from "../drivers/native/driver.ts";
 * import { nodeConnector } from "../runtime/node.ts";
 * import { resolveCodecType } from "./type_codecs.ts";
 * const driver = createNativeDriver(nodeConnector, { env: process.env });
 * const con = await driver.connect({ sslmode: "disable" });
 * assert.deepEqual(await resolveCodecType(con, "int4", undefined, "set a type codec"), { oid: 23, arrayOid: 1007 });
 * await assert.rejects(resolveCodecType(con, "no_such_type", undefined, "set a type codec"), { code: "UNKNOWN_TYPE" });
 * await con.close();
 * ```
 */
export async function resolveCodecType(
  driver: DriverConnection,
  typeName: string,
  schema: string | undefined,
  action: string,
): Promise<CodecType> {
  checkTypeName(typeName, action);
  const qualified = schema === undefined ? typeName : `${quoteIdent(schema)}.${quoteIdent(typeName)}`;
  const shown = schema === undefined ? typeName : `${schema}.${typeName}`;
  let row: Record<string, unknown> | undefined;
  try {
    row = (await driver.query(LOOKUP_SQL, [qualified])).rows[0];
  } catch (e) {
    // to_regtype() returns NULL for a missing type but rejects text that is no type name at all.
    const code = (e as { code?: unknown }).code;
    if (code !== "42601" && code !== "22P02" && code !== "42704") throw e;
    row = undefined;
  }
  if (row === undefined || row.oid === null) {
    throw new InterfaceError("UNKNOWN_TYPE", `Cannot ${action} as the server has no type named '${shown}'`);
  }
  if (row.kind === "d") {
    throw new InterfaceError(
      "UNSUPPORTED",
      `Cannot ${action} on '${row.name}' as it is a domain: PostgreSQL sends a domain's values as its base type ` +
        `(${row.base}), so set the codec on ${row.base}`,
    );
  }
  if (row.kind === "p") {
    throw new InterfaceError("UNSUPPORTED", `Cannot ${action} on '${row.name}' as it is a pseudo-type`);
  }
  return { oid: Number(row.oid), arrayOid: Number(row.array_oid) };
}

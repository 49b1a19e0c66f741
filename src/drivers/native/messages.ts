/**
 * Frontend message encoders and backend error/notice decoding.
 *
 * @module
 */

import { PostgresError } from "../../core/errors.ts";
import type { Notice } from "../../core/log_listeners.ts";
import { cstrEnd, utf8 } from "./wire_reader.ts";
import type { WireWriter } from "./wire_writer.ts";

/** Protocol 3.0. */
const PROTOCOL_VERSION = 196608;

/**
 * Writes the StartupMessage.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeStartup } from "./messages.ts";
 * import { WireWriter } from "./wire_writer.ts";
 * const writer = new WireWriter();
 * writeStartup(writer, { user: "postgres", database: "postgres" });
 * const bytes = writer.take();
 * assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getInt32(0), bytes.length); // no type byte
 * assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getInt32(4), 196608); // protocol 3.0
 * ```
 */
export function writeStartup(w: WireWriter, params: Record<string, string>): void {
  w.begin(0).int32(PROTOCOL_VERSION);
  for (const [k, v] of Object.entries(params)) w.cstr(k).cstr(v);
  w.byte(0).end();
}

/** Writes Parse (`P`) for statement `name` with parameter type oids. */
export function writeParse(w: WireWriter, name: string, sql: string, oids: readonly number[]): void {
  w.begin(0x50).cstr(name).cstr(sql).int16(oids.length);
  for (const oid of oids) w.int32(oid);
  w.end();
}

/** Writes Bind (`B`) of the unnamed portal with text parameters and text results. */
export function writeBind(w: WireWriter, name: string, texts: readonly (string | null)[]): void {
  w.begin(0x42).byte(0).cstr(name).int16(0).int16(texts.length);
  for (const t of texts) w.lenText(t);
  w.int16(0).end();
}

/** Writes Describe (`D`) of a statement (`S`) or the unnamed portal (`P`). */
export function writeDescribe(w: WireWriter, kind: "S" | "P", name: string): void {
  w.begin(0x44).byte(kind === "S" ? 0x53 : 0x50).cstr(name).end();
}

/** Writes Close (`C`) of a prepared statement (`S`) or portal (`P`). */
export function writeClose(w: WireWriter, kind: "S" | "P", name: string): void {
  w.begin(0x43).byte(kind === "S" ? 0x53 : 0x50).cstr(name).end();
}

/** Writes Execute (`E`) of the unnamed portal, all rows. */

export function writeExecute(w: WireWriter): void {
  w.begin(0x45).byte(0).int32(0).end();
}

/** Writes Sync (`S`). */
export function writeSync(w: WireWriter): void {
  w.begin(0x53).end();
}

/** Writes a simple Query (`Q`). */
export function writeQuery(w: WireWriter, sql: string): void {
  w.begin(0x51).cstr(sql).end();
}

/**
 * Decodes the fields of an ErrorResponse or NoticeResponse body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFields } from "./messages.ts";
 * const body = new TextEncoder().encode("SERROR\0C42P01\0Mrelation \"t\" does not exist\0\0");
 * const fields = parseFields(body, 0, body.length);
 * assert.equal(fields.code, "42P01");
 * assert.equal(fields.message, 'relation "t" does not exist');
 * ```
 */
export function parseFields(b: Uint8Array, start: number, end: number): Notice {
  const f: Notice = { code: "", message: "" };
  let i = start;
  while (i < end && b[i] !== 0) {
    const key = b[i]!;
    const stop = cstrEnd(b, i + 1);
    const value = utf8(b, i + 1, stop);
    i = stop + 1;
    switch (key) {
      case 0x56: // V: non-localized severity
        f.severity = value;
        break;
      case 0x53: // S
        f.severity ??= value;
        break;
      case 0x43:
        f.code = value;
        break;
      case 0x4d:
        f.message = value;
        break;
      case 0x44:
        f.detail = value;
        break;
      case 0x48:
        f.hint = value;
        break;
      case 0x50:
        f.position = Number(value);
        break;
      case 0x57:
        f.where = value;
        break;
      case 0x73:
        f.schema = value;
        break;
      case 0x74:
        f.table = value;
        break;
      case 0x63:
        f.column = value;
        break;
      case 0x64:
        f.dataType = value;
        break;
      case 0x6e:
        f.constraint = value;
        break;
      case 0x70: // p
        f.internalPosition = Number(value);
        break;
      case 0x71: // q
        f.internalQuery = value;
        break;
      case 0x46: // F
        f.file = value;
        break;
      case 0x4c: // L
        f.line = Number(value);
        break;
      case 0x52: // R
        f.routine = value;
        break;
    }
  }
  return f;
}

/** Builds the {@linkcode PostgresError} of an ErrorResponse body. */
export function toPostgresError(b: Uint8Array, start: number, end: number): PostgresError {
  return new PostgresError(parseFields(b, start, end));
}

/** Double-quotes an identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Building SQL text safely: identifiers and literals are quoted, never spliced raw.
 *
 * @module
 */

import { InterfaceError } from "./errors.ts";

/**
 * Quotes an SQL identifier (`my "table"` → `"my ""table"""`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quoteIdentifier } from "@x/pgpool";
 * assert.equal(quoteIdentifier('we"ird name'), '"we""ird name"');
 * ```
 */
export function quoteIdentifier(name: string): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new InterfaceError("INVALID_ARGUMENT", "Cannot quote an identifier that is not a non-empty string");
  }
  if (name.includes("\0")) {
    throw new InterfaceError("INVALID_ARGUMENT", "Cannot quote an identifier containing a NUL character");
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal with the `E''`-free standard form (`it's` → `'it''s'`). */
export function quoteLiteral(value: string): string {
  if (value.includes("\0")) {
    throw new InterfaceError("INVALID_ARGUMENT", "Cannot quote a literal containing a NUL character");
  }
  return `'${value.replaceAll("'", "''")}'`;
}

/** `"schema"."table"` or `"table"`. */
export function qualifiedName(table: string, schemaName: string | undefined): string {
  return schemaName === undefined
    ? quoteIdentifier(table)
    : `${quoteIdentifier(schemaName)}.${quoteIdentifier(table)}`;
}

/** Options of the `COPY` statement shared by the copy helpers. */
export interface CopyFormatOptions {
  /** `text` (default), `csv` or `binary`. */
  format?: "text" | "csv" | "binary";
  /** Column delimiter (one character). */
  delimiter?: string;
  /** The string that represents NULL. */
  null?: string;
  /** CSV: a header line. */
  header?: boolean;
  /** CSV: the quote character. */
  quote?: string;
  /** CSV: the escape character. */
  escape?: string;
  /** CSV, COPY TO: columns always quoted. */
  forceQuote?: string[] | true;
  /** CSV, COPY FROM: columns never matched against the null string. */
  forceNotNull?: string[];
  /** CSV, COPY FROM: columns matched against the null string even when quoted. */
  forceNull?: string[];
  /** The file's encoding. */
  encoding?: string;
}

const FORMATS = new Set(["text", "csv", "binary"]);

/** Renders the `(FORMAT …, …)` part of a COPY statement, or "" when there is nothing to say. */
export function copyOptionsSql(o: CopyFormatOptions): string {
  const parts: string[] = [];
  if (o.format !== undefined) {
    if (!FORMATS.has(o.format)) {
      throw new InterfaceError("INVALID_ARGUMENT", `Cannot copy as format must be text, csv or binary`);
    }
    parts.push(`FORMAT ${o.format}`);
  }
  if (o.delimiter !== undefined) parts.push(`DELIMITER ${quoteLiteral(o.delimiter)}`);
  if (o.null !== undefined) parts.push(`NULL ${quoteLiteral(o.null)}`);
  if (o.header !== undefined) parts.push(`HEADER ${o.header ? "true" : "false"}`);
  if (o.quote !== undefined) parts.push(`QUOTE ${quoteLiteral(o.quote)}`);
  if (o.escape !== undefined) parts.push(`ESCAPE ${quoteLiteral(o.escape)}`);
  if (o.forceQuote !== undefined) {
    parts.push(
      o.forceQuote === true
        ? "FORCE_QUOTE *"
        : `FORCE_QUOTE (${o.forceQuote.map(quoteIdentifier).join(", ")})`,
    );
  }
  if (o.forceNotNull !== undefined) {
    parts.push(`FORCE_NOT_NULL (${o.forceNotNull.map(quoteIdentifier).join(", ")})`);
  }
  if (o.forceNull !== undefined) parts.push(`FORCE_NULL (${o.forceNull.map(quoteIdentifier).join(", ")})`);
  if (o.encoding !== undefined) parts.push(`ENCODING ${quoteLiteral(o.encoding)}`);
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
}

/** `("a", "b")` or "" for all columns. */
export function columnListSql(columns: readonly string[] | undefined): string {
  if (columns === undefined) return "";
  if (!Array.isArray(columns) || columns.length === 0) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      "Cannot copy as 'columns' must be a non-empty array of names",
    );
  }
  return ` (${columns.map(quoteIdentifier).join(", ")})`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function textValue(value: unknown): string {
  if (value === null) return "\\N";
  if (value === undefined || typeof value === "symbol" || typeof value === "function") {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      `Cannot copy a record value of type ${typeof value}; pass null for SQL NULL`,
    );
  }
  let s: string;
  if (typeof value === "string") s = value;
  else if (typeof value === "number" || typeof value === "bigint") s = String(value);
  else if (typeof value === "boolean") s = value ? "t" : "f";
  else if (value instanceof Date) s = value.toISOString();
  else if (value instanceof Uint8Array) {
    let hex = "\\x";
    for (const b of value) hex += HEX[b];
    s = hex;
  } else s = JSON.stringify(value);
  return s.replace(
    /[\\\t\n\r]/g,
    (c) => c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

/** Encodes one record as a line of COPY's text format. */
export function copyTextLine(record: readonly unknown[]): string {
  let line = "";
  for (let i = 0; i < record.length; i++) {
    if (i > 0) line += "\t";
    line += textValue(record[i]);
  }
  return line + "\n";
}

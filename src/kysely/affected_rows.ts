/**
 * How the dialect learns how many rows a statement affected. The pool's public
 * API hands back either a statement's rows (`fetch`) or its status tag
 * (`execute`), not both, so each compiled query is sorted first:
 *
 * - `"tag"`: INSERT / UPDATE / DELETE / MERGE without RETURNING. It returns no
 *   rows, so `execute` loses nothing and its tag (`"UPDATE 3"`) gives the count.
 * - `"returning"`: the same with RETURNING. RETURNING yields one row per affected
 *   row, so the count is the number of rows `fetch` returns.
 * - `"rows"`: everything else (SELECT, DDL, WITH …, EXPLAIN …): `fetch`, no count.
 *
 * Built queries are sorted by their operation node, exactly. Raw SQL
 * (`sql\`…\``, `CompiledQuery.raw`) is sorted by its first keyword and by whether
 * the word `returning` appears anywhere in it, so a raw DML statement that only
 * mentions `returning` in a literal or a name reports the rows it returned (0)
 * as its count, and a raw `WITH … UPDATE …` reports no count.
 *
 * @module
 */

import type { CompiledQuery } from "kysely";

/** How to run a compiled query: see the module documentation. */
export type ResultShape = "tag" | "returning" | "rows";

const DML_NODES: ReadonlySet<string> = new Set([
  "InsertQueryNode",
  "UpdateQueryNode",
  "DeleteQueryNode",
  "MergeQueryNode",
]);
const DML_KEYWORDS: ReadonlySet<string> = new Set(["insert", "update", "delete", "merge"]);

/** Leading white space and comments, then the first word. */
const FIRST_KEYWORD = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z_]\w*)/;
const RETURNING = /\breturning\b/i;

/** Sorts a compiled query: see the module documentation. */
export function resultShapeOf(query: CompiledQuery): ResultShape {
  const node = query.query;
  if (node.kind === "RawNode") {
    const keyword = FIRST_KEYWORD.exec(query.sql)?.[1]?.toLowerCase();
    if (keyword === undefined || !DML_KEYWORDS.has(keyword)) return "rows";
    return RETURNING.test(query.sql) ? "returning" : "tag";
  }
  if (!DML_NODES.has(node.kind)) return "rows";
  return (node as { readonly returning?: unknown }).returning === undefined ? "tag" : "returning";
}

/**
 * The row count of an INSERT / UPDATE / DELETE / MERGE status tag (`"INSERT 0 5"`
 * → `5n`, `"UPDATE 3"` → `3n`); `undefined` for other tags.
 */
export function affectedRowsOf(tag: string): bigint | undefined {
  const space = tag.indexOf(" ");
  if (space < 0 || !DML_KEYWORDS.has(tag.slice(0, space).toLowerCase())) return undefined;
  const count = tag.slice(tag.lastIndexOf(" ") + 1);
  return /^\d+$/.test(count) ? BigInt(count) : undefined;
}

/**
 * Prepared statements: `con.prepare(sql)`. The server describes the statement
 * once (parameter and column types); each run then binds it.
 *
 * Where the statement lives on the server: in the connection's bounded
 * statement cache (`statementCacheSize`, default 100), never outside it. On the
 * native driver, `prepare()` gives the text a place in that cache when one is
 * free, and every run binds the named statement; when the cache is full (or
 * `prepare: false`) the text runs as an unnamed statement, parsed per run. The
 * postgres.js driver describes through a named statement that it deallocates
 * right away, and runs the text through its statement cache. So the server
 * never holds more named statements than the cache's bound, however many
 * statements are prepared: they are not closed at release, the next checkout
 * of the connection reuses them.
 *
 * @module
 */

import { Cursor, type CursorOptions, type StatementOwner } from "./cursor.ts";
import type { QueryOptions, QueryResult, Row } from "./driver.ts";
import { InterfaceError } from "./errors.ts";

/** What kind of type a {@linkcode PgType} is (from `pg_type.typtype`). */
export type PgTypeKind =
  | "scalar"
  | "array"
  | "composite"
  | "domain"
  | "enum"
  | "range"
  | "multirange"
  | "pseudo";

/** A server type, as `getParameters()` and `getAttributes()` report it. */
export interface PgType {
  /** `pg_type.oid`. */
  oid: number;
  /** `pg_type.typname`, e.g. `"int4"` or `"_text"`. */
  name: string;
  /** What kind of type it is. */
  kind: PgTypeKind;
  /** The schema it is in, e.g. `"pg_catalog"`. */
  schema: string;
}

/** A result column of a prepared statement. */
export interface Attribute {
  /** The column name. */
  name: string;
  /** Its type. */
  type: PgType;
}

/** Options of `explain()`. */
export interface ExplainOptions extends QueryOptions {
  /**
   * Run the statement (`EXPLAIN ANALYZE`) to report actual times and rows. It runs in a
   * transaction (or a savepoint) that is rolled back, so its changes do not stay.
   */
  analyze?: boolean;
}

const KINDS: Readonly<Record<string, PgTypeKind>> = {
  b: "scalar",
  c: "composite",
  d: "domain",
  e: "enum",
  r: "range",
  m: "multirange",
  p: "pseudo",
};

/** Looks the types of `oids` up in `pg_type` (one simple query, none when there are no oids). */
async function typesOf(owner: StatementOwner, oids: readonly number[]): Promise<Map<number, PgType>> {
  const out = new Map<number, PgType>();
  const wanted = [...new Set(oids)].filter((o) => Number.isSafeInteger(o) && o > 0);
  if (wanted.length === 0) return out;
  const result = await owner.query(
    "SELECT t.oid::text AS oid, t.typname::text AS name, n.nspname::text AS schema, " +
      "t.typtype::text AS typtype, t.typcategory::text AS category " +
      "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace " +
      `WHERE t.oid IN (${wanted.join(", ")})`,
    undefined,
  );
  for (const row of result.rows) {
    const oid = Number(row.oid);
    const typtype = String(row.typtype);
    out.set(oid, {
      oid,
      name: String(row.name),
      kind: typtype === "b" && row.category === "A" ? "array" : KINDS[typtype] ?? "scalar",
      schema: String(row.schema),
    });
  }
  return out;
}

function typeOf(types: Map<number, PgType>, oid: number): PgType {
  return types.get(oid) ?? { oid, name: "", kind: "scalar", schema: "" };
}

/** Internal: prepares `sql` for `owner` (what `prepare()` runs). */
export async function prepareStatement(
  owner: StatementOwner,
  sql: string,
  opts?: QueryOptions,
): Promise<PreparedStatement> {
  if (typeof sql !== "string") {
    throw new InterfaceError("INVALID_ARGUMENT", `The SQL text must be a string: got ${typeof sql}`);
  }
  const description = await owner.describe(sql, opts);
  const types = await typesOf(owner, [
    ...description.parameterTypes,
    ...description.columns.map((c) => c.typeOid),
  ]);
  creating = true;
  try {
    return new PreparedStatement(
      owner,
      sql,
      Object.freeze(description.parameterTypes.map((oid) => Object.freeze(typeOf(types, oid)))),
      Object.freeze(
        description.columns.map((c) =>
          Object.freeze({ name: c.name, type: Object.freeze(typeOf(types, c.typeOid)) })
        ),
      ),
    );
  } finally {
    creating = false;
  }
}

let creating = false;

/**
 * A statement prepared on a connection by `con.prepare(sql)`: run it with
 * arguments as often as needed, read its parameter and column types, explain
 * it. It belongs to its checkout: once the connection is released, every
 * method throws `CONNECTION_RELEASED` synchronously. See the module docs for
 * where it lives on the server (always within the connection's bounded
 * statement cache).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * await using pool = await createPool({ maxSize: 1 });
 * const con = await pool.acquire();
 * const stmt = await con.prepare("SELECT $1::int * 2 AS doubled");
 * assert.equal(await stmt.fetchVal([21]), 42);
 * assert.deepEqual(stmt.getParameters().map((t) => t.name), ["int4"]);
 * assert.deepEqual(stmt.getAttributes().map((a) => [a.name, a.type.name]), [["doubled", "int4"]]);
 * await pool.release(con);
 * assert.throws(() => stmt.fetchVal([1]), { code: "CONNECTION_RELEASED" });
 * ```
 */
export class PreparedStatement {
  readonly #owner: StatementOwner;
  readonly #sql: string;
  readonly #params: readonly PgType[];
  readonly #attributes: readonly Attribute[];
  #status = "";

  /** Not for direct use: `prepare()` on a connection makes these. */
  constructor(
    owner: StatementOwner,
    sql: string,
    params: readonly PgType[],
    attributes: readonly Attribute[],
  ) {
    if (!creating) throw new TypeError("PreparedStatement objects are made by prepare()");
    this.#owner = owner;
    this.#sql = sql;
    this.#params = params;
    this.#attributes = attributes;
  }

  async #run(
    args: readonly unknown[] | undefined,
    opts: QueryOptions | undefined,
    rows = false,
  ): Promise<QueryResult> {
    const owner = this.#owner;
    const result = await (rows ? owner.rowQuery(this.#sql, args, opts) : owner.query(this.#sql, args, opts));
    this.#status = result.command;
    return result;
  }

  /**
   * The statement's text.
   *
   * @returns The SQL given to `prepare()`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT 1");
   * assert.equal(stmt.getQuery(), "SELECT 1");
   * ```
   */
  getQuery(): string {
    this.#owner.check("PreparedStatement.getQuery");
    return this.#sql;
  }

  /**
   * The parameters' types, in order, as the server inferred them.
   *
   * @returns One type per `$n`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT $1::text || $2::int");
   * assert.deepEqual(stmt.getParameters().map((t) => t.name), ["text", "int4"]);
   * ```
   */
  getParameters(): readonly PgType[] {
    this.#owner.check("PreparedStatement.getParameters");
    return this.#params;
  }

  /**
   * The result columns: names and types (empty for a statement without rows).
   *
   * @returns One attribute per column.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT 1::int8 AS id, ARRAY['a'] AS tags");
   * assert.deepEqual(stmt.getAttributes().map((a) => `${a.name} ${a.type.name} ${a.type.kind}`), [
   *   "id int8 scalar",
   *   "tags _text array",
   * ]);
   * ```
   */
  getAttributes(): readonly Attribute[] {
    this.#owner.check("PreparedStatement.getAttributes");
    return this.#attributes;
  }

  /**
   * The command status tag of the last run (`""` before the first).
   *
   * @returns E.g. `"SELECT 2"` or `"INSERT 0 1"`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT generate_series(1, $1::int)");
   * await stmt.fetch([2]);
   * assert.equal(stmt.getStatusMsg(), "SELECT 2");
   * ```
   */
  getStatusMsg(): string {
    this.#owner.check("PreparedStatement.getStatusMsg");
    return this.#status;
  }

  /**
   * Runs the statement and resolves to all its rows.
   *
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal.
   * @returns The rows.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT generate_series(1, $1::int) AS n");
   * assert.deepEqual(await stmt.fetch([2]), [{ n: 1 }, { n: 2 }]);
   * ```
   */
  fetch<T = Row>(args?: readonly unknown[], opts?: QueryOptions): Promise<T[]> {
    this.#owner.check("PreparedStatement.fetch");
    return this.#run(args, opts, true).then((r) => this.#owner.rows(r) as T[]);
  }

  /**
   * Runs the statement and resolves to its first row, or `null`.
   *
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal.
   * @returns The first row or `null`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT $1::int AS n WHERE $1::int > 0");
   * assert.deepEqual(await stmt.fetchRow([1]), { n: 1 });
   * assert.equal(await stmt.fetchRow([0]), null);
   * ```
   */
  fetchRow<T = Row>(args?: readonly unknown[], opts?: QueryOptions): Promise<T | null> {
    this.#owner.check("PreparedStatement.fetchRow");
    return this.#run(args, opts, true).then((r) => (this.#owner.rows(r)[0] as T | undefined) ?? null);
  }

  /**
   * Runs the statement and resolves to one value of its first row (`null` without a row).
   *
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal, and `column` by index (default 0) or name.
   * @returns The value or `null`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT $1::int AS a, $1::int + 1 AS b");
   * assert.equal(await stmt.fetchVal([1]), 1);
   * assert.equal(await stmt.fetchVal([1], { column: "b" }), 2);
   * ```
   */
  fetchVal<T = unknown>(
    args?: readonly unknown[],
    opts?: QueryOptions & { column?: number | string },
  ): Promise<T | null> {
    this.#owner.check("PreparedStatement.fetchVal");
    return this.#run(args, opts).then((r) => this.#owner.value(r, opts?.column) as T | null);
  }

  /**
   * Runs the statement and resolves to its status tag.
   *
   * @param args Values for the placeholders.
   * @param opts Timeout / abort signal.
   * @returns The command status tag, e.g. `"INSERT 0 1"`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (x int)");
   * const insert = await con.prepare("INSERT INTO t VALUES ($1)");
   * assert.equal(await insert.execute([1]), "INSERT 0 1");
   * ```
   */
  execute(args?: readonly unknown[], opts?: QueryOptions): Promise<string> {
    this.#owner.check("PreparedStatement.execute");
    return this.#run(args, opts).then((r) => r.command);
  }

  /**
   * Runs the statement once per argument list, pipelined, all or nothing (as
   * `executeMany` on the connection).
   *
   * @param argsList One argument array per run.
   * @param opts Timeout / abort signal for the whole batch.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.execute("CREATE TEMP TABLE t (x int)");
   * const insert = await con.prepare("INSERT INTO t VALUES ($1)");
   * await insert.executeMany([[1], [2], [3]]);
   * assert.equal(await con.fetchVal("SELECT sum(x)::int FROM t"), 6);
   * ```
   */
  executeMany(argsList: readonly (readonly unknown[])[], opts?: QueryOptions): Promise<void> {
    this.#owner.check("PreparedStatement.executeMany");
    return this.#owner.queryMany(this.#sql, argsList, opts).then((results) => {
      const last = results[results.length - 1];
      if (last !== undefined) this.#status = last.command;
    });
  }

  /**
   * A server-side cursor over the statement's rows (inside a transaction);
   * see {@linkcode Cursor}.
   *
   * @param args Values for the placeholders.
   * @param opts `prefetch`: rows per round while iterating (default 50).
   * @returns The cursor (declared at its first use).
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT generate_series(1, $1::int) AS n");
   * const total = await con.transaction(async () => {
   *   let sum = 0;
   *   for await (const row of stmt.cursor<{ n: number }>([100], { prefetch: 10 })) sum += row.n;
   *   return sum;
   * });
   * assert.equal(total, 5050);
   * ```
   */
  cursor<T = Row>(args?: readonly unknown[], opts?: CursorOptions): Cursor<T> {
    this.#owner.check("PreparedStatement.cursor");
    return new Cursor<T>(this.#owner, this.#sql, args, opts);
  }

  /**
   * The server's plan for the statement (`EXPLAIN (FORMAT JSON, VERBOSE)`),
   * parsed. With `analyze` the statement runs, in a transaction (or savepoint)
   * that is rolled back.
   *
   * @param args Values for the placeholders (or the options, for a statement without parameters).
   * @param opts `analyze`, timeout, abort signal.
   * @returns The JSON plan: an array with one object holding `Plan`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const stmt = await con.prepare("SELECT * FROM generate_series(1, $1::int)");
   * const [plan] = await stmt.explain([10], { analyze: true }) as { Plan: Record<string, unknown> }[];
   * assert.equal(plan!.Plan["Node Type"], "Function Scan");
   * assert.equal(plan!.Plan["Actual Rows"], 10);
   * ```
   */
  explain(args?: readonly unknown[] | ExplainOptions, opts?: ExplainOptions): Promise<unknown> {
    this.#owner.check("PreparedStatement.explain");
    if (args !== undefined && !Array.isArray(args) && typeof args === "object" && args !== null) {
      opts = args as ExplainOptions;
      args = undefined;
    }
    return this.#explain(args as readonly unknown[] | undefined, opts);
  }

  async #explain(args: readonly unknown[] | undefined, opts: ExplainOptions | undefined): Promise<unknown> {
    const analyze = opts?.analyze === true;
    const sql = `EXPLAIN (FORMAT JSON, VERBOSE${analyze ? ", ANALYZE" : ""}) ${this.#sql}`;
    const owner = this.#owner;
    const plan = (result: QueryResult): unknown => {
      const value = owner.value(result, 0);
      return typeof value === "string" ? JSON.parse(value) : value;
    };
    if (!analyze) return plan(await owner.query(sql, args, opts));
    const inTransaction = owner.transactionStatus() !== "idle";
    await owner.query(inTransaction ? "SAVEPOINT pgpool_explain" : "BEGIN", undefined);
    try {
      return plan(await owner.query(sql, args, opts));
    } finally {
      if (inTransaction) {
        await owner.query("ROLLBACK TO SAVEPOINT pgpool_explain", undefined);
        await owner.query("RELEASE SAVEPOINT pgpool_explain", undefined);
      } else await owner.query("ROLLBACK", undefined);
    }
  }

  /** A description naming the statement's text. */
  toString(): string {
    return `PreparedStatement(${
      JSON.stringify(this.#sql.length > 60 ? this.#sql.slice(0, 60) + "…" : this.#sql)
    })`;
  }
}

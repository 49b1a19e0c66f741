/**
 * A write ledger for "no lost writes" checks. Every insert gets a unique id and
 * its outcome as the caller saw it is recorded: acknowledged (the promise
 * resolved), failed for sure (an error that proves the statement did not
 * commit), or ambiguous (the outcome cannot be known by the caller, e.g. the
 * connection died mid-statement or a deadline fired while it ran). The table
 * has no unique constraint, so a duplicate insert would show up.
 *
 * `verify()` then reads the table and lists acknowledged writes that are
 * missing, ids present more than once, and rows whose insert failed with a
 * non-ambiguous error.
 *
 * @example
 * ```ts ignore
 * const ledger = await Ledger.create(admin, "ledger_demo");
 * await ledger.insert((sql, args) => pool.execute(sql, args));
 * const v = await ledger.verify(admin);
 * assert.deepEqual(v.lost, []);
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { PoolError } from "../../mod.ts";

/** Something that can run a statement and return rows (a `Connection`, a `Pool`, ...). */
export interface SqlRunner {
  execute(sql: string, args?: readonly unknown[]): Promise<string>;
  fetch<T = Record<string, unknown>>(sql: string, args?: readonly unknown[]): Promise<T[]>;
}

/** How one insert ended, as its caller saw it. */
export type WriteOutcome = "pending" | "acked" | "failed" | "ambiguous";

/** The result of {@linkcode Ledger.verify}. */
export interface LedgerReport {
  /** Inserts attempted. */
  attempted: number;
  /** Inserts whose promise resolved. */
  acked: number;
  /** Inserts that failed with an error proving nothing was written. */
  failed: number;
  /** Inserts whose outcome the caller cannot know. */
  ambiguous: number;
  /** Ambiguous inserts that did commit. */
  ambiguousCommitted: number;
  /** Acknowledged ids missing from the table. */
  lost: number[];
  /** Ids present more than once. */
  duplicates: number[];
  /** Ids present although their insert failed non-ambiguously, with the error code seen. */
  phantoms: { id: number; code: string }[];
  /** Ids still pending (the caller never settled): must be empty. */
  pending: number[];
  /** Error codes seen, by classification. */
  codes: { failed: Record<string, number>; ambiguous: Record<string, number> };
}

/** The error itself, or its parts when `await using` wrapped it in a SuppressedError. */
export function errorParts(e: unknown): unknown[] {
  if (e instanceof Error && e.name === "SuppressedError") {
    const s = e as Error & { error: unknown; suppressed: unknown };
    return [...errorParts(s.error), ...errorParts(s.suppressed)];
  }
  return [e];
}

/** A short code for any error: a PoolError's `code`, else `name`. */
export function codeOf(e: unknown): string {
  const first = errorParts(e)[0];
  if (first instanceof PoolError) return first.code;
  if (first instanceof Error) {
    return first.name === "Error" ? `Error:${first.message.slice(0, 40)}` : first.name;
  }
  return `thrown:${String(first)}`;
}

/**
 * Codes that prove the statement was never committed: the error happened
 * before the statement was sent (no connection, closed pool or connection), or
 * the server itself rejected or aborted the statement (`57P01` and friends end
 * the session while the statement runs, which aborts its transaction).
 */
const NOT_WRITTEN = new Set([
  "ACQUIRE_TIMEOUT",
  "CONNECT_TIMEOUT",
  "POOL_CLOSED",
  "POOL_CLOSING",
  "POOL_NOT_INITIALIZED",
  "POOL_INITIALIZING",
  "CONNECTION_RELEASED",
  "CONNECTION_CLOSED",
  "ECONNREFUSED",
  "SESSION_ATTRS_MISMATCH",
  "INVALID_ARGUMENT",
  "57014", // query_canceled: the statement was rolled back
  "57P01", // admin_shutdown / pg_terminate_backend
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (during connect)
  "53300", // too_many_connections (during connect)
  "25006", // read_only_sql_transaction
  "28P01",
  "28000",
]);

/**
 * Whether an error proves the insert did not commit. Errors of another class
 * (an abort reason) or a network loss, a query deadline or a release failure are
 * ambiguous: the statement may have committed.
 */
export function provesNotWritten(e: unknown): boolean {
  const parts = errorParts(e);
  const first = parts[0];
  if (!(first instanceof PoolError)) return false;
  return NOT_WRITTEN.has(first.code);
}

/** Records inserts with unique ids and checks the table against what callers saw. */
export class Ledger {
  readonly table: string;
  #next = 1;
  #outcomes = new Map<number, { outcome: WriteOutcome; code?: string }>();

  private constructor(table: string) {
    this.table = table;
  }

  /** Creates (or recreates) the ledger table through `runner`. */
  static async create(runner: SqlRunner, table: string): Promise<Ledger> {
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) {
      throw new Error("Ledger table names are plain lower-case identifiers");
    }
    await runner.execute(`DROP TABLE IF EXISTS ${table}`);
    await runner.execute(`CREATE TABLE ${table} (id bigint NOT NULL, note text)`);
    return new Ledger(table);
  }

  /** The SQL of one insert (`$1` = id, `$2` = note). */
  get insertSql(): string {
    return `INSERT INTO ${this.table} (id, note) VALUES ($1, $2)`;
  }

  /**
   * Inserts one row through `run` (which gets the SQL and its arguments) and
   * records how it ended. Never rejects; returns the outcome.
   */
  async insert(
    run: (sql: string, args: unknown[]) => Promise<unknown>,
    note = "",
  ): Promise<WriteOutcome> {
    const id = this.#next++;
    const entry: { outcome: WriteOutcome; code?: string } = { outcome: "pending" };
    this.#outcomes.set(id, entry);
    try {
      await run(this.insertSql, [id, note]);
      entry.outcome = "acked";
    } catch (e) {
      entry.code = codeOf(e);
      entry.outcome = provesNotWritten(e) ? "failed" : "ambiguous";
    }
    return entry.outcome;
  }

  /** Like {@linkcode insert}, but rethrows the insert's error after recording it. */
  async write(run: (sql: string, args: unknown[]) => Promise<unknown>, note = ""): Promise<void> {
    let error: unknown;
    const outcome = await this.insert(async (sql, args) => {
      try {
        return await run(sql, args);
      } catch (e) {
        error = e;
        throw e;
      }
    }, note);
    if (outcome !== "acked") throw error;
  }

  /** How many inserts ended each way so far. */
  counts(): Record<WriteOutcome, number> {
    const c: Record<WriteOutcome, number> = { pending: 0, acked: 0, failed: 0, ambiguous: 0 };
    for (const { outcome } of this.#outcomes.values()) c[outcome]++;
    return c;
  }

  /** Reads the table through `runner` and compares it with the recorded outcomes. */
  async verify(runner: SqlRunner): Promise<LedgerReport> {
    const rows = await runner.fetch<{ id: string | number | bigint; n: string | number | bigint }>(
      `SELECT id, count(*) AS n FROM ${this.table} GROUP BY id`,
    );
    const present = new Map<number, number>();
    for (const r of rows) present.set(Number(r.id), Number(r.n));
    // The rows are dropped as soon as they are counted: a soak measures the pool's heap around a
    // verify, and JavaScriptCore's conservative stack scan can keep a stale pointer to this array.
    rows.length = 0;
    const report: LedgerReport = {
      attempted: this.#outcomes.size,
      acked: 0,
      failed: 0,
      ambiguous: 0,
      ambiguousCommitted: 0,
      lost: [],
      duplicates: [],
      phantoms: [],
      pending: [],
      codes: { failed: {}, ambiguous: {} },
    };
    for (const [id, n] of present) {
      if (n > 1) report.duplicates.push(id);
      if (!this.#outcomes.has(id)) report.phantoms.push({ id, code: "never attempted" });
    }
    for (const [id, { outcome, code }] of this.#outcomes) {
      const n = present.get(id) ?? 0;
      if (outcome === "pending") report.pending.push(id);
      else if (outcome === "acked") {
        report.acked++;
        if (n === 0) report.lost.push(id);
      } else if (outcome === "failed") {
        report.failed++;
        report.codes.failed[code!] = (report.codes.failed[code!] ?? 0) + 1;
        if (n > 0) report.phantoms.push({ id, code: code! });
      } else {
        report.ambiguous++;
        report.codes.ambiguous[code!] = (report.codes.ambiguous[code!] ?? 0) + 1;
        if (n > 0) report.ambiguousCommitted++;
      }
    }
    present.clear();
    return report;
  }

  /** Forgets every recorded outcome (after the last verify), so a heap measure sees none of them. */
  forget(): void {
    this.#outcomes.clear();
  }
}

/** One line summing up a report, for test output. */
export function describeReport(r: LedgerReport): string {
  const codes = (m: Record<string, number>): string =>
    Object.entries(m).map(([k, v]) => `${k}×${v}`).join(" ") || "-";
  return `attempted ${r.attempted}, acked ${r.acked}, failed ${r.failed} (${codes(r.codes.failed)}), ` +
    `ambiguous ${r.ambiguous} (${codes(r.codes.ambiguous)}; ${r.ambiguousCommitted} committed), ` +
    `lost ${r.lost.length}, duplicates ${r.duplicates.length}, phantoms ${r.phantoms.length}, ` +
    `pending ${r.pending.length}`;
}

/**
 * Fails unless the report is clean: every write settled, no acknowledged write
 * missing, none present twice, and none present whose insert failed for sure.
 * `context` (a scenario, a seed) goes into the failure message.
 */
export function assertLedgerClean(report: LedgerReport, context = ""): void {
  const where = context === "" ? "" : ` (${context})`;
  assert.deepEqual(report.pending, [], `every write settled${where}`);
  assert.deepEqual(report.lost, [], `no acknowledged write was lost${where}`);
  assert.deepEqual(report.duplicates, [], `no write landed twice${where}`);
  assert.deepEqual(report.phantoms, [], `no write that failed for sure is in the table${where}`);
}

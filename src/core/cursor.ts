/**
 * Server-side cursors: `con.cursor(sql, args, { prefetch })`. A cursor is
 * `DECLARE … NO SCROLL CURSOR` inside the caller's transaction, read with
 * `FETCH FORWARD n` (and skipped with `MOVE FORWARD n`), so only one batch of
 * rows is in memory at a time, whatever the size of the result. It works the
 * same on every driver (plain SQL through the driver contract).
 *
 * @module
 */

import type { QueryOptions, QueryResult, Row, StatementDescription, TransactionStatus } from "./driver.ts";
import { InterfaceError } from "./errors.ts";
import { quoteIdentifier } from "./sql_text.ts";

/** Rows fetched per round while a cursor is iterated, unless `prefetch` says otherwise (asyncpg's default). */
export const DEFAULT_PREFETCH = 50;

/**
 * Options of `cursor()`. `timeout` and `signal` bound each round on its own: the `DECLARE` and
 * every `FETCH` / `MOVE` / `CLOSE` (a cursor may be read slowly over a long time).
 */
export interface CursorOptions extends QueryOptions {
  /** Rows fetched per round while iterating with `for await` (default 50). */
  prefetch?: number;
}

/**
 * What a prepared statement or a cursor needs of its connection. A connection
 * makes one per checkout: once the checkout is over (released, or the session
 * reset), `check` throws `CONNECTION_RELEASED`.
 */
export interface StatementOwner {
  /** Throws `CONNECTION_RELEASED` when the checkout that made the object is over; `what` names the method. */
  check(what: string): void;
  /** Runs one statement (arguments checked as `execute` checks them). */
  query(sql: string, args: readonly unknown[] | undefined, opts?: QueryOptions): Promise<QueryResult>;
  /**
   * Runs one statement whose rows go to the caller: read them with `rows()` (with a row
   * factory on the connection, the driver returns arrays for the factory to build from).
   */
  rowQuery(sql: string, args: readonly unknown[] | undefined, opts?: QueryOptions): Promise<QueryResult>;
  /** The rows of a `rowQuery()` result, as the connection's row factory builds them (plain objects without one). */
  rows(result: QueryResult): unknown[];
  /** Runs one statement per argument list, all or nothing (as `executeMany`). */
  queryMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    opts?: QueryOptions,
  ): Promise<QueryResult[]>;
  /** Describes a statement; rejects with `UNSUPPORTED` when the driver cannot. */
  describe(sql: string, opts?: QueryOptions): Promise<StatementDescription>;
  /** The transaction status from the server's last answer. */
  transactionStatus(): TransactionStatus;
  /** One value of a result's first row (as `fetchVal` picks it). */
  value(result: QueryResult, column: number | string | undefined): unknown;
}

type CursorState =
  | { kind: "unopened" }
  | { kind: "open"; declared: Promise<unknown> }
  | { kind: "closed" };

let nextCursor = 0;

/** Checks a row count: a positive safe integer. */
function countOf(n: unknown, method: string): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      `Cannot call Cursor.${method}() as the row count must be a positive integer`,
    );
  }
  return n;
}

/** The error of a cursor used outside a transaction. */
export function noTransaction(): InterfaceError {
  return new InterfaceError(
    "NO_TRANSACTION",
    "Cannot open a cursor outside a transaction as PostgreSQL keeps a cursor only until its " +
      "transaction ends; use it inside transaction()",
  );
}

/**
 * A server-side cursor over a query's rows, read in batches. Made by
 * `con.cursor()` (or `stmt.cursor()`) inside a transaction; it is declared on
 * the server at its first use and lives until it is closed, its transaction
 * ends or its connection is released (then every method throws
 * `CONNECTION_RELEASED`). Iterating it with `for await` fetches `prefetch`
 * rows per round and closes it at the end (or at `break`).
 *
 * @example Iterate a large result with flat memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@x/pgpool";
 * await using con = await connect();
 * const sum = await con.transaction(async (tx) => {
 *   let total = 0;
 *   const cursor = tx.cursor<{ n: number }>("SELECT n FROM generate_series(1, $1::int) AS n", [10_000], {
 *     prefetch: 1000,
 *   });
 *   for await (const row of cursor) total += row.n;
 *   return total;
 * });
 * assert.equal(sum, 50_005_000);
 * ```
 *
 * @example Read it as an object
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@x/pgpool";
 * await using con = await connect();
 * await con.transaction(async (tx) => {
 *   await using cursor = tx.cursor("SELECT n FROM generate_series(1, 10) AS n");
 *   assert.deepEqual(await cursor.fetch(2), [{ n: 1 }, { n: 2 }]);
 *   assert.equal(await cursor.forward(5), 5); // skips 3..7
 *   assert.deepEqual(await cursor.fetchRow(), { n: 8 });
 *   assert.equal((await cursor.fetch(100)).length, 2);
 *   assert.equal(await cursor.fetchRow(), null);
 * });
 * ```
 */
export class Cursor<T = Row> implements AsyncIterable<T> {
  readonly #owner: StatementOwner;
  readonly #sql: string;
  readonly #args: readonly unknown[] | undefined;
  readonly #prefetch: number;
  readonly #bounds: QueryOptions | undefined;
  readonly #name: string;
  #state: CursorState = { kind: "unopened" };

  /** Not for direct use: `cursor()` on a connection or a prepared statement makes these. */
  constructor(
    owner: StatementOwner,
    sql: string,
    args: readonly unknown[] | undefined,
    opts: CursorOptions | undefined,
  ) {
    if (typeof sql !== "string") {
      throw new InterfaceError("INVALID_ARGUMENT", `The SQL text must be a string: got ${typeof sql}`);
    }
    if (args !== undefined && !Array.isArray(args)) {
      throw new InterfaceError("INVALID_ARGUMENT", "Query arguments must be an array");
    }
    const prefetch = opts?.prefetch ?? DEFAULT_PREFETCH;
    countOf(prefetch, "prefetch");
    this.#owner = owner;
    this.#sql = sql;
    this.#args = args;
    this.#prefetch = prefetch;
    this.#bounds = opts?.timeout === undefined && opts?.signal === undefined
      ? undefined
      : { timeout: opts.timeout, signal: opts.signal };
    this.#name = `pgpool_cursor_${nextCursor++}`;
  }

  #to(next: CursorState): void {
    this.#state = next;
  }

  /** Declares the cursor at its first use; rejects with `NO_TRANSACTION` (nothing sent) outside a transaction. */
  #declared(): Promise<unknown> {
    const s = this.#state;
    if (s.kind === "open") return s.declared;
    if (s.kind === "closed") {
      return Promise.reject(
        new InterfaceError("CURSOR_CLOSED", "Cannot read the cursor as it was closed"),
      );
    }
    if (this.#owner.transactionStatus() === "idle") return Promise.reject(noTransaction());
    const declared = this.#owner.query(
      `DECLARE ${quoteIdentifier(this.#name)} NO SCROLL CURSOR FOR ${this.#sql}`,
      this.#args,
      this.#bounds,
    );
    this.#to({ kind: "open", declared });
    return declared;
  }

  async #command(sql: string, rows = false): Promise<QueryResult> {
    await this.#declared();
    const owner = this.#owner;
    return await (rows
      ? owner.rowQuery(sql, undefined, this.#bounds)
      : owner.query(sql, undefined, this.#bounds));
  }

  /**
   * Fetches the next `n` rows (fewer at the end; none once exhausted).
   *
   * @param n How many rows (a positive integer).
   * @returns The rows.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.transaction(async (tx) => {
   *   const cursor = tx.cursor("SELECT n FROM generate_series(1, 3) AS n");
   *   assert.deepEqual(await cursor.fetch(2), [{ n: 1 }, { n: 2 }]);
   *   assert.deepEqual(await cursor.fetch(2), [{ n: 3 }]);
   * });
   * ```
   */
  fetch(n: number): Promise<T[]> {
    this.#owner.check("Cursor.fetch");
    const count = countOf(n, "fetch");
    return this.#command(`FETCH FORWARD ${count} FROM ${quoteIdentifier(this.#name)}`, true).then((r) =>
      this.#owner.rows(r) as T[]
    );
  }

  /**
   * Fetches the next row, or `null` once exhausted.
   *
   * @returns The row or `null`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.transaction(async (tx) => {
   *   const cursor = tx.cursor("SELECT 1 AS a");
   *   assert.deepEqual(await cursor.fetchRow(), { a: 1 });
   *   assert.equal(await cursor.fetchRow(), null);
   * });
   * ```
   */
  fetchRow(): Promise<T | null> {
    this.#owner.check("Cursor.fetchRow");
    return this.#command(`FETCH FORWARD 1 FROM ${quoteIdentifier(this.#name)}`, true).then((r) =>
      (this.#owner.rows(r)[0] as T | undefined) ?? null
    );
  }

  /**
   * Skips the next `n` rows without fetching them.
   *
   * @param n How many rows (a positive integer).
   * @returns How many rows were skipped (fewer than `n` at the end).
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.transaction(async (tx) => {
   *   const cursor = tx.cursor("SELECT n FROM generate_series(1, 5) AS n");
   *   assert.equal(await cursor.forward(3), 3);
   *   assert.deepEqual(await cursor.fetchRow(), { n: 4 });
   *   assert.equal(await cursor.forward(10), 1);
   * });
   * ```
   */
  forward(n: number): Promise<number> {
    this.#owner.check("Cursor.forward");
    const count = countOf(n, "forward");
    return this.#command(`MOVE FORWARD ${count} FROM ${quoteIdentifier(this.#name)}`).then((r) =>
      Number(/(\d+)$/.exec(r.command)?.[1] ?? 0)
    );
  }

  /**
   * Closes the cursor on the server (`CLOSE`); later reads reject. Nothing is
   * sent when it was never opened or its transaction is over already.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * await con.transaction(async (tx) => {
   *   const cursor = tx.cursor("SELECT 1 AS a");
   *   await cursor.fetchRow();
   *   await cursor.close();
   *   assert.deepEqual(await tx.fetch("SELECT name FROM pg_cursors"), []);
   * });
   * ```
   */
  close(): Promise<void> {
    this.#owner.check("Cursor.close");
    return this.#close();
  }

  async #close(): Promise<void> {
    const s = this.#state;
    this.#to({ kind: "closed" });
    if (s.kind !== "open") return;
    try {
      await s.declared;
    } catch {
      return; // never declared: nothing to close
    }
    if (this.#owner.transactionStatus() !== "transaction") return;
    await this.#owner.query(`CLOSE ${quoteIdentifier(this.#name)}`, undefined, this.#bounds);
  }

  /**
   * Iterates the rows, fetching `prefetch` per round; closes the cursor when
   * the loop ends (exhausted, `break` or an error).
   *
   * @returns The async iterator.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { connect } from "@x/pgpool";
   * await using con = await connect();
   * const seen: number[] = [];
   * await con.transaction(async (tx) => {
   *   for await (const row of tx.cursor<{ n: number }>("SELECT generate_series(1, 5) AS n", [], { prefetch: 2 })) {
   *     seen.push(row.n);
   *   }
   * });
   * assert.deepEqual(seen, [1, 2, 3, 4, 5]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    this.#owner.check("Cursor[Symbol.asyncIterator]");
    if (this.#state.kind === "unopened" && this.#owner.transactionStatus() === "idle") throw noTransaction();
    return this.#rows();
  }

  async *#rows(): AsyncGenerator<T> {
    const prefetch = this.#prefetch;
    let complete = false;
    try {
      for (;;) {
        const rows = await this.fetch(prefetch);
        for (let i = 0; i < rows.length; i++) yield rows[i]!;
        if (rows.length < prefetch) break;
      }
      complete = true;
    } finally {
      // After a release the session is someone else's: nothing more is sent.
      let live = true;
      try {
        this.#owner.check("Cursor.close");
      } catch {
        live = false;
      }
      if (live) {
        if (complete) await this.#close();
        else await this.#close().catch(() => {}); // the loop's own error (or break) is what matters
      }
    }
  }

  /** Closes the cursor (`await using`); a no-op once its connection was released. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#owner.check("Cursor.close");
    } catch {
      return;
    }
    await this.#close();
  }

  /** A description naming the cursor. */
  toString(): string {
    return `Cursor(${this.#name}, ${this.#state.kind})`;
  }
}

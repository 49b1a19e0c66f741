/**
 * A Kysely `DatabaseConnection` over one pool checkout: every statement Kysely
 * sends between acquiring and releasing it runs on that one backend.
 *
 * @module
 */

import type { CompiledQuery, DatabaseConnection, QueryResult } from "kysely";
import { InterfaceError, type PoolConnection } from "../public.ts";
import { affectedRowsOf, resultShapeOf } from "./affected_rows.ts";

/** A Kysely connection bound to one checkout of the pool. */
export class CheckoutConnection implements DatabaseConnection {
  readonly #con: PoolConnection;

  /** @param con The checkout; the driver releases it. */
  constructor(con: PoolConnection) {
    this.#con = con;
  }

  /** The checkout this connection runs on. */
  get checkout(): PoolConnection {
    return this.#con;
  }

  /** Runs one compiled query: its rows, and for INSERT / UPDATE / DELETE / MERGE the affected row count. */
  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    switch (resultShapeOf(query)) {
      case "tag": {
        const tag = await this.#con.execute(query.sql, query.parameters);
        return { rows: [], numAffectedRows: affectedRowsOf(tag) };
      }
      case "returning": {
        const rows = await this.#con.fetch<R>(query.sql, query.parameters);
        return { rows, numAffectedRows: BigInt(rows.length) };
      }
      default:
        return { rows: await this.#con.fetch<R>(query.sql, query.parameters) };
    }
  }

  /**
   * Yields the query's rows in chunks of `chunkSize`. The pool has no cursor
   * yet, so the whole result is fetched first and then handed out chunk by
   * chunk: memory holds every row, as with `execute()`.
   */
  async *streamQuery<R>(
    query: CompiledQuery,
    chunkSize: number = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Cannot stream a query as 'chunkSize' must be a positive integer, not ${String(chunkSize)}`,
      );
    }
    const { rows } = await this.executeQuery<R>(query);
    for (let start = 0; start < rows.length; start += chunkSize) {
      yield { rows: rows.slice(start, start + chunkSize) };
    }
  }
}

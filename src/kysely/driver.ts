/**
 * The Kysely `Driver` over a pgpool pool: one pool checkout per Kysely
 * connection, transactions as plain `BEGIN` / `COMMIT` / `ROLLBACK` on it.
 *
 * @module
 */

import {
  AbortedTransactionError,
  type DatabaseConnection,
  type Driver,
  type TransactionSettings,
} from "kysely";
import { type BasePool, InterfaceError, quoteIdentifier } from "../public.ts";
import { CheckoutConnection } from "./connection.ts";
import type { PgpoolDialectConfig } from "./dialect.ts";

const ISOLATION_LEVELS: ReadonlySet<string> = new Set([
  "read uncommitted",
  "read committed",
  "repeatable read",
  "serializable",
]);
const ACCESS_MODES: ReadonlySet<string> = new Set(["read only", "read write"]);

/** `BEGIN` with the settings' isolation level and access mode. */
function beginSql(settings: TransactionSettings): string {
  let sql = "BEGIN";
  const { isolationLevel, accessMode } = settings;
  if (isolationLevel !== undefined) {
    if (!ISOLATION_LEVELS.has(isolationLevel)) {
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Cannot begin a transaction as PostgreSQL has no '${isolationLevel}' isolation level`,
      );
    }
    sql += ` ISOLATION LEVEL ${isolationLevel.toUpperCase()}`;
  }
  if (accessMode !== undefined) {
    if (!ACCESS_MODES.has(accessMode)) {
      throw new InterfaceError(
        "INVALID_ARGUMENT",
        `Cannot begin a transaction as '${accessMode}' is not an access mode`,
      );
    }
    sql += ` ${accessMode.toUpperCase()}`;
  }
  return sql;
}

function ignore(): void {}

function checkoutOf(connection: DatabaseConnection): CheckoutConnection {
  if (connection instanceof CheckoutConnection) return connection;
  throw new InterfaceError("FOREIGN_CONNECTION", "The connection does not come from this Kysely dialect");
}

/** Where a driver is: before `init()`, running on a pool, or destroyed (its pool closed or closing). */
type DriverState =
  | { readonly status: "new" }
  | { readonly status: "ready"; readonly pool: BasePool }
  | { readonly status: "destroyed"; readonly pool: BasePool | undefined };

/** Kysely's driver for a pgpool pool (built by `PgpoolDialect.createDriver()`). */
export class PgpoolDriver implements Driver {
  readonly #config: PgpoolDialectConfig;
  #state: DriverState = { status: "new" };

  /** @param config The dialect's configuration. */
  constructor(config: PgpoolDialectConfig) {
    this.#config = config;
  }

  #move(next: DriverState): void {
    if (this.#state.status === "destroyed") return; // final
    this.#state = next;
  }

  /** Resolves the configured pool (calls the factory when one was given). */
  async init(): Promise<void> {
    const { pool } = this.#config;
    const resolved = typeof pool === "function" ? await pool() : pool;
    // Destroyed while the factory ran: nobody else will close what it made.
    if (this.#state.status === "destroyed") await resolved.close();
    else this.#move({ status: "ready", pool: resolved });
  }

  /** Checks a connection out of the pool. */
  async acquireConnection(): Promise<DatabaseConnection> {
    const state = this.#state;
    if (state.status !== "ready") {
      throw new InterfaceError(
        state.status === "new" ? "POOL_NOT_INITIALIZED" : "POOL_CLOSED",
        `Cannot acquire a connection as the Kysely driver ${
          state.status === "new" ? "has no pool yet" : "was destroyed"
        }`,
      );
    }
    const { acquireTimeout } = this.#config;
    const con = await state.pool.acquire(
      acquireTimeout === undefined ? undefined : { timeout: acquireTimeout },
    );
    return new CheckoutConnection(con);
  }

  /** `BEGIN` with the requested isolation level and access mode. */
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await checkoutOf(connection).checkout.execute(beginSql(settings));
  }

  /** `COMMIT`; rejects with Kysely's `AbortedTransactionError` when the server rolled back instead. */
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // After an error the transaction is aborted and COMMIT completes with the tag ROLLBACK.
    const tag = await checkoutOf(connection).checkout.execute("COMMIT");
    if (tag === "ROLLBACK") throw new AbortedTransactionError();
  }

  /** `ROLLBACK`. */
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await checkoutOf(connection).checkout.execute("ROLLBACK");
  }

  /** `SAVEPOINT name` (the name quoted as an identifier). */
  async savepoint(connection: DatabaseConnection, savepointName: string): Promise<void> {
    await checkoutOf(connection).checkout.execute(`SAVEPOINT ${quoteIdentifier(savepointName)}`);
  }

  /** `ROLLBACK TO SAVEPOINT name`. */
  async rollbackToSavepoint(connection: DatabaseConnection, savepointName: string): Promise<void> {
    await checkoutOf(connection).checkout.execute(`ROLLBACK TO SAVEPOINT ${quoteIdentifier(savepointName)}`);
  }

  /** `RELEASE SAVEPOINT name`. */
  async releaseSavepoint(connection: DatabaseConnection, savepointName: string): Promise<void> {
    await checkoutOf(connection).checkout.execute(`RELEASE SAVEPOINT ${quoteIdentifier(savepointName)}`);
  }

  /**
   * Gives the checkout back to the pool (which resets it, rolling back a
   * transaction left open). A failed release never fails the caller: the pool
   * has dropped that connection already, and the statements' outcome stands
   * (a committed write must not look failed to a caller who would retry it).
   */
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const checkout = checkoutOf(connection).checkout;
    const state = this.#state;
    // Also after destroy(): the pool's close() waits for this very release.
    if (state.status !== "new") await state.pool?.release(checkout).catch(ignore);
  }

  /** Closes the pool (`Kysely.destroy()` ends the pool, as Kysely's own dialects do). */
  async destroy(): Promise<void> {
    const state = this.#state;
    const pool = state.status === "new" ? undefined : state.pool;
    this.#move({ status: "destroyed", pool });
    await pool?.close(); // a second close() waits for the first
  }
}

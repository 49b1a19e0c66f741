/**
 * Bun's built-in PostgreSQL client (`Bun.SQL`): tagged-template one-shots
 * and `reserve()`/`release()` for checkouts. Only under Bun.
 *
 * @module
 */

import { type Contender, type ContenderKind, runtime } from "./contender.ts";
import { templateFor } from "./sql_template.ts";

interface BunSqlTag {
  (strings: TemplateStringsArray, ...values: unknown[]): Promise<unknown>;
}
interface BunSqlPool extends BunSqlTag {
  reserve(): Promise<BunSqlTag & { release(): void }>;
  close(options?: { timeout?: number }): Promise<void>;
}
type BunSqlConstructor = new (options: { url: string; max: number }) => BunSqlPool;

/** `new Bun.SQL({ url, max })`, everything else default. */
export const bunSql: ContenderKind = {
  key: "bunsql",
  label: "Bun.sql",
  checkoutApi: "reserve()/release()",
  oneShotApi: "sql``",
  unavailable: () => runtime === "bun" ? undefined : "Bun only",
  open(dsn, size) {
    const SQL = (globalThis as unknown as { Bun: { SQL: BunSqlConstructor } }).Bun.SQL;
    const sql = new SQL({ url: dsn, max: size });
    const contender: Contender = {
      async checkout(fn) {
        const reserved = await sql.reserve();
        try {
          return await fn({ query: (text, args = []) => reserved(templateFor(text), ...args) });
        } finally {
          reserved.release();
        }
      },
      oneShot: (text, args = []) => sql(templateFor(text), ...args),
      close: () => sql.close({ timeout: 5 }),
    };
    return Promise.resolve(contender);
  },
};

/**
 * postgres.js's own pool: tagged-template one-shots (`sql\`...\``) and
 * `reserve()`/`release()` for checkouts, with the library's defaults.
 *
 * @module
 */

import postgres from "postgres";
import type { Contender, ContenderKind } from "./contender.ts";
import { templateFor } from "./sql_template.ts";

/** postgres.js 3.x with `max` set to the pool size, everything else default. */
export const postgresJs: ContenderKind = {
  key: "postgresjs",
  label: "postgres.js",
  checkoutApi: "reserve()/release()",
  oneShotApi: "sql``",
  unavailable: () => undefined,
  open(dsn, size) {
    const sql = postgres(dsn, { max: size, onnotice: () => {} });
    const contender: Contender = {
      async checkout(fn) {
        const reserved = await sql.reserve();
        try {
          return await fn({ query: (text, args = []) => reserved(templateFor(text), ...(args as never[])) });
        } finally {
          reserved.release();
        }
      },
      oneShot: (text, args = []) => sql(templateFor(text), ...(args as never[])),
      close: () => sql.end({ timeout: 5 }),
    };
    return Promise.resolve(contender);
  },
};

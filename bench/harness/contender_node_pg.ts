/**
 * node-postgres (`pg.Pool`): `connect()`/`release()` for checkouts and
 * `pool.query()` for one-shots, with the library's defaults (unnamed
 * statements, so every query is parsed again).
 *
 * @module
 */

import pg from "pg";
import type { Contender, ContenderKind } from "./contender.ts";

/** `new pg.Pool({ connectionString, max })`. */
export const nodePg: ContenderKind = {
  key: "pg",
  label: "pg.Pool",
  checkoutApi: "connect()/release()",
  oneShotApi: "pool.query()",
  unavailable: () => undefined,
  open(dsn, size) {
    const pool = new pg.Pool({ connectionString: dsn, max: size });
    const contender: Contender = {
      async checkout(fn) {
        const client = await pool.connect();
        try {
          return await fn({ query: (text, args) => client.query(text, args as unknown[] | undefined) });
        } finally {
          client.release();
        }
      },
      oneShot: (text, args) => pool.query(text, args as unknown[] | undefined),
      close: () => pool.end(),
    };
    return Promise.resolve(contender);
  },
};

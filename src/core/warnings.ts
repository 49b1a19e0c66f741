/**
 * The pool's warning channel: things worth knowing that are not errors.
 *
 * @module
 */

import type { PoolConnection } from "./pool_connection.ts";

/** Codes of warnings. A code is never reused for another meaning. */
export type WarningCode =
  | "RELEASED_IN_TRANSACTION"
  | "RELEASED_WITH_LISTENERS"
  | "SLOW_CLOSE"
  | "BACKGROUND_CLOSE_FAILED"
  | "RELEASE_FAILED"
  | "LISTEN_GAP"
  | "LISTEN_FAILED"
  | "LISTEN_CALLBACK_FAILED"
  | "CONNECTION_LEAK";

/**
 * One warning, as passed to the `onWarning` option.
 *
 * @example Collect warnings instead of printing them
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, type PoolWarning } from "@x/pgpool";
 * const seen: PoolWarning[] = [];
 * const pool = await createPool({ minSize: 0, maxSize: 1, onWarning: (w) => seen.push(w) });
 * const con = await pool.acquire();
 * await con.execute("BEGIN");
 * await pool.release(con); // the pool rolls the open transaction back, and says so
 * assert.deepEqual(seen.map((w) => w.code), ["RELEASED_IN_TRANSACTION"]);
 * await pool.close();
 * ```
 */
export interface PoolWarning {
  /** A stable code. */
  code: WarningCode;
  /** A sentence-case description. */
  message: string;
  /** The checkout concerned, when there is one (and still reachable). */
  connection?: PoolConnection;
  /**
   * For `CONNECTION_LEAK`: the stack of the `acquire()` call that checked the
   * connection out (captured only while `leakDetectionThreshold` is set).
   */
  stack?: string;
}

/** Receives warnings. */
export type WarningHandler = (warning: PoolWarning) => void;

/**
 * The default handler: `console.warn`.
 *
 * @example Print warnings and count them
 * ```ts
 * import { createPool, type PoolWarning } from "@x/pgpool";
 * import { consoleWarning } from "./warnings.ts";
 * let count = 0;
 * const onWarning = (w: PoolWarning): void => {
 *   count++;
 *   consoleWarning(w);
 * };
 * const pool = await createPool({ minSize: 0, onWarning });
 * await pool.close();
 * ```
 */
export const consoleWarning: WarningHandler = (w: PoolWarning): void => {
  console.warn(`@x/pgpool warning ${w.code}: ${w.message}${w.stack === undefined ? "" : `\n${w.stack}`}`);
};

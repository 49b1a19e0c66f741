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
  | "RELEASE_FAILED";

/**
 * One warning, as passed to the `onWarning` option.
 *
 * @example Collect warnings instead of printing them
 * ```ts
 * import { createPool, type PoolWarning } from "@x/pgpool";
 * const seen: PoolWarning[] = [];
 * const pool = await createPool({ minSize: 0, onWarning: (w) => seen.push(w) });
 * await pool.close();
 * ```
 */
export interface PoolWarning {
  /** A stable code. */
  code: WarningCode;
  /** A sentence-case description. */
  message: string;
  /** The checkout concerned, when there is one. */
  connection?: PoolConnection;
}

/** Receives warnings. */
export type WarningHandler = (warning: PoolWarning) => void;

/** The default handler: `console.warn`. */
export const consoleWarning: WarningHandler = (w: PoolWarning): void => {
  console.warn(`@x/pgpool warning ${w.code}: ${w.message}`);
};

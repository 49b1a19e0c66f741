/**
 * What both drivers read from the server's reported parameters: its version,
 * and the session reset statements it supports.
 *
 * @module
 */

import type { ServerVersion } from "../core/driver.ts";

/**
 * Parses `server_version` (e.g. `"15.4 (Debian 15.4-1)"`, `"9.6.3"`, `"16beta1"`).
 *
 * @example
 * ```ts
 * import { parseServerVersion } from "./server_session.ts";
 * console.log(parseServerVersion("9.6.3").minor); // 6
 * ```
 */
export function parseServerVersion(text: string): ServerVersion {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  return {
    major: m ? Number(m[1]) : 0,
    minor: m && m[2] !== undefined ? Number(m[2]) : 0,
    micro: m && m[3] !== undefined ? Number(m[3]) : 0,
    text,
  };
}

/**
 * The session reset statements the server supports, chosen from its reported
 * parameters like asyncpg does (CockroachDB, Redshift and CrateDB lack some).
 * On PostgreSQL it also undoes `SET ROLE` and `SET SESSION AUTHORIZATION`,
 * which `RESET ALL` leaves alone (so does asyncpg's reset; `DISCARD ALL`
 * undoes them): `RESET SESSION AUTHORIZATION`, which any user may run, returns
 * to the user that logged in and puts `role` back to the session's own default (a
 * `role` sent at connect time or set with `ALTER ROLE … SET role`).
 *
 * @example
 * ```ts
 * import { resetQueryFor } from "./server_session.ts";
 * console.log(resetQueryFor(new Map([["crdb_version", "v23.1"]]))); // "RESET ALL;"
 * ```
 */
export function resetQueryFor(parameters: ReadonlyMap<string, string>): string {
  if (parameters.has("crate_version")) return "";
  if (parameters.has("crdb_version")) return "RESET ALL;";
  if (parameters.has("padb_revision")) return "CLOSE ALL;\nRESET ALL;";
  return "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET SESSION AUTHORIZATION;\nRESET ALL;";
}

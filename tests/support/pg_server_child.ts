/**
 * Run by pg_server_test.ts in a child process (with its own environment, e.g.
 * `PGPOOL_PG_BIN=embedded`): starts the shared test server, prints one JSON line
 * `{ origin, version }` (or `{ error }`) and exits.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { getTestServer } from "./pg_server.ts";

try {
  const server = await getTestServer();
  const sql = postgres(server.dsn, { max: 1, onnotice: () => {} });
  const rows = await sql`SHOW server_version`;
  await sql.end({ timeout: 5 });
  console.log(JSON.stringify({ origin: server.origin, version: rows[0]!.server_version }));
} catch (e) {
  console.log(JSON.stringify({ error: e instanceof Error ? e.message : String(e) }));
}
process.exit(0);

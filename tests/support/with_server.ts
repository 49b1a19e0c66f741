/**
 * Runs a command against the throwaway test server: starts it (or takes
 * `DATABASE_URL`), exports where it is as `DATABASE_URL` and the libpq variables
 * (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGSSLMODE=disable`), runs the
 * command with them, stops the server and exits with the command's status.
 *
 * `deno task test:doc` uses it so that the JSDoc examples (`deno test --doc`)
 * connect to a real server the way a user's code would, from the environment:
 *
 * ```sh
 * deno run -A tests/support/with_server.ts deno test --doc -A mod.ts src/
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import process from "node:process";
import { getTestServer } from "./pg_server.ts";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: with_server.ts <command> [args...]");
  process.exit(2);
}

const server = await getTestServer();
console.error(`with_server: ${server.origin ?? "DATABASE_URL"} on ${server.host}:${server.port}`);
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("PG")) env[k] = v;
Object.assign(env, {
  DATABASE_URL: server.dsn,
  PGHOST: server.host,
  PGPORT: String(server.port),
  PGUSER: server.user,
  PGDATABASE: server.database,
  PGSSLMODE: "disable",
});

const child = spawn(command, args, { stdio: "inherit", env });
const forward = (signal: "SIGINT" | "SIGTERM"): void => {
  process.on(signal, () => child.kill(signal));
};
forward("SIGINT");
forward("SIGTERM");
const code = await new Promise<number>((resolve) => {
  child.on("error", (e: Error) => {
    console.error(`with_server: cannot run ${command}: ${e.message}`);
    resolve(127);
  });
  child.on(
    "close",
    (status: number | null, signal: string | null) => resolve(status ?? (signal ? 128 + 15 : 1)),
  );
});
// process.exit runs the harness's exit handler, which stops the throwaway server.
process.exit(code);

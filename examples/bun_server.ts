/**
 * A Bun HTTP route backed by a pool: the pool is created once at module level
 * and every request borrows a connection for one query.
 *
 * Run: `DATABASE_URL=postgres://... bun run examples/bun_server.ts`,
 * then `curl 'http://127.0.0.1:8000/?id=7'`.
 *
 * @module
 */

import process from "node:process";
import { createPool } from "../mod.ts";

// `deno check` type-checks this file too and has no Bun types: declare the little used here.
declare const Bun: {
  serve(options: {
    hostname?: string;
    port?: number;
    routes: Record<string, (req: Request) => Response | Promise<Response>>;
    fetch(req: Request): Response | Promise<Response>;
  }): { readonly port: number; stop(closeActiveConnections?: boolean): Promise<void> };
};

/** The process-wide pool; created before the first request is served. */
export const pool = await createPool(
  process.env.DATABASE_URL ?? "postgres://postgres@localhost:5432/postgres",
  { minSize: 2, maxSize: 10 },
);

/** Answers `GET /?id=N` with one row read through a pooled connection. */
export async function handler(req: Request): Promise<Response> {
  const id = Number(new URL(req.url).searchParams.get("id") ?? "0");
  if (!Number.isSafeInteger(id)) return Response.json({ error: "id must be an integer" }, { status: 400 });
  try {
    await using con = await pool.acquire({ timeout: 10 });
    const row = await con.fetchRow<{ id: number; pid: number; at: Date }>(
      "SELECT $1::int AS id, pg_backend_pid() AS pid, now() AS at",
      [id],
    );
    return Response.json(row);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return Response.json({ error: String(code ?? "INTERNAL") }, { status: 503 });
  }
}

/** The HTTP server (`PORT`, default 8000; `0` picks a free port). */
export const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
  routes: { "/": handler },
  fetch: () => new Response("Not found", { status: 404 }),
});
console.log(`listening on http://127.0.0.1:${server.port}/`);

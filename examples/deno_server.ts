/**
 * A Deno HTTP handler backed by a pool, written as it would be deployed
 * (Deno Deploy or `deno serve`): the pool is created once at module level and
 * every request borrows a connection for one query.
 *
 * Run: `DATABASE_URL=postgres://... deno run -A examples/deno_server.ts`,
 * then `curl 'http://127.0.0.1:8000/?id=7'`.
 *
 * @module
 */

import { createPool } from "../mod.ts";

/** The process-wide pool; created before the first request is served. */
export const pool = await createPool(
  Deno.env.get("DATABASE_URL") ?? "postgres://postgres@localhost:5432/postgres",
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
export const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("PORT") ?? 8000),
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}/`),
}, handler);

/**
 * S4 HTTP: an HTTP server in this process (`Deno.serve` / `Bun.serve`) whose
 * handler checks out a connection (`await using con = await pool.acquire()`
 * for ours), runs one `fetchRow` and answers JSON; wrk drives it with 100
 * connections. One server serves every variant: a repetition switches the
 * handler, then runs wrk.
 *
 * The libraries whose one-shots may share a connection also serve the same
 * request with their one-shot API instead of a checkout, as `<key>-direct`
 * rows: `pool.fetchRow()` for ours (pipelined; with and without the reset),
 * `sql\`...\`` on the shared pool for postgres.js and Bun.sql. The key
 * suffix predates ours' row: `postgresjs-direct` and `bunsql-direct` keep
 * their meaning across results files.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { type Contender, firstRow, oneShotRow, runLoop, runtime } from "./contender.ts";
import type { Sample } from "./stats.ts";
import type { Scenario, Variant } from "./variant.ts";

const CONNECTIONS = 100;
const SIZE = 10;
const SQL = "SELECT $1::int AS id, now() AS at";

type Handler = (n: number) => Promise<unknown>;

let handler: Handler = () => Promise.resolve(null);
let port = 0;
let stopServer: (() => Promise<void>) | undefined;

async function startServer(): Promise<void> {
  let n = 0;
  const respond = async (): Promise<Response> => {
    try {
      return Response.json(await handler(++n));
    } catch (e) {
      return new Response(String(e), { status: 500 });
    }
  };
  if (runtime === "deno") {
    const D = (globalThis as unknown as {
      Deno: {
        serve(
          o: { port: number; hostname: string; onListen(a: { port: number }): void },
          h: () => Promise<Response>,
        ): { shutdown(): Promise<void>; finished: Promise<void> };
      };
    }).Deno;
    const listening = Promise.withResolvers<void>();
    const server = D.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen(a) {
        port = a.port;
        listening.resolve();
      },
    }, respond);
    await listening.promise;
    stopServer = () => server.shutdown();
  } else {
    const B = (globalThis as unknown as {
      Bun: {
        serve(o: { port: number; hostname: string; fetch: () => Promise<Response> }): {
          port: number;
          stop(force?: boolean): Promise<void> | void;
        };
      };
    }).Bun;
    const server = B.serve({ port: 0, hostname: "127.0.0.1", fetch: respond });
    port = server.port;
    stopServer = async () => {
      await server.stop(true);
    };
  }
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  return unit === "us" ? v / 1000 : unit === "ms" ? v : unit === "s" ? v * 1000 : v * 60_000;
}

/** Runs wrk for whole seconds (at least 1) against the current handler. */
async function wrk(ms: number): Promise<Sample> {
  const seconds = Math.max(1, Math.round(ms / 1000));
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn("wrk", [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      "--latency",
      `http://127.0.0.1:${port}/`,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d) => (text += d));
    child.stderr.on("data", (d) => (text += d));
    child.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk failed: ${text}`))));
  });
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(out);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const total = Number(/(\d+) requests in/.exec(out)?.[1]);
  const elapsed = /requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  const bad = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = bad + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return {
    ops: total,
    seconds: elapsed ? toMs(elapsed[1]!, elapsed[2]!) / 1000 : seconds,
    p50: pct("50"),
    p99: pct("99"),
    extra: { errors },
  };
}

/** Why S4 cannot run here (no wrk), or undefined. */
export function wrkUnavailable(): string | undefined {
  return spawnSync("sh", ["-c", "command -v wrk"]).status === 0 ? undefined : "wrk is not installed";
}

/** Contenders that also get a one-shot handler row (their one-shots share connections). */
const ONE_SHOT_HANDLERS: ReadonlySet<string> = new Set(["ours", "ours-noreset", "postgresjs", "bunsql"]);

function httpVariant(
  key: string,
  label: string,
  api: string,
  open: () => Promise<Contender>,
  use: (c: Contender) => Handler,
): Variant {
  let contender: Contender | undefined;
  return {
    key,
    label,
    api,
    async open() {
      contender = await open();
    },
    async warm(ms) {
      const h = use(contender!);
      await runLoop(CONNECTIONS, ms, (i) => h(i));
    },
    run(ms) {
      handler = use(contender!);
      return wrk(ms);
    },
    async close() {
      await contender?.close();
      contender = undefined;
    },
  };
}

/** The S4 scenario. */
export const s4Http: Scenario = {
  id: "S4",
  title: "HTTP",
  description:
    `${runtime === "bun" ? "Bun.serve" : "Deno.serve"}, pool size ${SIZE}: checkout + one fetchRow ` +
    `per request (\`-direct\` rows: one one-shot instead); wrk -t1 -c${CONNECTIONS}`,
  durationMs: (quick) => (quick ? 1000 : 10_000),
  reps: (quick) => (quick ? 2 : undefined),
  warmMs: (quick) => (quick ? 150 : 1000),
  async setup() {
    await startServer();
  },
  variants(ctx) {
    const rows: Variant[] = [];
    for (const kind of ctx.kinds) {
      rows.push(httpVariant(
        kind.key,
        kind.label,
        kind.checkoutApi,
        () => kind.open(ctx.dsn, SIZE),
        (c) => (n) => c.checkout(async (q) => firstRow(await q.query(SQL, [n]))),
      ));
      if (ONE_SHOT_HANDLERS.has(kind.key)) {
        rows.push(httpVariant(
          `${kind.key}-direct`,
          kind.label,
          `${kind.oneShotRowApi ?? kind.oneShotApi} directly`,
          () => kind.open(ctx.dsn, SIZE),
          (c) => (n) => oneShotRow(c, SQL, [n]),
        ));
      }
    }
    return rows;
  },
  async teardown() {
    await stopServer?.();
    stopServer = undefined;
  },
};

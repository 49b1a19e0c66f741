/**
 * S4 HTTP: an HTTP server in this process (`Deno.serve` / `Bun.serve`) whose
 * handler checks out a connection (`await using con = await pool.acquire()`
 * for ours), runs one `fetchRow` and answers JSON — and, as `<key>-direct`
 * rows, the same handler on each library's one-shot API (`pool.fetchRow()`,
 * `sql\`\``); wrk drives it with 100 connections. One server serves every variant: a repetition switches the
 * handler, then runs wrk.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { type Contender, runLoop, runtime } from "./contender.ts";
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

/** The first row of whatever a library returned (an array, pg's result, or a row already). */
function firstRow(result: unknown): unknown {
  if (Array.isArray(result)) return result[0];
  if (result !== null && typeof result === "object" && "rows" in result) {
    return (result as { rows: unknown[] }).rows[0];
  }
  return result;
}

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
    `per request; wrk -t1 -c${CONNECTIONS}`,
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
      // Every contender also serves the request with its one-shot API (ours: pipelined one-shots).
      {
        rows.push(httpVariant(
          `${kind.key}-direct`,
          kind.label,
          `${kind.oneShotApi} directly`,
          () => kind.open(ctx.dsn, SIZE),
          (c) => async (n) => firstRow(await c.oneShot(SQL, [n])),
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

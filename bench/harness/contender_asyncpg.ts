/**
 * asyncpg, the design's origin, in a Python subprocess
 * (`bench/harness/asyncpg_runner.py`) driven over stdin/stdout. One process
 * serves the whole run; each scenario opens its own pool in it.
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Sample } from "./stats.ts";
import type { Context, Variant } from "./variant.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./asyncpg_runner.py", import.meta.url));

/** Why asyncpg cannot run here (not installed), or undefined. */
export function asyncpgUnavailable(): string | undefined {
  const r = spawnSync(PYTHON, ["-c", "import asyncpg; print(asyncpg.__version__)"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "python3-asyncpg is not installed";
}

/** The asyncpg version, e.g. "0.27.0", or undefined. */
export function asyncpgVersion(): string | undefined {
  const r = spawnSync(PYTHON, ["-c", "import asyncpg; print(asyncpg.__version__)"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

let child: ChildProcess | undefined;
let lines: Interface | undefined;
const pending: ((line: string) => void)[] = [];

function ensureProcess(): void {
  if (child !== undefined) return;
  child = spawn(PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "inherit"] });
  lines = createInterface({ input: child.stdout! });
  lines.on("line", (line) => pending.shift()?.(line));
  child.on("exit", () => {
    child = undefined;
    for (const p of pending.splice(0)) p(JSON.stringify({ error: "asyncpg runner exited" }));
  });
}

async function ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
  ensureProcess();
  const answer = new Promise<string>((resolve) => pending.push(resolve));
  child!.stdin!.write(JSON.stringify(cmd) + "\n");
  const parsed = JSON.parse(await answer) as Record<string, unknown>;
  if (typeof parsed.error === "string") throw new Error(`asyncpg: ${parsed.error}`);
  return parsed;
}

/** Stops the Python subprocess (at the end of the run). */
export function stopAsyncpg(): void {
  child?.stdin?.end();
  lines?.close();
}

/** What the Python side runs per operation. */
export type AsyncpgKind = "checkout" | "one_shot" | "transaction" | "waiters";

let nextId = 0;

/** An asyncpg variant: a pool of `size` in the subprocess, `tasks` concurrent loops of `kind`. */
export function asyncpgVariant(
  ctx: Context,
  api: string,
  size: number,
  kind: AsyncpgKind,
  tasks: number,
  statements: string[],
): Variant {
  const id = `pool${nextId++}`;
  const run = async (ms: number): Promise<Sample> => {
    const r = await ask({ op: "run", id, kind, tasks, seconds: ms / 1000, statements });
    const num = (v: unknown): number => (typeof v === "number" ? v : Number.NaN);
    const extra = r.extra as Record<string, unknown> | undefined;
    return {
      ops: num(r.ops),
      seconds: num(r.seconds),
      p50: num(r.p50),
      p99: num(r.p99),
      extra: extra && Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, num(v)])),
    };
  };
  return {
    key: "asyncpg",
    label: "asyncpg (Python)",
    api,
    external: true,
    async open() {
      await ask({ op: "open", id, dsn: ctx.dsn, size });
    },
    async warm(ms) {
      await run(ms);
    },
    run,
    async close() {
      await ask({ op: "close", id });
    },
  };
}

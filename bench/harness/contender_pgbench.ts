/**
 * pgbench, PostgreSQL's own C load generator, as the server's limit for
 * clients that do not pipeline: `-c <clients> -M prepared` with the same
 * statements as the scenario. Latencies come from its per-transaction log.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { LatencyLog, sampleFrom } from "./stats.ts";
import type { Context, Variant } from "./variant.ts";

function binary(): string | undefined {
  for (const candidate of ["/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  const r = spawnSync("sh", ["-c", "command -v pgbench"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Why pgbench cannot run here, or undefined. */
export function pgbenchUnavailable(): string | undefined {
  return binary() === undefined ? "pgbench is not installed" : undefined;
}

/**
 * A pgbench variant running `script` (pgbench script syntax) with `clients`
 * connections and 2 threads for whole seconds; a repetition shorter than a
 * second (`--quick`) runs a fixed 300 transactions per client instead.
 */
export function pgbenchVariant(
  ctx: Context,
  api: string,
  clients: number,
  script: string,
  key = "pgbench",
): Variant {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgpool-pgbench-"));
  const scriptFile = path.join(dir, "script.sql");
  fs.writeFileSync(scriptFile, script);
  const run = async (ms: number): Promise<ReturnType<typeof sampleFrom>> => {
    for (const f of fs.readdirSync(dir)) if (f.startsWith("log")) fs.rmSync(path.join(dir, f));
    const seconds = Math.round(ms / 1000);
    const length = seconds >= 1 ? ["-T", String(seconds)] : ["-t", "300"];
    const connection = ["-h", ctx.host, "-p", String(ctx.port), "-U", ctx.user, ctx.database];
    const log = ["-l", `--log-prefix=${path.join(dir, "log")}`];
    const args = [
      "-n",
      "-M",
      "prepared",
      "-c",
      String(clients),
      "-j",
      "2",
      ...length,
      "-f",
      scriptFile,
      ...log,
      ...connection,
    ];
    const out = await new Promise<string>((resolve, reject) => {
      const env = ctx.password === undefined ? process.env : { ...process.env, PGPASSWORD: ctx.password };
      const child = spawn(binary()!, args, { stdio: ["ignore", "pipe", "pipe"], env });
      let text = "";
      child.stdout.on("data", (d) => (text += d));
      child.stderr.on("data", (d) => (text += d));
      child.on(
        "close",
        (code) => (code === 0 ? resolve(text) : reject(new Error(`pgbench failed: ${text}`))),
      );
    });
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1]);
    const latencies = new LatencyLog();
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith("log")) continue;
      for (const line of fs.readFileSync(path.join(dir, f), "utf8").split("\n")) {
        const us = Number(line.split(" ")[2]);
        if (line !== "" && !Number.isNaN(us)) latencies.push(us / 1000);
      }
    }
    const elapsed = seconds >= 1 ? seconds : (clients * 300) / tps;
    return sampleFrom(Math.round(tps * elapsed), elapsed, latencies);
  };
  return {
    key,
    label: "pgbench (C)",
    api,
    external: true,
    open: () => Promise.resolve(),
    async warm() {},
    run,
    close() {
      fs.rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/**
 * `bun test` preload (bunfig.toml). Two things plain `bun test` cannot do by itself:
 *
 * - on a fresh clone, where nothing has installed the npm dependencies yet, it runs
 *   `bun install` (this process already resolved imports against the missing
 *   node_modules, so the tests must run in a new process);
 * - it gives every test the project's 60 s timeout: Bun ignores `timeout` in
 *   bunfig.toml (oven-sh/bun#7789) and a throwaway server can take longer than
 *   Bun's 5 s default to start on a loaded machine.
 *
 * When either applies it runs this same `bun test` command again in a child process
 * (with `--timeout 60000` unless one was given) and exits with its status; the
 * child finds everything in place and runs the tests. Where /proc is missing
 * (macOS) the command line is unknown: the timeout stays Bun's, and after an
 * install the whole suite runs.
 *
 * `bun run` needs none of this: Bun auto-installs imports when there is no
 * node_modules. Deno fetches npm packages itself (deno.json `nodeModulesDir: "none"`).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const TIMEOUT_MS = "60000";
const RERUN_MARK = "PGPOOL_BUN_TEST_RERUN";
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The dependencies package.json requires on every platform (optional ones are per platform). */
function missingDependencies(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  return Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })
    .filter((name) => !fs.existsSync(path.join(repo, "node_modules", name, "package.json")));
}

/** This process's own arguments after the executable (`test …`), or undefined without /proc. */
function ownArguments(): string[] | undefined {
  try {
    return fs.readFileSync("/proc/self/cmdline", "utf8").split("\0").filter(Boolean).slice(1);
  } catch {
    return undefined;
  }
}

function rerun(args: string[]): never {
  const child = spawnSync(process.execPath, args, {
    stdio: "inherit",
    env: { ...process.env, [RERUN_MARK]: "1" },
  });
  process.exit(child.status ?? 1);
}

if (process.env[RERUN_MARK] !== "1") {
  const missing = missingDependencies();
  if (missing.length > 0) {
    console.error(`bun test: installing the npm dependencies first (missing: ${missing.join(", ")})`);
    // --no-save: resolve from package-lock.json and write no bun.lock into the checkout.
    const install = spawnSync(process.execPath, ["install", "--no-save"], { cwd: repo, stdio: "inherit" });
    if (install.status !== 0) {
      console.error(`bun install failed (exit ${install.status ?? install.signal})`);
      process.exit(1);
    }
  }
  const args = ownArguments();
  const timed = args?.some((a) => a === "--timeout" || a.startsWith("--timeout=")) ?? true;
  if (args && args[0] === "test" && !timed) rerun(["test", "--timeout", TIMEOUT_MS, ...args.slice(1)]);
  if (missing.length > 0) rerun(args ?? ["test"]);
}

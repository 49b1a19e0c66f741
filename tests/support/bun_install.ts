/**
 * `bun test` preload (bunfig.toml): on a fresh clone, where nothing has installed
 * the npm dependencies yet, installs them with `bun install` and runs the same
 * `bun test` command again in a child process (this process resolved its
 * imports against the missing node_modules before the install), exiting with
 * its status. With the dependencies present it does nothing.
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

/** This process's own command line (`bun test …`), to run it again once the install is done. */
function ownArguments(): string[] {
  try {
    return fs.readFileSync("/proc/self/cmdline", "utf8").split("\0").filter(Boolean).slice(1);
  } catch {
    return ["test"]; // no /proc (macOS): run the whole suite
  }
}

const missing = missingDependencies();
if (missing.length > 0) {
  console.error(`bun test: installing the npm dependencies first (missing: ${missing.join(", ")})`);
  // --no-save: resolve from package-lock.json and write no bun.lock into the checkout.
  const install = spawnSync(process.execPath, ["install", "--no-save"], { cwd: repo, stdio: "inherit" });
  if (install.status !== 0) {
    console.error(`bun install failed (exit ${install.status ?? install.signal})`);
    process.exit(1);
  }
  const again = spawnSync(process.execPath, ownArguments(), { stdio: "inherit" });
  process.exit(again.status ?? 1);
}

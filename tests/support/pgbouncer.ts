/**
 * A real PgBouncer for the tests, the same under Deno and Bun: `startPgBouncer()` starts Debian's
 * `pgbouncer` on a free loopback port in front of a PostgreSQL server (by default the shared test
 * server of {@linkcode getTestServer}), in `transaction` or `session` pool mode, with its own
 * temporary config, auth file, log and pid file. It can be stopped, restarted on the same port
 * (a restart under load) and destroyed; whatever a test leaves running is stopped when the
 * process exits, and by the harness watchdog if the process dies.
 *
 * Clients log in with `auth_type = trust`; PgBouncer logs into the server as the same user with
 * the password from the server's DSN, if any. As root, PgBouncer (which refuses to run as root)
 * runs as the user the harness runs PostgreSQL as. The binary: `PGPOOL_PGBOUNCER`, else
 * `/usr/sbin/pgbouncer`, else `pgbouncer` on PATH; Debian's package is `pgbouncer`.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import process from "node:process";
import { getTestServer, harnessDirectory, serverUser, type TestServer } from "./pg_server.ts";

/** PgBouncer's `pool_mode`. */
export type PgBouncerPoolMode = "session" | "transaction";

/** Options of {@linkcode startPgBouncer}. */
export interface StartPgBouncerOptions {
  /** `pool_mode`. */
  poolMode: PgBouncerPoolMode;
  /** The server behind it. Default: {@linkcode getTestServer}. */
  server?: TestServer;
  /** `default_pool_size`: server connections per user and database. Default 20. */
  poolSize?: number;
  /** Extra `[pgbouncer]` settings; they win over the harness defaults. */
  config?: Record<string, string>;
}

/** A running (or stopped) PgBouncer of the tests. */
export interface PgBouncerInstance {
  /** DSN of the server's database through PgBouncer (its user, trust auth). */
  readonly dsn: string;
  /** Loopback address PgBouncer listens on. */
  readonly host: string;
  /** Its port. */
  readonly port: number;
  /** Its pool mode. */
  readonly poolMode: PgBouncerPoolMode;
  /** Its log file. */
  readonly logFile: string;
  /** Whether the daemon runs. */
  isRunning(): boolean;
  /** Starts a stopped PgBouncer on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Immediate shutdown (SIGTERM): every client and server connection is dropped; resolves once it exited. */
  stop(): Promise<void>;
  /** `stop()` then `start()`. */
  restart(): Promise<void>;
  /** Stops it and removes its files; later calls do nothing. */
  destroy(): Promise<void>;
  /** Same as `destroy()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/** The pgbouncer binary, or undefined when there is none. */
export function pgBouncerBinary(): string | undefined {
  const fromEnv = process.env.PGPOOL_PGBOUNCER;
  if (fromEnv) return fs.existsSync(fromEnv) ? fromEnv : undefined;
  for (const dir of ["/usr/sbin", "/usr/bin", ...(process.env.PATH ?? "").split(":")]) {
    if (dir && fs.existsSync(path.join(dir, "pgbouncer"))) return path.join(dir, "pgbouncer");
  }
  return undefined;
}

/** Whether {@linkcode startPgBouncer} can work here. */
export function pgBouncerAvailable(): boolean {
  return pgBouncerBinary() !== undefined;
}

/** The version `pgbouncer --version` reports (e.g. `1.18.0`), or undefined. */
export function pgBouncerVersion(): string | undefined {
  const bin = pgBouncerBinary();
  if (bin === undefined) return undefined;
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return /PgBouncer (\d+(?:\.\d+)*)/.exec(r.stdout ?? "")?.[1];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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

/** Whether something accepts TCP connections on 127.0.0.1:`port` (bounded by 1 s). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** A value for pgbouncer.ini (no quoting there: the value is the rest of the line). */
function iniValue(value: string): string {
  if (/[\r\n]/.test(value)) {
    throw new Error(`A PgBouncer setting cannot span lines: ${JSON.stringify(value)}`);
  }
  return value;
}

/** A `key=value` for the `[databases]` connection string, quoted as PgBouncer reads it. */
function connstrValue(value: string): string {
  return /^[A-Za-z0-9_.\/-]+$/.test(value) ? value : `'${value.replaceAll("'", "''")}'`;
}

/** A quoted field of the auth file. */
function authField(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

const live = new Set<Bouncer>();
let cleanupInstalled = false;

function stopAllSync(): void {
  for (const b of live) b.killSync();
  live.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  if ((globalThis as { Deno?: unknown }).Deno !== undefined) {
    globalThis.addEventListener("unload", stopAllSync);
  }
  process.on("exit", stopAllSync);
}

class Bouncer implements PgBouncerInstance {
  readonly dsn: string;
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly poolMode: PgBouncerPoolMode;
  readonly logFile: string;
  readonly #dir: string;
  readonly #bin: string;
  readonly #configFile: string;
  readonly #pidFile: string;
  #destroyed = false;

  constructor(bin: string, dir: string, port: number, poolMode: PgBouncerPoolMode, server: TestServer) {
    this.#bin = bin;
    this.#dir = dir;
    this.port = port;
    this.poolMode = poolMode;
    this.logFile = path.join(dir, "pgbouncer.log");
    this.#configFile = path.join(dir, "pgbouncer.ini");
    this.#pidFile = path.join(dir, "pgbouncer.pid");
    const url = new URL(server.dsn);
    url.hostname = this.host;
    url.port = String(port);
    url.password = "";
    this.dsn = url.toString();
  }

  pid(): number | undefined {
    try {
      const pid = Number.parseInt(fs.readFileSync(this.#pidFile, "utf8"), 10);
      return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  isRunning(): boolean {
    return this.pid() !== undefined;
  }

  #log(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").slice(-3000);
    } catch {
      return "(no log)";
    }
  }

  async start(): Promise<void> {
    if (this.#destroyed) throw new Error("This PgBouncer was destroyed");
    if (this.isRunning()) return;
    const user = serverUser();
    const argv = user
      ? [user.runuser, "-u", user.name, "--", this.#bin, "-d", this.#configFile]
      : [this.#bin, "-d", this.#configFile];
    // -d: PgBouncer daemonizes once its listening socket is open; the parent's exit code tells.
    const started = await new Promise<{ code: number; output: string }>((resolve) => {
      let output = "";
      const child = spawn(argv[0]!, argv.slice(1), { cwd: this.#dir, stdio: ["ignore", "pipe", "pipe"] });
      const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT_MS);
      child.stdout?.on("data", (d: Uint8Array) => output += new TextDecoder().decode(d));
      child.stderr?.on("data", (d: Uint8Array) => output += new TextDecoder().decode(d));
      child.on("error", (e: Error) => {
        clearTimeout(timer);
        resolve({ code: -1, output: output + String(e) });
      });
      child.on("close", (code: number | null) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, output });
      });
    });
    if (started.code !== 0) {
      throw new Error(`PgBouncer did not start (exit ${started.code}):\n${started.output}\n${this.#log()}`);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(this.port))) {
      if (Date.now() > deadline) {
        throw new Error(
          `PgBouncer did not accept connections on port ${this.port} within ${START_TIMEOUT_MS} ms:\n${this.#log()}`,
        );
      }
      if (!this.isRunning() && Date.now() > deadline - START_TIMEOUT_MS + 2000) {
        throw new Error(`PgBouncer exited after starting:\n${this.#log()}`);
      }
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    try {
      process.kill(pid, "SIGTERM");
    } catch { /* gone already */ }
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(pid)) {
      if (Date.now() > deadline) {
        process.kill(pid, "SIGKILL");
        throw new Error(`PgBouncer (pid ${pid}) did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
      }
      await sleep(10);
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops it synchronously (at process exit). */
  killSync(): void {
    const pid = this.pid();
    if (pid === undefined) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    live.delete(this);
    await this.stop();
    fs.rmSync(this.#dir, { recursive: true, force: true, maxRetries: 3 });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  toString(): string {
    return `PgBouncer(${this.poolMode}, ${this.host}:${this.port})`;
  }
}

/**
 * Starts a PgBouncer in front of `options.server` (default: the shared test server) in the given
 * pool mode, on a free loopback port; resolves once it accepts connections (bounded). Throws a
 * clear error when PgBouncer is not installed.
 *
 * @example
 * ```ts ignore
 * await using bouncer = await startPgBouncer({ poolMode: "transaction" });
 * await using pool = await createPool(bouncer.dsn, { poolMode: "transaction" });
 * ```
 */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<PgBouncerInstance> {
  const bin = pgBouncerBinary();
  if (bin === undefined) {
    throw new Error(
      "PgBouncer is not installed: install Debian's pgbouncer package (apt-get install pgbouncer) " +
        "or set PGPOOL_PGBOUNCER to the binary",
    );
  }
  if (options.poolMode !== "session" && options.poolMode !== "transaction") {
    throw new TypeError(
      `PgBouncer pool mode must be session or transaction: got ${String(options.poolMode)}`,
    );
  }
  const server = options.server ?? await getTestServer();
  const url = new URL(server.dsn);
  const user = decodeURIComponent(url.username) || server.user;
  const password = url.password ? decodeURIComponent(url.password) : "";
  installCleanup();
  const dir = harnessDirectory("pgbouncer");
  const owner = serverUser();
  const write = (name: string, text: string): void => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    if (owner) fs.chownSync(file, owner.uid, owner.gid);
  };
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const bouncer = new Bouncer(bin, dir, port, options.poolMode, server);
    const settings: Record<string, string> = {
      listen_addr: bouncer.host,
      listen_port: String(port),
      unix_socket_dir: "",
      auth_type: "trust",
      auth_file: path.join(dir, "userlist.txt"),
      pool_mode: options.poolMode,
      default_pool_size: String(options.poolSize ?? 20),
      max_client_conn: "1000",
      logfile: bouncer.logFile,
      pidfile: path.join(dir, "pgbouncer.pid"),
      log_connections: "0",
      log_disconnections: "0",
      server_login_retry: "1",
      ...options.config,
    };
    const lines = [
      "; written by tests/support/pgbouncer.ts",
      "[databases]",
      `* = host=${connstrValue(server.host)} port=${server.port}`,
      "",
      "[pgbouncer]",
      ...Object.entries(settings).map(([k, v]) => `${k} = ${iniValue(v)}`),
      "",
    ];
    write("pgbouncer.ini", lines.join("\n"));
    write("userlist.txt", `${authField(user)} ${authField(password)}\n`);
    live.add(bouncer);
    try {
      await bouncer.start();
      return bouncer;
    } catch (e) {
      lastError = e;
      live.delete(bouncer);
      await bouncer.stop().catch(() => {});
      // A port taken between freePort() and PgBouncer's bind: try another one.
      if (!/Address already in use|could not bind|bind\(/i.test(String(e))) break;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  throw lastError;
}

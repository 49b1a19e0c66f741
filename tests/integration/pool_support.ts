/**
 * Shared helpers of the real-server pool tests (tests/integration/pool_*_test.ts):
 * a warning collector, an admin connection for watching the server, bounded
 * polling, and small TCP fixtures (a closed port, a black hole, a proxy that
 * can lose connectivity). Runs unchanged under Deno and Bun.
 *
 * @module
 */

import net from "node:net";
import assert from "node:assert/strict";
import {
  connect,
  type Connection,
  createPool,
  type Pool,
  type PoolConnection,
  type PoolOptions,
  type PoolWarning,
} from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

export { getTestServer, type TestServer };

/**
 * `createPool()` for tests: the same pool, except that `await using` closes it
 * with a 5 s bound (then terminates it and rejects), so a test that fails while
 * holding a connection fails instead of hanging the run.
 */
export async function createTestPool(
  dsnOrOptions: string | PoolOptions,
  options?: PoolOptions,
): Promise<Pool> {
  const pool = typeof dsnOrOptions === "string"
    ? await createPool(dsnOrOptions, options)
    : await createPool(dsnOrOptions);
  Object.defineProperty(pool, Symbol.asyncDispose, { value: () => pool.close({ timeout: 5 }) });
  return pool;
}

/** Collects pool warnings instead of printing them. */
export interface WarningLog {
  /** Every warning so far, in order. */
  readonly list: PoolWarning[];
  /** Pass as the pool's `onWarning`. */
  readonly onWarning: (w: PoolWarning) => void;
  /** The codes seen so far. */
  codes(): string[];
}

/** A fresh warning collector. */
export function warningLog(): WarningLog {
  const list: PoolWarning[] = [];
  return { list, onWarning: (w) => list.push(w), codes: () => list.map((w) => w.code) };
}

/** Turns a synchronous hook body into the promise-returning hook a pool expects (a throw becomes a rejection). */
export function hook<T>(body: (arg: T) => void): (arg: T) => Promise<void> {
  return (arg: T): Promise<void> => {
    try {
      body(arg);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

/** Resolves after `ms` milliseconds (only where time itself is what a test checks). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every `intervalMs` until it returns a truthy value; fails the
 * test with `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 3000,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Settles with the outcome of `p` or rejects once `ms` passed, so a broken library cannot hang a test. */
export function within<T>(ms: number, p: Promise<T>, what = "the operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** The error `p` rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  assert.fail("expected the promise to reject");
}

/** A standalone connection (not pooled) for watching and poking the server. */
export class Admin {
  #con: Connection | undefined;
  #server: TestServer;

  constructor(server: TestServer) {
    this.#server = server;
  }

  async #get(): Promise<Connection> {
    if (this.#con === undefined || this.#con.isClosed()) {
      this.#con = await connect(this.#server.dsn, { applicationName: "pool-test-admin" });
    }
    return this.#con;
  }

  /** Runs a query and returns its first column of the first row. */
  async value<T = unknown>(sql: string, args: unknown[] = []): Promise<T> {
    return (await (await this.#get()).fetchVal(sql, args)) as T;
  }

  /** Runs a statement. */
  async execute(sql: string, args: unknown[] = []): Promise<string> {
    return await (await this.#get()).execute(sql, args);
  }

  /** Whether a backend with this pid is connected. */
  async backendAlive(pid: number): Promise<boolean> {
    return await this.value<boolean>("SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1", [pid]);
  }

  /** Terminates a backend; true when the server signalled it. */
  async kill(pid: number): Promise<boolean> {
    return await this.value<boolean>("SELECT pg_terminate_backend($1)", [pid]);
  }

  /** Waits until the server no longer lists the backend. */
  async waitGone(pid: number, timeoutMs = 3000): Promise<void> {
    await waitFor(`backend ${pid} to exit`, async () => !(await this.backendAlive(pid)), timeoutMs, 20);
  }

  /** Closes the admin connection. */
  async close(): Promise<void> {
    const con = this.#con;
    this.#con = undefined;
    if (con !== undefined && !con.isClosed()) await con.close({ timeout: 2 });
  }
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP listener that accepts connections and never sends a byte. */
export interface BlackHole {
  readonly port: number;
  /** Sockets currently open. */
  readonly sockets: Set<net.Socket>;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

/** Starts a {@linkcode BlackHole} on loopback. */
export async function blackHole(): Promise<BlackHole> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.resume(); // read and drop what arrives, so the peer's close is noticed
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    accepted: () => accepted,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A TCP proxy in front of the server that can lose connectivity: while
 * `cut`, bytes in both directions are dropped (as on a dead network path)
 * and new connections are accepted but never answered; `restore()` resumes
 * forwarding for new connections (held ones stay dead, as after a real outage).
 */
export class FlakyProxy {
  #server: net.Server;
  #pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  #cut = false;
  #port = 0;
  #target: { host: string; port: number };

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Starts a proxy to `target`. */
  static async start(target: { host: string; port: number }): Promise<FlakyProxy> {
    const proxy = new FlakyProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    proxy.#port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** The proxy's loopback port. */
  get port(): number {
    return this.#port;
  }

  /** Connections being proxied (or held). */
  get connections(): number {
    return this.#pairs.size;
  }

  #accept(client: net.Socket): void {
    client.on("error", () => {});
    if (this.#cut) {
      // Accept and say nothing: a connect attempt during the outage hangs.
      const upstream = new net.Socket();
      const pair = { client, upstream };
      this.#pairs.add(pair);
      client.on("close", () => this.#pairs.delete(pair));
      return;
    }
    const upstream = net.connect(this.#target.port, this.#target.host);
    upstream.on("error", () => client.destroy());
    const pair = { client, upstream };
    this.#pairs.add(pair);
    client.on("data", (chunk: Uint8Array) => {
      if (!this.#cut) upstream.write(chunk);
    });
    upstream.on("data", (chunk: Uint8Array) => {
      if (!this.#cut) client.write(chunk);
    });
    client.on("close", () => {
      upstream.destroy();
      this.#pairs.delete(pair);
    });
    upstream.on("close", () => client.destroy());
  }

  /** Connectivity is lost: nothing gets through any more, and nobody is told. */
  cut(): void {
    this.#cut = true;
  }

  /** New connections work again. */
  restore(): void {
    this.#cut = false;
  }

  /** Drops every proxied connection abruptly (both sides see a reset). */
  resetAll(): void {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Stops the proxy and drops its connections. */
  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Whether the session is outside any transaction block. */
export async function outsideTransaction(con: PoolConnection): Promise<boolean> {
  try {
    await con.execute("SAVEPOINT pool_test_probe");
  } catch (e) {
    if ((e as { code?: string }).code === "25P01") return true;
    throw e;
  }
  await con.execute("ROLLBACK");
  return false;
}

/**
 * What every entry point (`mod.ts`, `deno.ts`, `bun.ts`) shares: `connect()`,
 * the `Pool` class and `createPool()` bound to one runtime's connector.
 * Runtime-neutral: the entry point picks the connector.
 *
 * @module
 */

import { installTimerUnref, type TimerHandle } from "./core/clock.ts";
import { Connection } from "./core/connection.ts";
import type { ConnectOptions, Driver, DriverName } from "./core/driver.ts";
import { checkConnectOptions, type ConnectHook, type PoolOptions } from "./core/options.ts";
import { BasePool } from "./core/pool.ts";
export type { BasePool };
import { createNativeDriver } from "./drivers/native/driver.ts";
import { createPostgresDriver } from "./drivers/postgresjs/driver.ts";
import { dsnPoolMode, type Env } from "./drivers/dsn.ts";
import { readEnv } from "./runtime/env.ts";
import type { Connector } from "./runtime/transport.ts";

/**
 * `connect(dsn?, options?)` / `connect(options?)`: opens a standalone, unpooled
 * connection (asyncpg's `connect`) over the entry point's runtime adapter.
 * Connection options come from the DSN, then `options`, then the libpq environment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@x/pgpool";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point;
 * // connect("postgres://user@host/db") takes a DSN.
 * await using con = await connect({ applicationName: "report" });
 * assert.equal(await con.fetchVal("SHOW application_name"), "report");
 * ```
 */
export type ConnectFunction = (
  dsnOrOptions?: string | ConnectOptions,
  options?: ConnectOptions,
) => Promise<Connection>;

/**
 * `createPool(dsn?, options?)` / `createPool(options?)`: creates a pool and
 * opens its `minSize` connections. If that fails, the pool is terminated and
 * the error thrown. Throws `TypeError` for options of the wrong type or unknown
 * names, `RangeError` for out-of-range numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * // Connects where DATABASE_URL or PGHOST, PGPORT, PGUSER, ... point; a DSN can come
 * // first instead: createPool("postgres://user@host/db", { minSize: 1, maxSize: 5 }).
 * await using pool = await createPool({ minSize: 1, maxSize: 5 });
 * assert.equal(pool.getSize(), 1); // minSize connections are open already
 * assert.equal(await pool.fetchVal("SELECT 1"), 1);
 * ```
 */
export type CreatePoolFunction = (
  dsnOrOptions?: string | PoolOptions,
  options?: PoolOptions,
) => Promise<BasePool>;

/**
 * The `Pool` class of an entry point: a {@linkcode BasePool} whose connections
 * go through that entry point's runtime adapter. `new Pool(dsn, options)`
 * builds a pool without connecting; `init()` (or `createPool()`) opens it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Pool } from "@x/pgpool";
 * const pool = new Pool({ minSize: 1 }); // or new Pool("postgres://user@host/db", { minSize: 1 })
 * assert.equal(pool.getSize(), 0); // nothing is opened yet
 * await pool.init();
 * assert.equal(pool.getSize(), 1);
 * await pool.close();
 * ```
 */
export interface PoolClass {
  /**
   * Builds a pool without connecting.
   *
   * @param dsnOrOptions A DSN (`postgres://user@host:5432/db?sslmode=require`), or the options.
   * @param options Pool and connection options when the first argument is a DSN.
   */
  new (dsnOrOptions?: string | PoolOptions, options?: PoolOptions): BasePool;
}

/** What an entry point exports, bound to one runtime adapter. */
export interface Binding {
  /** See {@linkcode ConnectFunction}. */
  readonly connect: ConnectFunction;
  /** See {@linkcode PoolClass}. */
  readonly Pool: PoolClass;
  /** See {@linkcode CreatePoolFunction}. */
  readonly createPool: CreatePoolFunction;
}

/** The runtime this code runs in, by its globals: Deno, Bun, else `"node"`. */
export function detectRuntime(): "deno" | "bun" | "node" {
  return "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
}

/** Normalizes `(dsn, options)` / `(options)` into one options object. */
export function connectArgs(
  dsnOrOptions: string | ConnectOptions | undefined,
  options: ConnectOptions | undefined,
): ConnectOptions {
  let opts: ConnectOptions;
  if (typeof dsnOrOptions === "string") opts = { ...options, dsn: dsnOrOptions };
  else if (dsnOrOptions === undefined || dsnOrOptions === null) opts = { ...options };
  else if (typeof dsnOrOptions !== "object") {
    throw new TypeError(`Cannot connect as the first argument must be a DSN string or an options object`);
  } else opts = { ...dsnOrOptions, ...options };
  checkConnectOptions(opts, "Cannot connect", true);
  return opts;
}

/** The driver a connection uses: the `driver` option, else `PGPOOL_DRIVER`, else the native engine. */
export function driverName(options: ConnectOptions, env: Env): DriverName {
  if (options.driver !== undefined) return options.driver;
  const fromEnv = env.PGPOOL_DRIVER;
  if (fromEnv === undefined || fromEnv === "") return "native";
  if (fromEnv === "native" || fromEnv === "postgres") return fromEnv;
  throw new TypeError(`Cannot connect as PGPOOL_DRIVER must be native or postgres: got '${fromEnv}'`);
}

/** Binds `connect()` to a connector and an environment reader. */
export function bindConnect(
  connector: Connector,
  env: () => Env,
): { connect: ConnectFunction; hook: ConnectHook } {
  let environment: Env | undefined;
  const drivers: Partial<Record<DriverName, Driver>> = {};
  const hook: ConnectHook = async (options: ConnectOptions): Promise<Connection> => {
    environment ??= env();
    const name = driverName(options, environment);
    const driver = drivers[name] ??= name === "native"
      ? createNativeDriver(connector, { env: environment })
      : createPostgresDriver(connector, { env: environment });
    return new Connection(await driver.connect(options), options);
  };
  const connect: ConnectFunction = async (dsnOrOptions, options) =>
    await hook(connectArgs(dsnOrOptions, options));
  return { connect, hook };
}

/**
 * The pool arguments with `poolMode` taken from the DSN's `pool_mode` key (the DSN argument, else
 * the `dsn` option, else `DATABASE_URL`) when the options do not set it. Arguments the pool will
 * refuse are passed on unchanged for it to report.
 */
export function withDsnPoolMode(
  dsnOrOptions: string | PoolOptions | undefined,
  options: PoolOptions | undefined,
  env: () => Env,
): [string | PoolOptions | undefined, PoolOptions | undefined] {
  const asIs: [string | PoolOptions | undefined, PoolOptions | undefined] = [dsnOrOptions, options];
  const dsnFirst = typeof dsnOrOptions === "string";
  const opts = dsnFirst ? options : dsnOrOptions;
  if (opts !== undefined && (typeof opts !== "object" || opts === null)) return asIs;
  if (!dsnFirst && options !== undefined) return asIs;
  if (opts?.poolMode !== undefined) return asIs;
  const dsn = dsnFirst ? dsnOrOptions : opts?.dsn ?? env().DATABASE_URL;
  if (typeof dsn !== "string") return asIs;
  const poolMode = dsnPoolMode(dsn);
  if (poolMode === undefined) return asIs;
  return dsnFirst ? [dsnOrOptions, { ...options, poolMode }] : [{ ...opts, poolMode }, undefined];
}

/**
 * Binds `connect()`, a `Pool` class and `createPool()` to a connector (the
 * environment is the process's). `timerUnref` is the runtime's way to let a
 * timer not keep the process alive, when its timers are not objects with
 * `unref()` (Deno's); it applies to the system clock.
 */
export function bindEntry(connector: Connector, timerUnref?: (handle: TimerHandle) => void): Binding {
  if (timerUnref !== undefined) installTimerUnref(timerUnref);
  const { connect, hook } = bindConnect(connector, readEnv);
  class Pool extends BasePool {
    constructor(dsnOrOptions?: string | PoolOptions, options?: PoolOptions) {
      super(...withDsnPoolMode(dsnOrOptions, options, readEnv), hook);
    }
  }
  const createPool: CreatePoolFunction = async (dsnOrOptions, options) => {
    const pool = new Pool(dsnOrOptions, options);
    try {
      await pool.init();
    } catch (e) {
      pool.terminate();
      throw e;
    }
    return pool;
  };
  return { connect, Pool, createPool };
}

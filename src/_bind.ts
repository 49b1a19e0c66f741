/**
 * What every entry point (`mod.ts`, `deno.ts`, `bun.ts`) shares: the public
 * `connect()` bound to a runtime's connector. Runtime-neutral.
 *
 * @module
 */

import { Connection } from "./core/connection.ts";
import type { ConnectOptions } from "./core/driver.ts";
import { checkConnectOptions, type ConnectHook } from "./core/options.ts";
import { createPostgresDriver } from "./drivers/postgresjs/driver.ts";
import type { Env } from "./drivers/dsn.ts";
import type { Connector } from "./runtime/transport.ts";

/** `connect(dsn?, options?)` / `connect(options?)`. */
export type ConnectFunction = (
  dsnOrOptions?: string | ConnectOptions,
  options?: ConnectOptions,
) => Promise<Connection>;

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

/** Binds `connect()` to a connector and an environment reader. */
export function bindConnect(
  connector: Connector,
  env: () => Env,
): { connect: ConnectFunction; hook: ConnectHook } {
  let driver: ReturnType<typeof createPostgresDriver> | undefined;
  const hook: ConnectHook = async (options: ConnectOptions): Promise<Connection> => {
    driver ??= createPostgresDriver(connector, { env: env() });
    return new Connection(await driver.connect(options));
  };
  const connect: ConnectFunction = async (dsnOrOptions, options) =>
    await hook(connectArgs(dsnOrOptions, options));
  return { connect, hook };
}

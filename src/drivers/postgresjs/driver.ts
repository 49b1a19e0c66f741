/**
 * The default {@linkcode Driver}: PostgreSQL through postgres.js, one
 * postgres.js instance (`max: 1`) per connection, over the byte streams of a
 * runtime adapter's {@linkcode Connector}. Runtime-neutral: the adapter is
 * passed in, and so is the environment.
 *
 * @module
 */

import { type Clock, systemClock } from "../../core/clock.ts";
import { Deadline } from "../../core/deadline.ts";
import type { ConnectOptions, Driver, DriverConnection } from "../../core/driver.ts";
import { ConnectionError } from "../../core/errors.ts";
import { Watchdog } from "../../core/watchdog.ts";
import type { Connector } from "../../runtime/transport.ts";
import { type Env, resolveConnectOptions } from "../dsn.ts";
import { connectPlan } from "../hosts.ts";
import {
  openPostgresConnection,
  type PostgresConnection,
  type PostgresDriverSettings,
} from "./pg_connection.ts";

/** Options of {@linkcode createPostgresDriver}. */
export interface PostgresDriverOptions extends PostgresDriverSettings {
  /**
   * The libpq environment (`PGHOST`, `PGUSER`, ..., `DATABASE_URL`), passed in
   * by the entry point (`process.env`, `Deno.env.toObject()`). Default: none.
   */
  env?: Env;
  /**
   * Where the driver's time and timers come from (connect timeouts, query
   * timeouts, the cancel grace, the reset and close bounds); the clock's shared
   * {@linkcode Watchdog} times every connection of the driver. Its `random()`
   * orders the hosts under `loadBalanceHosts: "random"` (`Math.random` when it
   * has none). Default: {@linkcode systemClock}.
   */
  clock?: Clock;
}

function hostLabel(host: string, port: number): string {
  if (host.startsWith("/")) return `${host}/.s.PGSQL.${port}`;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Creates the postgres.js-based driver over `connector`.
 *
 * `connect()` tries each host in order, or in a random order with
 * `loadBalanceHosts: "random"` (libpq's multi-host lists, with
 * `target_session_attrs`); every attempt (TCP, TLS, authentication) is bounded
 * by `connectTimeout` (default 30 seconds; 0 = unbounded) and fails with
 * `CONNECT_TIMEOUT`; `signal` aborts it with `signal.reason`. A failed attempt
 * leaves nothing open.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { createPostgresDriver } from "./driver.ts";
 * import { nodeConnector } from "../../runtime/node.ts";
 * // Where to connect comes from the libpq environment (PGHOST, PGPORT, PGUSER, ... or DATABASE_URL).
 * const driver = createPostgresDriver(nodeConnector, { env: process.env });
 * const con = await driver.connect({ sslmode: "disable" });
 * assert.deepEqual([...(await con.query("SELECT 1 AS one", [])).rows], [{ one: 1 }]);
 * await con.close();
 * ```
 */
export function createPostgresDriver(connector: Connector, options: PostgresDriverOptions = {}): Driver {
  const { env = {}, clock = systemClock, ...settings } = options;
  // Every bound of every connection is an alarm on the clock's one watchdog, shared with
  // whatever else runs on that clock (the pool's deadlines, the adapters' connect grace).
  const watchdog = Watchdog.of(clock);
  const random = clock.random === undefined ? Math.random : () => clock.random!();
  return {
    async connect(connectOptions: ConnectOptions): Promise<DriverConnection> {
      const config = resolveConnectOptions(connectOptions, env);
      const outer = connectOptions.signal;
      if (outer?.aborted) throw outer.reason;
      const attrs = config.targetSessionAttrs;
      let lastError: unknown = new ConnectionError("CONNECTION_FAILED", "No host to connect to");
      for (const pass of connectPlan(config, random)) {
        for (const host of pass.hosts) {
          const seconds = config.connectTimeout;
          // The attempt's bound: its timeout on the driver's watchdog, and the caller's signal.
          const deadline = new Deadline(
            watchdog,
            seconds > 0 ? seconds * 1000 : undefined,
            outer,
            "CONNECT_TIMEOUT",
            `Timed out after ${seconds}s connecting to ${hostLabel(host.host, host.port)}`,
          );
          let connection: PostgresConnection | undefined;
          try {
            connection = await openPostgresConnection(connector, config, host, deadline, settings, watchdog);
            if (await connection.matchesSessionAttrs(pass.attrs, deadline.signal)) {
              connection.fallback = pass.fallback;
              return connection;
            }
            connection.terminate();
            lastError = new ConnectionError(
              "SESSION_ATTRS_MISMATCH",
              `The server at ${hostLabel(host.host, host.port)} does not match target_session_attrs=${attrs}`,
            );
          } catch (error) {
            connection?.terminate();
            if (outer?.aborted) throw outer.reason;
            lastError = deadline.fired ? deadline.reason : error;
          } finally {
            deadline.dispose();
          }
        }
      }
      throw lastError;
    },
  };
}

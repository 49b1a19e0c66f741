/**
 * The native {@linkcode Driver}: PostgreSQL spoken directly over a runtime
 * adapter's {@linkcode Connector} — startup, TLS for every `sslmode`,
 * authentication, multi-host with `target_session_attrs` and `load_balance_hosts`, bounded by
 * `connectTimeout` and `signal`.
 *
 * @module
 */

import type { ConnectOptions, Driver, DriverConnection } from "../../core/driver.ts";
import { ConnectionError, PoolTimeoutError, type PostgresErrorFields } from "../../core/errors.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import { Watchdog } from "../../core/watchdog.ts";
import type { Connector, Transport } from "../../runtime/transport.ts";
import { connectPlan, describeHost, targetFor, toConnectionError } from "../hosts.ts";
import { type Env, type HostAddress, resolveConnectOptions, type ResolvedConnectOptions } from "../dsn.ts";
import { writeStartup } from "./messages.ts";
import { NativeConnection } from "./native_connection.ts";
import { createTypeRegistry, type TypeRegistry } from "./values/index.ts";
import { WireWriter } from "./wire_writer.ts";

/** Options of {@linkcode createNativeDriver}. */
export interface NativeDriverOptions {
  /** The libpq environment (`PGHOST`, `PGUSER`, ...). Default: none. */
  env?: Env;
  /**
   * The clock of the driver's deadlines; its `random()` orders the hosts under
   * `loadBalanceHosts: "random"` (`Math.random` when it has none). Default: the system clock.
   */
  clock?: Clock;
  /**
   * Seconds a cancelled statement may take to end once the server got the cancel request; past
   * that the connection is closed (`QUERY_TIMEOUT`). Default 5.
   */
  cancelGrace?: number;
  /** Receives server notices (`NoticeResponse`) with every field; notices are dropped by default. */
  onNotice?: (notice: PostgresErrorFields) => void;
}

const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]);

/** Rejects with `signal.reason` once aborted. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function open(
  connector: Connector,
  config: ResolvedConnectOptions,
  host: HostAddress,
  signal: AbortSignal,
  watchdog: Watchdog,
  types: TypeRegistry,
  cancelGrace: number,
  onNotice: ((notice: PostgresErrorFields) => void) | undefined,
): Promise<NativeConnection> {
  const where = describeHost(host);
  const target = targetFor(host);
  const con = new NativeConnection({
    connector,
    target,
    watchdog,
    types,
    prepare: config.prepare,
    statementCacheSize: config.statementCacheSize,
    where,
    cancelGrace,
    onNotice,
    cancelLimitMs: (config.connectTimeout || 30) * 1000,
  });
  let waiter: ((chunk: Uint8Array | Error) => void) | undefined;
  let started = false;
  /** The transport closed before the connection took it over (e.g. in the job that brought the TLS answer). */
  let lost: Error | undefined;
  /** Rejects with `lost`: what a TLS handshake is raced with (an adapter may not end it on a close). */
  let loseEarly: (error: Error) => void = () => {};
  const closedEarly = new Promise<never>((_, reject) => (loseEarly = reject));
  closedEarly.catch(() => {});
  let transport: Transport;
  try {
    transport = await connector(target, {
      data: (chunk) => (started ? con.data(chunk) : waiter?.(chunk)),
      drain: () => con.drain(),
      close: (error) => {
        if (started) return con.transportClosed(error);
        lost ??= toConnectionError(error ?? new Error("the server closed the connection"), where);
        waiter?.(lost);
        loseEarly(lost);
      },
    }, { signal, keepAlive: config.keepAlive });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw toConnectionError(error, where);
  }
  const onAbort = (): void => transport.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const { sslmode, sslrootcert } = config;
    if (sslmode !== "disable" && target.kind === "tcp") {
      const reply = new Promise<Uint8Array | Error>((r) => (waiter = r));
      transport.write(SSL_REQUEST);
      const chunk = await abortable(reply, signal);
      waiter = undefined;
      if (chunk instanceof Error) throw chunk;
      if (chunk.length !== 1 || (chunk[0] !== 0x53 && chunk[0] !== 0x4e)) {
        throw new ConnectionError("PROTOCOL_VIOLATION", `Unexpected reply to the TLS request from ${where}`);
      }
      if (chunk[0] === 0x4e && sslmode !== "prefer" && sslmode !== ("allow" as string)) {
        throw new ConnectionError(
          "TLS_UNAVAILABLE",
          `The server at ${where} does not accept TLS (sslmode=${sslmode})`,
        );
      }
      if (chunk[0] === 0x53) {
        const verify = sslmode === "verify-full"
          ? "full"
          : sslmode === "verify-ca" || (sslmode === "require" && sslrootcert !== undefined)
          ? "ca"
          : "none";
        try {
          await abortable(
            Promise.race([
              transport.startTls({
                servername: host.host,
                ca: sslrootcert === undefined ? undefined : [sslrootcert],
                verify,
              }),
              closedEarly,
            ]),
            signal,
          );
        } catch (error) {
          if (signal.aborted) throw error;
          throw toConnectionError(error, where);
        }
      }
    }
    // A close already reported would never be reported to the connection again.
    if (lost !== undefined) throw lost;
    started = true;
    con.attach(transport);
    const params: Record<string, string> = {
      user: config.user,
      database: config.database,
      client_encoding: "UTF8",
      DateStyle: "ISO",
      ...config.params,
    };
    if (config.applicationName !== undefined) params.application_name = config.applicationName;
    const w = new WireWriter(128);
    writeStartup(w, params);
    await abortable(con.startup(w.take(), config.user, config.password), signal);
    return con;
  } catch (error) {
    transport.destroy();
    con.terminate();
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

async function matches(con: NativeConnection, attrs: string, signal: AbortSignal): Promise<boolean> {
  if (attrs === "any") return true;
  const { rows } = await abortable(
    con.query(
      "SELECT pg_catalog.pg_is_in_recovery() AS r, current_setting('transaction_read_only') AS ro",
      [],
    ),
    signal,
  );
  const recovery = rows[0]!.r === true;
  const readOnly = rows[0]!.ro === "on";
  switch (attrs) {
    case "read-write":
      return !readOnly;
    case "read-only":
      return readOnly;
    case "primary":
      return !recovery;
    case "standby":
      return recovery;
    default:
      return true;
  }
}

/**
 * Creates the native driver over `connector`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { createNativeDriver } from "./driver.ts";
 * import { nodeConnector } from "../../runtime/node.ts";
 * // Where to connect comes from the libpq environment (PGHOST, PGPORT, PGUSER, ... or DATABASE_URL).
 * const driver = createNativeDriver(nodeConnector, { env: process.env });
 * const con = await driver.connect({ sslmode: "disable" });
 * assert.deepEqual((await con.query("SELECT 1 AS one", [])).rows, [{ one: 1 }]);
 * await con.close();
 * ```
 */
export function createNativeDriver(connector: Connector, options: NativeDriverOptions = {}): Driver {
  const env = options.env ?? {};
  const clock = options.clock ?? systemClock;
  const watchdog = Watchdog.of(clock);
  const random = clock.random === undefined ? Math.random : () => clock.random!();
  const cancelGrace = options.cancelGrace ?? 5;
  // Parsers by type oid, built-in arrays included: nothing to ask the server at connect.
  const types = createTypeRegistry();
  return {
    async connect(connectOptions: ConnectOptions): Promise<DriverConnection> {
      const config = resolveConnectOptions(connectOptions, env);
      const outer = connectOptions.signal;
      if (outer?.aborted) throw outer.reason;
      const attrs = config.targetSessionAttrs;
      let lastError: unknown = new ConnectionError("CONNECTION_FAILED", "No host to connect to");
      for (const pass of connectPlan(config, random)) {
        for (const host of pass.hosts) {
          const attempt = new AbortController();
          const onOuterAbort = (): void => attempt.abort(outer!.reason);
          outer?.addEventListener("abort", onOuterAbort, { once: true });
          const seconds = config.connectTimeout;
          const alarm = seconds > 0
            ? watchdog.after(seconds * 1000, () =>
              attempt.abort(
                new PoolTimeoutError(
                  "CONNECT_TIMEOUT",
                  `Timed out after ${seconds}s connecting to ${describeHost(host)}`,
                ),
              ))
            : undefined;
          let con: NativeConnection | undefined;
          try {
            con = await open(
              connector,
              config,
              host,
              attempt.signal,
              watchdog,
              types,
              cancelGrace,
              options.onNotice,
            );
            if (await matches(con, pass.attrs, attempt.signal)) {
              con.fallback = pass.fallback;
              return con;
            }
            con.terminate();
            lastError = new ConnectionError(
              "SESSION_ATTRS_MISMATCH",
              `The server at ${describeHost(host)} does not match target_session_attrs=${attrs}`,
            );
          } catch (error) {
            con?.terminate();
            if (outer?.aborted) throw outer.reason;
            lastError = attempt.signal.aborted ? attempt.signal.reason : error;
          } finally {
            alarm?.cancel();
            outer?.removeEventListener("abort", onOuterAbort);
          }
        }
      }
      throw lastError;
    },
  };
}

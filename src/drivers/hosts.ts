/**
 * What both drivers need to reach a host and to explain a failure: the
 * transport target of a host entry, its label in messages, network errors
 * wrapped with their code, and the check of per-query options.
 *
 * @module
 */

import { ConnectionError, InterfaceError, PoolError } from "../core/errors.ts";
import type { QueryOptions } from "../core/driver.ts";
import type { TransportTarget } from "../runtime/transport.ts";
import type { HostAddress } from "./dsn.ts";

const NETWORK_CODES: Record<string, string> = {
  ConnectionRefused: "ECONNREFUSED",
  ConnectionReset: "ECONNRESET",
  ConnectionAborted: "ECONNABORTED",
  NotConnected: "ENOTCONN",
  AddrInUse: "EADDRINUSE",
  AddrNotAvailable: "EADDRNOTAVAIL",
  BrokenPipe: "EPIPE",
  TimedOut: "ETIMEDOUT",
  NotFound: "ENOENT",
  PermissionDenied: "EACCES",
};

/**
 * A host entry as messages name it: `host:port`, `[v6]:port` or the socket file's path.
 *
 * @example
 * ```ts
 * import { describeHost } from "./hosts.ts";
 * console.log(describeHost({ host: "::1", port: 5432 })); // "[::1]:5432"
 * ```
 */
export function describeHost(host: HostAddress): string {
  if (host.host.startsWith("/")) return `${host.host.replace(/\/+$/, "")}/.s.PGSQL.${host.port}`;
  return host.host.includes(":") ? `[${host.host}]:${host.port}` : `${host.host}:${host.port}`;
}

/**
 * The transport target for a host entry: a directory means a unix socket.
 *
 * @example
 * ```ts
 * import { targetFor } from "./hosts.ts";
 * console.log(targetFor({ host: "/run/postgresql", port: 5432 })); // { kind: "unix", path: "/run/postgresql/.s.PGSQL.5432" }
 * ```
 */
export function targetFor(host: HostAddress): TransportTarget {
  return host.host.startsWith("/")
    ? { kind: "unix", path: `${host.host.replace(/\/+$/, "")}/.s.PGSQL.${host.port}` }
    : { kind: "tcp", hostname: host.host, port: host.port };
}

/**
 * Wraps a network failure in a {@linkcode ConnectionError}, keeping its code
 * (Node's `code`, or the Deno error class name mapped to the Node code).
 *
 * @example
 * ```ts
 * import { toConnectionError } from "./hosts.ts";
 * const e = toConnectionError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }), "db:5432");
 * console.log(e.code); // "ECONNREFUSED"
 * ```
 */
export function toConnectionError(error: unknown, where: string): PoolError {
  if (error instanceof PoolError) return error;
  const e = error as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === "string" && e.code !== ""
    ? e.code
    : typeof e?.name === "string" && e.name in NETWORK_CODES
    ? NETWORK_CODES[e.name]!
    : "CONNECTION_FAILED";
  const detail = typeof e?.message === "string" && e.message !== "" ? `: ${e.message}` : "";
  return new ConnectionError(code, `Connection to ${where} failed${detail}`, { cause: error });
}

/** Throws `INVALID_ARGUMENT` for a query timeout that is not a non-negative number of seconds. */
export function checkQueryOptions(options: QueryOptions | undefined): void {
  const timeout = options?.timeout;
  if (
    timeout !== undefined && (typeof timeout !== "number" || !(timeout >= 0) || !Number.isFinite(timeout))
  ) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      "The query timeout must be a non-negative number of seconds",
    );
  }
}

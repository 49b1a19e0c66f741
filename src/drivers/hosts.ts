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
import type { HostAddress, ResolvedConnectOptions, TargetSessionAttrs } from "./dsn.ts";

/**
 * One pass over the hosts of a connect: the hosts in the order they are tried,
 * and what a server must be to be kept.
 */
export interface ConnectPass {
  /** What the server must be (`prefer-standby` is tried as `standby`, then as `any`). */
  attrs: Exclude<TargetSessionAttrs, "prefer-standby">;
  /** The hosts, each once, in the order to try them. */
  hosts: HostAddress[];
  /** True for the second pass of `prefer-standby`: a connection it opens is a fallback. */
  fallback: boolean;
}

/**
 * The passes of one connect (libpq 16): one pass over the hosts, or for
 * `prefer-standby` a pass that takes only a standby, then one that takes any
 * server. With `loadBalanceHosts: "random"` each pass tries the hosts in an
 * order of its own, shuffled with `random` (a number in `[0, 1)`); else in the
 * order given. Every host is tried once per pass.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectPlan } from "./hosts.ts";
 * const hosts = [{ host: "a", port: 5432 }, { host: "b", port: 5432 }];
 * const plan = connectPlan({ hosts, targetSessionAttrs: "prefer-standby", loadBalanceHosts: "disable" }, Math.random);
 * assert.deepEqual(plan.map((p) => [p.attrs, p.fallback]), [["standby", false], ["any", true]]);
 * assert.deepEqual(plan[1]!.hosts, hosts);
 * ```
 */
export function connectPlan(
  config: Pick<ResolvedConnectOptions, "hosts" | "targetSessionAttrs" | "loadBalanceHosts">,
  random: () => number,
): ConnectPass[] {
  const order = (): HostAddress[] => {
    const hosts = [...config.hosts];
    if (config.loadBalanceHosts !== "random") return hosts;
    // Fisher–Yates: every order equally likely.
    for (let i = hosts.length - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(random() * (i + 1)));
      [hosts[i], hosts[j]] = [hosts[j]!, hosts[i]!];
    }
    return hosts;
  };
  const attrs = config.targetSessionAttrs;
  if (attrs !== "prefer-standby") return [{ attrs, hosts: order(), fallback: false }];
  return [
    { attrs: "standby", hosts: order(), fallback: false },
    { attrs: "any", hosts: order(), fallback: true },
  ];
}

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

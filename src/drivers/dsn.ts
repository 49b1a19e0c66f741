/**
 * Connection strings and the libpq environment. Parses `postgres://` /
 * `postgresql://` URLs and libpq `key=value` strings, and merges them with
 * explicit {@linkcode ConnectOptions} and the libpq environment variables.
 *
 * Precedence, highest first (as in asyncpg): explicit options, the DSN
 * (`options.dsn`, else `DATABASE_URL`), the libpq environment (`PGHOST`, `PGPORT`,
 * `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGAPPNAME`,
 * `PGCONNECT_TIMEOUT`, `PGTARGETSESSIONATTRS`, `PGLOADBALANCEHOSTS`, `PGOPTIONS`), then defaults. The
 * environment is passed in, never read from a runtime global, so this module
 * stays runtime-neutral.
 *
 * @module
 */

import type { ConnectOptions, SslMode } from "../core/driver.ts";
import { InterfaceError } from "../core/errors.ts";
import { DEFAULT_STATEMENT_CACHE_SIZE } from "./statement_cache.ts";

/** Environment variables, as `process.env` or `Deno.env.toObject()` provide them. */
export type Env = Readonly<Record<string, string | undefined>>;

/** One host to try: a name, an IP address, or a unix socket directory (starts with `/`). */
export interface HostAddress {
  /** Host name, IP address (IPv6 without brackets) or socket directory. */
  host: string;
  /** TCP port, or the number in the socket file name `.s.PGSQL.<port>`. */
  port: number;
}

/** libpq's `target_session_attrs` values. */
export type TargetSessionAttrs = NonNullable<ConnectOptions["targetSessionAttrs"]>;

/** libpq 16's `load_balance_hosts` values. */
export type LoadBalanceHosts = NonNullable<ConnectOptions["loadBalanceHosts"]>;

/** Every connection setting, resolved and validated. */
export interface ResolvedConnectOptions {
  /** Hosts to try, in order. */
  hosts: HostAddress[];
  /** Role to log in as. */
  user: string;
  /** Password, if any. */
  password: string | undefined;
  /** Database name. */
  database: string;
  /** TLS mode (`prefer` by default, as in libpq). */
  sslmode: SslMode;
  /** PEM CA certificates, if given. */
  sslrootcert: string | undefined;
  /** Seconds one connection attempt may take; 0 = unbounded. Default 30. */
  connectTimeout: number;
  /** TCP keepalive idle seconds; 0 disables. Default 60. */
  keepAlive: number;
  /** `application_name`, if any. */
  applicationName: string | undefined;
  /** Extra startup parameters. */
  params: Record<string, string>;
  /** Which kind of server is acceptable. */
  targetSessionAttrs: TargetSessionAttrs;
  /** `random`: each connect tries the hosts in an order of its own. */
  loadBalanceHosts: LoadBalanceHosts;
  /** Named prepared statements. */
  prepare: boolean;
  /** How many texts one connection prepares at most. */
  statementCacheSize: number;
}

/** The default for {@linkcode ResolvedConnectOptions.connectTimeout}, in seconds. */
export const DEFAULT_CONNECT_TIMEOUT = 30;

const SSL_MODES = new Set(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]);
const SESSION_ATTRS = new Set(["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]);

/** libpq keywords that configure the client and are never sent to the server. */
const CLIENT_KEYWORDS = new Set([
  "host",
  "hostaddr",
  "port",
  "user",
  "password",
  "dbname",
  "database",
  "sslmode",
  "sslrootcert",
  "connect_timeout",
  "application_name",
  "fallback_application_name",
  "target_session_attrs",
  "prepare",
  "client_encoding",
  "passfile",
  "channel_binding",
  "sslcert",
  "sslkey",
  "sslpassword",
  "sslcrl",
  "sslcrldir",
  "sslsni",
  "sslcompression",
  "sslnegotiation",
  "ssl_min_protocol_version",
  "ssl_max_protocol_version",
  "requiressl",
  "requirepeer",
  "require_auth",
  "gssencmode",
  "gsslib",
  "gssdelegation",
  "krbsrvname",
  "service",
  "keepalives",
  "keepalives_idle",
  "keepalives_interval",
  "keepalives_count",
  "tcp_user_timeout",
  "load_balance_hosts",
  // The pool's `poolMode` (read by the entry points' Pool, see dsnPoolMode); never a server parameter.
  "pool_mode",
]);

function invalid(message: string): InterfaceError {
  return new InterfaceError("INVALID_DSN", message);
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(`Invalid percent-encoding in the ${what} of the connection URL`);
  }
}

/** Splits `host[:port]` or `[v6]:port` of one URL host entry. */
function splitHostPort(entry: string): { host: string; port: string } {
  if (entry.startsWith("[")) {
    const close = entry.indexOf("]");
    if (close === -1) throw invalid("Unterminated IPv6 address in the connection URL");
    const rest = entry.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) {
      throw invalid("Unexpected text after an IPv6 address in the connection URL");
    }
    return { host: entry.slice(1, close), port: rest.slice(1) };
  }
  const colon = entry.lastIndexOf(":");
  if (colon === -1) return { host: entry, port: "" };
  return { host: entry.slice(0, colon), port: entry.slice(colon + 1) };
}

function parseUrl(dsn: string): Map<string, string> {
  const out = new Map<string, string>();
  let rest = dsn.slice(dsn.indexOf("://") + 3);
  const hash = rest.indexOf("#");
  if (hash !== -1) rest = rest.slice(0, hash);
  let query = "";
  const q = rest.indexOf("?");
  if (q !== -1) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf("/");
  let netloc = rest;
  if (slash !== -1) {
    netloc = rest.slice(0, slash);
    const db = rest.slice(slash + 1);
    if (db !== "") out.set("dbname", decode(db, "database name"));
  }
  const at = netloc.lastIndexOf("@");
  if (at !== -1) {
    const userinfo = netloc.slice(0, at);
    netloc = netloc.slice(at + 1);
    const colon = userinfo.indexOf(":");
    const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
    if (user !== "") out.set("user", decode(user, "user name"));
    if (colon !== -1) out.set("password", decode(userinfo.slice(colon + 1), "password"));
  }
  if (netloc !== "") {
    const hosts: string[] = [];
    const ports: string[] = [];
    for (const entry of netloc.split(",")) {
      const { host, port } = splitHostPort(entry);
      hosts.push(decode(host, "host"));
      ports.push(decode(port, "port"));
    }
    if (hosts.some((h) => h !== "")) out.set("host", hosts.join(","));
    if (ports.some((p) => p !== "")) out.set("port", ports.join(","));
  }
  if (query !== "") {
    for (const pair of query.split("&")) {
      if (pair === "") continue;
      const eq = pair.indexOf("=");
      const key = decode(eq === -1 ? pair : pair.slice(0, eq), "query string");
      const value = decode(eq === -1 ? "" : pair.slice(eq + 1), "query string");
      out.set(key === "database" ? "dbname" : key, value);
    }
  }
  return out;
}

function parseKeywordValue(dsn: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const n = dsn.length;
  const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\n" || c === "\r";
  while (i < n) {
    while (i < n && isSpace(dsn[i])) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && dsn[i] !== "=" && !isSpace(dsn[i])) i++;
    const key = dsn.slice(keyStart, i);
    while (i < n && isSpace(dsn[i])) i++;
    if (dsn[i] !== "=") throw invalid(`Missing "=" after "${key}" in the connection string`);
    i++;
    while (i < n && isSpace(dsn[i])) i++;
    let value = "";
    if (dsn[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = dsn[i]!;
        if (c === "\\" && i + 1 < n) {
          value += dsn[i + 1];
          i += 2;
        } else if (c === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw invalid(`Unterminated quoted value for "${key}" in the connection string`);
    } else {
      while (i < n && !isSpace(dsn[i])) {
        if (dsn[i] === "\\" && i + 1 < n) {
          value += dsn[i + 1];
          i += 2;
        } else {
          value += dsn[i];
          i++;
        }
      }
    }
    if (key === "") throw invalid("Empty keyword in the connection string");
    out.set(key === "database" ? "dbname" : key, value);
  }
  return out;
}

/**
 * Parses a connection string into libpq keywords (`host`, `port`, `user`,
 * `password`, `dbname`, `sslmode`, ... plus any server parameters). Multi-host
 * lists stay comma-separated. Throws an `InterfaceError` with code `INVALID_DSN`
 * whose message never contains the password.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDsn } from "./dsn.ts";
 * const k = parseDsn("postgres://me:s%40cret@[::1]:5433,db2/app?sslmode=require");
 * assert.equal(k.get("host"), "::1,db2");
 * assert.equal(k.get("port"), "5433,");
 * assert.equal(k.get("password"), "s@cret");
 * assert.equal(k.get("sslmode"), "require");
 * ```
 */
export function parseDsn(dsn: string): Map<string, string> {
  if (typeof dsn !== "string") throw invalid("The connection string must be a string");
  const trimmed = dsn.trim();
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(trimmed);
  if (scheme !== null) {
    const name = scheme[1]!.toLowerCase();
    if (name !== "postgres" && name !== "postgresql") {
      throw invalid(`Unsupported connection URL scheme "${name}" (expected postgres:// or postgresql://)`);
    }
    return parseUrl(trimmed);
  }
  if (trimmed === "") return new Map();
  if (!trimmed.includes("=")) {
    throw invalid("The connection string is neither a postgres:// URL nor libpq key=value pairs");
  }
  return parseKeywordValue(trimmed);
}

/**
 * The `pool_mode` key of a connection string (`session` or `transaction`), or undefined when it
 * has none. A string that does not parse gives undefined too: connecting reports that one. Throws
 * an `InterfaceError` (`INVALID_DSN`) for another `pool_mode` value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dsnPoolMode } from "./dsn.ts";
 * assert.equal(dsnPoolMode("postgres://app@pgbouncer:6432/app?pool_mode=transaction"), "transaction");
 * assert.equal(dsnPoolMode("host=db pool_mode=session"), "session");
 * assert.equal(dsnPoolMode("postgres://app@db/app"), undefined);
 * ```
 */
export function dsnPoolMode(dsn: string): "session" | "transaction" | undefined {
  let keywords: Map<string, string>;
  try {
    keywords = parseDsn(dsn);
  } catch {
    return undefined;
  }
  const mode = keywords.get("pool_mode");
  if (mode === undefined || mode === "session" || mode === "transaction") return mode;
  throw invalid(`Invalid pool_mode "${mode}": expected session or transaction`);
}

const ENV_KEYWORDS: ReadonlyArray<[string, string]> = [
  ["PGHOST", "host"],
  ["PGPORT", "port"],
  ["PGUSER", "user"],
  ["PGPASSWORD", "password"],
  ["PGDATABASE", "dbname"],
  ["PGSSLMODE", "sslmode"],
  ["PGAPPNAME", "application_name"],
  ["PGCONNECT_TIMEOUT", "connect_timeout"],
  ["PGTARGETSESSIONATTRS", "target_session_attrs"],
  ["PGLOADBALANCEHOSTS", "load_balance_hosts"],
  ["PGOPTIONS", "options"],
];

function parsePort(text: string): number {
  if (!/^\d+$/.test(text)) throw invalid(`Invalid port "${text}": expected an integer from 1 to 65535`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw invalid(`Invalid port ${port}: expected an integer from 1 to 65535`);
  return port;
}

function parseSeconds(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw invalid(`Invalid ${name} "${text}": expected a non-negative number of seconds`);
  }
  return value;
}

function parseBoolean(name: string, text: string): boolean {
  const t = text.toLowerCase();
  if (["1", "true", "on", "yes"].includes(t)) return true;
  if (["0", "false", "off", "no"].includes(t)) return false;
  throw invalid(`Invalid ${name} "${text}": expected true or false`);
}

/**
 * Merges explicit options, the DSN and the libpq environment into validated
 * settings. Throws an `InterfaceError` (`INVALID_DSN`) for bad values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConnectOptions } from "./dsn.ts";
 * const r = resolveConnectOptions({ dsn: "postgres://app@db/app", port: 6432 }, { PGPASSWORD: "pw" });
 * assert.deepEqual(r.hosts, [{ host: "db", port: 6432 }]);
 * assert.equal(r.user, "app");
 * assert.equal(r.database, "app");
 * assert.equal(r.password, "pw");
 * ```
 */
export function resolveConnectOptions(options: ConnectOptions = {}, env: Env = {}): ResolvedConnectOptions {
  const k = new Map<string, string>();
  for (const [name, keyword] of ENV_KEYWORDS) {
    const value = env[name];
    if (value !== undefined && value !== "") k.set(keyword, value);
  }
  const dsn = options.dsn ?? env.DATABASE_URL;
  if (dsn !== undefined && dsn !== "") {
    for (const [key, value] of parseDsn(dsn)) k.set(key, value);
  }
  if (!k.has("host") && k.has("hostaddr")) k.set("host", k.get("hostaddr")!);
  if (options.host !== undefined) k.set("host", options.host);
  if (options.port !== undefined) k.set("port", String(options.port));
  if (options.user !== undefined) k.set("user", options.user);
  if (options.password !== undefined) k.set("password", options.password);
  if (options.database !== undefined) k.set("dbname", options.database);
  if (options.sslmode !== undefined) k.set("sslmode", options.sslmode);
  if (options.sslrootcert !== undefined) k.set("sslrootcert", options.sslrootcert);
  if (options.connectTimeout !== undefined) k.set("connect_timeout", String(options.connectTimeout));
  if (options.applicationName !== undefined) k.set("application_name", options.applicationName);
  if (options.targetSessionAttrs !== undefined) k.set("target_session_attrs", options.targetSessionAttrs);
  if (options.loadBalanceHosts !== undefined) k.set("load_balance_hosts", options.loadBalanceHosts);
  if (options.prepare !== undefined) k.set("prepare", String(options.prepare));

  const hostNames = (k.get("host") ?? "").split(",").map((h) => h.trim());
  const portTexts = (k.get("port") ?? "").split(",").map((p) => p.trim());
  if (portTexts.length !== 1 && portTexts.length !== hostNames.length) {
    throw invalid(`Could not match ${portTexts.length} port numbers to ${hostNames.length} hosts`);
  }
  const hosts = hostNames.map((host, i): HostAddress => {
    const portText = portTexts.length === 1 ? portTexts[0]! : portTexts[i]!;
    return { host: host === "" ? "localhost" : host, port: portText === "" ? 5432 : parsePort(portText) };
  });

  let sslmode = k.get("sslmode") ?? "prefer";
  if (!SSL_MODES.has(sslmode)) {
    throw invalid(
      `Invalid sslmode "${sslmode}": expected disable, prefer, require, verify-ca or verify-full`,
    );
  }
  if (sslmode === "allow") sslmode = "prefer";
  let sslrootcert = k.get("sslrootcert");
  if (sslrootcert !== undefined && sslrootcert !== "system" && !sslrootcert.includes("-----BEGIN")) {
    throw invalid('sslrootcert must be PEM text or "system"; certificate files are not read');
  }
  if (sslrootcert === "system") {
    sslrootcert = undefined;
    if (k.get("sslmode") === undefined) sslmode = "verify-full";
  }

  const tsa = k.get("target_session_attrs") ?? "any";
  if (!SESSION_ATTRS.has(tsa)) {
    throw invalid(
      `Invalid target_session_attrs "${tsa}": expected any, read-write, read-only, primary, standby or prefer-standby`,
    );
  }

  const balance = k.get("load_balance_hosts") ?? "disable";
  if (balance !== "disable" && balance !== "random") {
    throw invalid(`Invalid load_balance_hosts "${balance}": expected disable or random`);
  }

  const user = k.get("user") ?? env.USER ?? env.USERNAME ?? env.LOGNAME ?? "postgres";
  const timeoutText = k.get("connect_timeout");
  const keepalives = k.get("keepalives");
  const keepAliveIdle = k.get("keepalives_idle");
  const params: Record<string, string> = {};
  for (const [key, value] of k) {
    if (!CLIENT_KEYWORDS.has(key)) params[key] = value;
  }
  for (const [key, value] of Object.entries(options.params ?? {})) {
    if (key === "client_encoding") continue;
    params[key] = value;
  }

  return {
    hosts,
    user,
    password: k.get("password"),
    database: k.get("dbname") || user,
    sslmode: sslmode as SslMode,
    sslrootcert,
    connectTimeout: timeoutText === undefined
      ? DEFAULT_CONNECT_TIMEOUT
      : parseSeconds("connect_timeout", timeoutText),
    keepAlive: keepalives !== undefined && !parseBoolean("keepalives", keepalives)
      ? 0
      : keepAliveIdle === undefined
      ? 60
      : parseSeconds("keepalives_idle", keepAliveIdle),
    applicationName: k.get("application_name") ?? k.get("fallback_application_name"),
    params,
    targetSessionAttrs: tsa as TargetSessionAttrs,
    loadBalanceHosts: balance,
    prepare: k.has("prepare") ? parseBoolean("prepare", k.get("prepare")!) : true,
    statementCacheSize: options.statementCacheSize ?? DEFAULT_STATEMENT_CACHE_SIZE,
  };
}

/**
 * One physical PostgreSQL connection on a dedicated postgres.js instance
 * (`max: 1`) whose socket is a {@linkcode PgSocket} over a runtime adapter's
 * {@linkcode Transport}, watched by a {@linkcode ProtocolTap}.
 *
 * It never reconnects: the socket factory given to postgres.js hands out the one
 * socket opened here and refuses every later call, and once the transport closed
 * the instance is ended and no call reaches it again.
 *
 * Query cancellation sends its own `CancelRequest` through the same connector
 * (rather than postgres.js `query.cancel()`, whose outcome cannot be awaited),
 * so the connection knows when the request was delivered, and the next
 * statement waits for both that and the cancelled query's `ReadyForQuery`.
 *
 * @module
 */

import postgres from "postgres";
import {
  type DriverCapabilities,
  type DriverConnection,
  type DriverQueryOptions,
  type NotificationListener,
  POSTGRES_JS_CAPABILITIES,
  type QueryOptions,
  type QueryResult,
  type Row,
  type ServerVersion,
  type StatementDescription,
  type TransactionStatus,
} from "../../core/driver.ts";
import { systemClock } from "../../core/clock.ts";
import { Deadline } from "../../core/deadline.ts";
import {
  ConnectionError,
  InterfaceError,
  PoolError,
  PoolTimeoutError,
  PostgresError,
  type PostgresErrorFields,
} from "../../core/errors.ts";
import type { Notice } from "../../core/log_listeners.ts";
import { type Alarm, Watchdog } from "../../core/watchdog.ts";
import type { Connector, Transport, TransportHandlers, TransportTarget } from "../../runtime/transport.ts";
import type { HostAddress, ResolvedConnectOptions } from "../dsn.ts";
import { guardSerializers, REFUSED_PARAMETER } from "./safe_serializers.ts";
import { installArrayTypes, parseArray, serializeArray, type TypeTables } from "./arrays.ts";
import type { CodecType, TextCodec } from "../../core/type_codecs.ts";
import { PgSocket } from "./pg_socket.ts";
import { fixQueryOrigin } from "./query_origin.ts";
import { serializeJsonParam } from "../json_param.ts";
import { paramText, serializeBoolParam, serializeByteaParam, serializeDateParam } from "../param_text.ts";
import { BUILTIN_ARRAYS, OID } from "../type_oids.ts";
import { StatementCache } from "../statement_cache.ts";
import { type Cycle, ProtocolTap } from "./protocol_tap.ts";
import { awaitCancelled, closeWithin, sendCancelRequest } from "../timing.ts";
import { checkQueryOptions, describeHost, targetFor, toConnectionError } from "../hosts.ts";
import { parseServerVersion, resetQueryFor } from "../server_session.ts";

/** Settings of the driver that are not per-connection options. */
export interface PostgresDriverSettings {
  /** Receives server notices (`NoticeResponse`); notices are dropped by default. */
  onNotice?: (notice: PostgresErrorFields) => void;
  /**
   * Seconds a cancelled query may take to finish after its `CancelRequest`
   * was delivered; past it the connection is terminated. Default 5.
   */
  cancelGrace?: number;
}

// --- postgres.js shapes used here (its typings do not cover the socket option) ---

interface PgColumn {
  name: string;
}

interface PgResult extends Array<Row> {
  command: string | null;
  count: number | null;
  columns: PgColumn[] | null | undefined;
}

interface NodeReadable extends AsyncIterable<Uint8Array> {
  destroy(error?: Error): void;
}

interface NodeWritable {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(error?: Error): void;
  once(event: string, fn: (...args: unknown[]) => void): void;
  off(event: string, fn: (...args: unknown[]) => void): void;
  on(event: string, fn: (...args: unknown[]) => void): void;
  readonly destroyed: boolean;
}

interface PgQuery extends Promise<unknown> {
  execute(): PgQuery;
  values(): PgQuery;
  describe(): PgQuery;
  readable(): Promise<NodeReadable>;
  writable(): Promise<NodeWritable>;
}

interface PgSql {
  options: TypeTables;
  unsafe(text: string, args?: unknown[], options?: { prepare?: boolean }): PgQuery;
  end(options?: { timeout?: number | null }): Promise<void>;
}

type PgFactory = (options: Record<string, unknown>) => PgSql;

// --- helpers ---

const noop = (): void => {};
const RESOLVED: Promise<void> = Promise.resolve();

/** The `SSLRequest` message: length 8, code 80877103. */
const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]);

interface PgJsError {
  name: string;
  code?: unknown;
  message: string;
  severity?: string;
  severity_local?: string;
  detail?: string;
  hint?: string;
  position?: string;
  where?: string;
  schema_name?: string;
  table_name?: string;
  column_name?: string;
  constraint_name?: string;
  "data type_name"?: string;
  internal_position?: string;
  internal_query?: string;
  file?: string;
  line?: string;
  routine?: string;
}

function fromPgJsError(e: PgJsError): PostgresError {
  return new PostgresError(fieldsOf(e));
}

/** The fields of a postgres.js error or notice, as a plain object (a notice keeps them all). */
function fieldsOf(e: PgJsError): Notice {
  const notice: Notice = {
    code: typeof e.code === "string" ? e.code : "XX000",
    message: e.message,
    severity: e.severity ?? e.severity_local,
    detail: e.detail,
    hint: e.hint,
    position: e.position === undefined ? undefined : Number(e.position),
    where: e.where,
    schema: e.schema_name,
    table: e.table_name,
    column: e.column_name,
    constraint: e.constraint_name,
    dataType: e["data type_name"],
  };
  if (e.internal_position !== undefined) notice.internalPosition = Number(e.internal_position);
  if (e.internal_query !== undefined) notice.internalQuery = e.internal_query;
  if (e.file !== undefined) notice.file = e.file;
  if (e.line !== undefined) notice.line = Number(e.line);
  if (e.routine !== undefined) notice.routine = e.routine;
  return notice;
}

function isPgJsPostgresError(e: unknown): e is PgJsError {
  return e instanceof Error && e.name === "PostgresError" && !(e instanceof PoolError);
}

/**
 * Runs `fn` (a synchronous postgres.js constructor call) with `process.env`
 * swapped for an empty object, so postgres.js sees only the settings resolved
 * from the injected environment: it reads `PGAPPNAME` and
 * `PGTARGETSESSIONATTRS` unconditionally, which in Deno without `--allow-env`
 * throws. The call is synchronous, so no other code can observe the swap.
 */
function withoutProcessEnv<T>(fn: () => T): T {
  const proc = (globalThis as { process?: { env?: unknown } }).process;
  const descriptor = proc === undefined ? undefined : Object.getOwnPropertyDescriptor(proc, "env");
  if (proc === undefined || descriptor === undefined || !("value" in descriptor) || !descriptor.writable) {
    return fn();
  }
  const saved = descriptor.value;
  proc.env = {};
  try {
    return fn();
  } finally {
    proc.env = saved;
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function isMultiResult(value: unknown): value is PgResult[] {
  return Array.isArray(value) && !("command" in value);
}

function commandTag(result: PgResult): string {
  const command = result.command ?? "";
  if (result.count === null || result.count === undefined) return command;
  return command === "INSERT" ? `INSERT 0 ${result.count}` : `${command} ${result.count}`;
}

/**
 * The rows of a postgres.js result. postgres.js 3.4.9 resets its row counter
 * only at `CommandComplete`: after a statement failed midway through its rows,
 * the next statement's rows start at that stale offset, behind holes. Those
 * holes are dropped here (rows are objects, never `undefined`).
 */
function rowsOf(result: PgResult, protoColumn: boolean): Row[] {
  // A plain loop: Array.prototype.slice on postgres.js's Result (an Array subclass) takes the slow
  // generic path through its Symbol.species getter.
  const rows: Row[] = [];
  for (let i = 0; i < result.length; i++) {
    const row = result[i];
    if (row !== undefined) rows.push(row);
  }
  if (protoColumn) {
    for (const row of rows) {
      const value = row[PROTO_COLUMN];
      delete row[PROTO_COLUMN];
      Object.defineProperty(row, "__proto__", {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return rows;
}

/** The name postgres.js is given for a column called `__proto__` (see `rowsOf`). */
const PROTO_COLUMN = "\u0000__proto__";

function columnName(name: string): string {
  return name === PROTO_COLUMN ? "__proto__" : name;
}

function toQueryResult(value: unknown, cycle: Cycle | undefined, arrayRows = false): QueryResult {
  const multi = isMultiResult(value);
  const last = (multi ? value[value.length - 1] : value) as PgResult | undefined;
  if (last === undefined) return { rows: [], columns: [], command: cycle?.tags.at(-1) ?? "" };
  const columns: string[] = [];
  let protoColumn = false;
  for (const column of last.columns ?? []) {
    const name = column.name;
    if (name === PROTO_COLUMN) protoColumn = true;
    columns.push(columnName(name));
  }
  return {
    // Array rows (postgres.js `values()`) hold no column names: nothing to put back.
    rows: rowsOf(last, protoColumn && !arrayRows),
    columns,
    command: cycle?.tags.at(-1) ?? commandTag(last),
  };
}

/** What a passed deadline does to the running operation. */
type OnDeadline = "cancel" | "terminate";

/** Tells a running operation that its caller gave up (cheaper than an AbortController per query). */
interface Abandoned {
  aborted: boolean;
  reason: unknown;
}

/**
 * A {@linkcode DriverConnection} on postgres.js. Made by
 * {@linkcode openPostgresConnection} (or a driver's `connect()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { createPostgresDriver } from "./driver.ts";
 * import { nodeConnector } from "../../runtime/node.ts";
 * const con = await createPostgresDriver(nodeConnector, { env: process.env }).connect({});
 * await con.query("BEGIN", []);
 * assert.equal(con.transactionStatus, "transaction");
 * await con.reset({ query: true });
 * con.terminate();
 * ```
 */
export class PostgresConnection implements DriverConnection {
  #connector: Connector;
  #config: ResolvedConnectOptions;
  /** Which texts run as named prepared statements (postgres.js would keep every one). */
  #statements: StatementCache;
  #host: HostAddress;
  #settings: PostgresDriverSettings;
  #tap: ProtocolTap;
  #socket: PgSocket;
  #transport: Transport | undefined;
  #sql: PgSql | undefined;
  #socketHanded = false;
  #tlsWaiter: ((chunk: Uint8Array) => void) | undefined;
  #tapping = false;
  #generation = 0;
  #handshakeFailed = false;
  #earlyClose: Error | undefined;

  #closed = false;
  #finalized = false;
  #lossError: Error | undefined;
  #fatal: PostgresErrorFields | undefined;
  #onClose: ((error: Error | undefined) => void) | undefined;
  #notified = false;
  #closeWaiters = new Set<(error: Error) => void>();
  #closing: Promise<void> | undefined;

  #tail: Promise<void> = Promise.resolve();
  /** Operations given to `#run` that have not finished (running, or waiting for their turn). */
  #pending = 0;
  #cancelling: Promise<void> | undefined;
  #cycleLog: Cycle[] = [];
  #cycleWaiters: Array<{ after: number; resolve: () => void }> = [];
  #listeners = new Map<string, NotificationListener>();
  #queryCount = 0;
  #resetSql = "";
  /** The connection's notice receiver (the log listeners of its `Connection`). */
  #onNotice: ((notice: Notice) => void) | undefined;
  /** postgres.js's own parser and serializer of each type given a codec, to put back at a reset. */
  #builtInCodecs:
    | Map<
      number,
      { parse: ((text: string) => unknown) | undefined; serialize: ((value: unknown) => string) | undefined }
    >
    | undefined;
  /** Encoded simple-query messages for the reset, by statement text. */
  #resetMessages = new Map<string, Uint8Array>();
  /** Waiters for the driver's own statements, answered in order by swallowed cycles. */
  #ownWaiters: Array<
    {
      resolve: () => void;
      reject: (error: Error) => void;
      /** Clock time (ms) by which the answer must be in; Infinity for none. */
      deadline: number;
      tolerate: readonly string[] | undefined;
    }
  > = [];
  /**
   * One alarm watches the answers to the driver's own statements: armed for the earliest
   * deadline, left alone when answers come in (a reset on every release then costs no timer
   * work), and re-armed for the next deadline when it fires.
   */
  #ownAlarm: Alarm | undefined;
  /** Times every bound of this connection (the driver's, shared by its connections). */
  #watchdog: Watchdog;
  #poisoned = false;
  #serverVersion: ServerVersion = { major: 0, minor: 0, micro: 0, text: "" };

  /** @internal Use {@linkcode openPostgresConnection}. */
  constructor(
    connector: Connector,
    config: ResolvedConnectOptions,
    host: HostAddress,
    settings: PostgresDriverSettings,
    watchdog: Watchdog = Watchdog.of(systemClock),
  ) {
    this.#watchdog = watchdog;
    this.#connector = connector;
    this.#config = config;
    this.#statements = new StatementCache(config.prepare ? config.statementCacheSize : 0);
    this.#host = host;
    this.#settings = settings;
    this.#socket = new PgSocket(host.host, host.port);
    this.#tap = new ProtocolTap({
      cycle: (cycle) => this.#onCycle(cycle),
      notification: (pid, channel, payload) => this.#onNotification(pid, channel, payload),
      fatal: (fields) => {
        this.#fatal ??= fields;
      },
      swallowed: (cycle) => this.#onSwallowed(cycle),
      misaligned: () => {
        this.#poisoned = true;
        this.#lose(
          new ConnectionError(
            "PROTOCOL_VIOLATION",
            "Answers on this connection are out of step with its statements; it was closed",
          ),
        );
      },
    });
  }

  /** Opened on the fallback pass of `prefer-standby` (set by the driver's connect). */
  fallback = false;
  /** What this driver can do where the drivers differ. */
  readonly capabilities: DriverCapabilities = POSTGRES_JS_CAPABILITIES;

  get pid(): number {
    return this.#tap.pid;
  }

  get serverVersion(): ServerVersion {
    return this.#serverVersion;
  }

  get queryCount(): number {
    return this.#queryCount;
  }

  get transactionStatus(): TransactionStatus {
    return this.#tap.status;
  }

  /** Server parameters reported so far (`ParameterStatus`). */
  get parameters(): ReadonlyMap<string, string> {
    return this.#tap.parameters;
  }

  isClosed(): boolean {
    return this.#closed;
  }

  resetQuery(): string {
    return this.#resetSql;
  }

  onNotice(listener: ((notice: Notice) => void) | undefined): void {
    this.#onNotice = listener;
  }

  /**
   * postgres.js looks a column's parser up when it reads the statement's description and keeps
   * it with the prepared statement: texts this connection prepared before keep their parsers.
   */
  setTypeCodec(type: CodecType, codec: TextCodec | undefined): void {
    const tables = this.#sql?.options;
    if (tables === undefined) return;
    const builtIn = this.#builtInCodecs ??= new Map();
    for (const oid of type.arrayOid === 0 ? [type.oid] : [type.oid, type.arrayOid]) {
      if (!builtIn.has(oid)) {
        builtIn.set(oid, { parse: tables.parsers[oid], serialize: tables.serializers[oid] });
      }
    }
    if (codec === undefined) {
      for (const oid of [type.oid, type.arrayOid]) {
        const saved = builtIn.get(oid);
        if (saved === undefined) continue;
        tables.parsers[oid] = saved.parse;
        tables.serializers[oid] = saved.serialize;
        if (saved.parse === undefined) delete tables.parsers[oid];
        if (saved.serialize === undefined) delete tables.serializers[oid];
      }
      return;
    }
    const { decoder, encoder } = codec;
    // A serializer that throws would break postgres.js's writing (see safe_serializers.ts).
    const encode = (value: unknown): string => {
      try {
        return encoder(value);
      } catch {
        return REFUSED_PARAMETER;
      }
    };
    tables.parsers[type.oid] = (text: string): unknown => decoder(text);
    tables.serializers[type.oid] = encode;
    if (type.arrayOid !== 0) {
      tables.parsers[type.arrayOid] = (text: string): unknown => parseArray(text, decoder);
      tables.serializers[type.arrayOid] = (value: unknown): string => serializeArray(value, encode);
    }
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#onClose = listener;
    if (this.#finalized && !this.#notified) {
      this.#notified = true;
      const error = this.#lossError;
      queueMicrotask(() => listener(error));
    }
  }

  toString(): string {
    return `PostgresConnection(${describeHost(this.#host)}, pid ${this.pid}${
      this.#closed ? ", closed" : ""
    })`;
  }

  // ---------------------------------------------------------------- opening

  /**
   * @internal Opens the socket, negotiates TLS, starts postgres.js and waits for the session.
   * Every step is raced against `deadline` (the attempt's timeout and its caller's signal).
   */
  async open(deadline: Deadline): Promise<void> {
    const target = targetFor(this.#host);
    try {
      await this.#openTransport(target, deadline);
      if (target.kind === "tcp" && this.#config.sslmode !== "disable") {
        try {
          await this.#negotiateTls(deadline);
        } catch (error) {
          // libpq's "prefer": when the TLS handshake itself fails, try again without TLS.
          if (!this.#handshakeFailed || this.#config.sslmode !== "prefer" || deadline.fired) throw error;
          this.#transport?.destroy();
          await this.#openTransport(target, deadline);
        }
      }
      if (this.#earlyClose !== undefined) throw this.#earlyClose;
      this.#tapping = true;
      this.#sql = this.#startPostgresJs();
      // The first query makes postgres.js connect; an empty query costs one small round trip.
      await deadline.race(this.#guard(this.#sql.unsafe("")));
      if (this.#closed) throw this.#closedError();
      this.#serverVersion = parseServerVersion(this.#tap.parameters.get("server_version") ?? "");
      this.#resetSql = resetQueryFor(this.#tap.parameters);
      this.#cycleLog = [];
    } catch (error) {
      const mapped = this.#mapError(error);
      this.#abandon();
      throw mapped;
    }
  }

  /** Opens a (new) transport; events of an earlier one are ignored from now on. */
  async #openTransport(target: TransportTarget, deadline: Deadline): Promise<void> {
    const generation = ++this.#generation;
    this.#earlyClose = undefined;
    const handlers: TransportHandlers = {
      data: (chunk) => {
        if (generation !== this.#generation) return;
        if (this.#tapping) {
          const passed = this.#tap.feed(chunk);
          // A failed pipelined reset poisons the session: nothing after it may reach postgres.js.
          if (this.#poisoned) return;
          if (passed.length > 0) this.#socket.deliver(passed);
        } else {
          this.#tlsWaiter?.(chunk);
        }
      },
      drain: () => {
        if (generation === this.#generation) this.#socket.drained();
      },
      close: (error) => {
        if (generation !== this.#generation) return;
        if (this.#tapping) return this.#transportClosed(error);
        // Before startup (TLS negotiation) a close only fails the pending step; open() decides what follows.
        const failure = toConnectionError(
          error ?? Object.assign(new Error("the server closed the connection"), { code: "CONNECTION_LOST" }),
          describeHost(this.#host),
        );
        this.#earlyClose = failure;
        for (const waiter of [...this.#closeWaiters]) waiter(failure);
        this.#closeWaiters.clear();
      },
    };
    try {
      this.#transport = await this.#connector(target, handlers, {
        signal: deadline.signal,
        keepAlive: this.#config.keepAlive,
      });
    } catch (error) {
      if (deadline.fired) throw deadline.reason;
      throw toConnectionError(error, describeHost(this.#host));
    }
    this.#socket.attach(this.#transport);
  }

  async #negotiateTls(deadline: Deadline): Promise<void> {
    const transport = this.#transport!;
    const { sslmode, sslrootcert } = this.#config;
    const where = describeHost(this.#host);
    const reply = new Promise<Uint8Array>((resolve) => (this.#tlsWaiter = resolve));
    transport.write(SSL_REQUEST);
    const chunk = await deadline.race(this.#guard(reply));
    this.#tlsWaiter = undefined;
    if (chunk.length !== 1 || (chunk[0] !== 0x53 && chunk[0] !== 0x4e)) {
      throw new ConnectionError("PROTOCOL_VIOLATION", `Unexpected reply to the TLS request from ${where}`);
    }
    if (chunk[0] === 0x4e) {
      if (sslmode === "prefer") return;
      throw new ConnectionError(
        "TLS_UNAVAILABLE",
        `The server at ${where} does not accept TLS (sslmode=${sslmode})`,
      );
    }
    const verify = sslmode === "verify-full"
      ? "full"
      : sslmode === "verify-ca" || (sslmode === "require" && sslrootcert !== undefined)
      ? "ca"
      : "none";
    try {
      await deadline.race(
        this.#guard(transport.startTls({
          servername: this.#host.host,
          ca: sslrootcert === undefined ? undefined : [sslrootcert],
          verify,
        })),
      );
    } catch (error) {
      if (deadline.fired) throw error;
      this.#handshakeFailed = true;
      throw toConnectionError(error, where);
    }
  }

  #startPostgresJs(): PgSql {
    const config = this.#config;
    const password = config.password;
    const onNotice = this.#settings.onNotice;
    const sql = withoutProcessEnv(() =>
      (postgres as unknown as PgFactory)({
        host: this.#host.host,
        port: this.#host.port,
        user: config.user,
        // A function keeps the password out of the options object and stops the PGPASSWORD fallback.
        pass: () => password ?? "",
        database: config.database,
        max: 1,
        ssl: false,
        sslnegotiation: null,
        idle_timeout: 0,
        max_lifetime: 0,
        connect_timeout: 0,
        max_pipeline: 100,
        backoff: 0,
        keep_alive: 0,
        prepare: config.prepare,
        debug: false,
        fetch_types: false,
        publications: "alltables",
        target_session_attrs: null,
        connection: { application_name: config.applicationName ?? "", ...config.params },
        // A plain object cannot hold a "__proto__" key by assignment: postgres.js gets a safe stand-in.
        transform: { column: { from: (name: string) => name === "__proto__" ? PROTO_COLUMN : name } },
        onnotice: (notice: PgJsError) => {
          const own = this.#onNotice;
          if (onNotice === undefined && own === undefined) return;
          const fields = fieldsOf(notice);
          if (onNotice !== undefined) onNotice(new PostgresError(fields));
          own?.(fields);
        },
        onclose: () => {
          if (!this.#closed) this.#lose(new ConnectionError("CONNECTION_LOST", "The connection was closed"));
        },
        socket: () => this.#socketFactory(),
      })
    );
    // postgres.js writes a string bound to json/jsonb as a JSON string; the pool sends plain objects as
    // their JSON text, so such a string is JSON text: the shared rule (before the arrays take it).
    sql.options.serializers[OID.json] = serializeJsonParam;
    sql.options.serializers[OID.jsonb] = serializeJsonParam;
    // postgres.js writes a string bound to bool as 'f' unless it is "true", a string bound to a date type
    // through new Date() (microseconds and offsets lost), -0 as 0, [object Object] in arrays: the shared
    // rules instead, so that a value is never sent as another (see ../param_text.ts).
    installParamText(sql.options.serializers);
    installArrayTypes(sql.options);
    guardSerializers(sql.options.serializers);
    // A query that is never executed, only to reach postgres.js's query prototype.
    fixQueryOrigin(sql.unsafe(""));
    return sql;
  }

  #socketFactory(): PgSocket {
    if (!this.#socketHanded && !this.#closed) {
      this.#socketHanded = true;
      return this.#socket;
    }
    throw this.#closedError();
  }

  /** Rejects when the connection closes first. */
  #guard<T>(promise: Promise<T>): Promise<T> {
    if (this.#closed) {
      promise.catch(noop);
      return Promise.reject(this.#lossError ?? this.#closedError());
    }
    return new Promise<T>((resolve, reject) => {
      const onClosed = (error: Error): void => reject(error);
      this.#closeWaiters.add(onClosed);
      promise.then(
        (v) => (this.#closeWaiters.delete(onClosed), resolve(v)),
        (e) => (this.#closeWaiters.delete(onClosed), reject(e)),
      );
    });
  }

  /** Drops everything after a failed open; nothing is left open and no listener is told. */
  #abandon(): void {
    this.#notified = true;
    this.#closed = true;
    this.#transport?.destroy();
    this.#sql?.end({ timeout: 0 }).catch(noop);
    this.#finalize(undefined);
  }

  // ---------------------------------------------------------------- closing

  #closedError(): InterfaceError {
    return new InterfaceError("CONNECTION_CLOSED", "The connection is closed", { cause: this.#lossError });
  }

  #transportClosed(error: Error | undefined): void {
    if (!this.#closed) {
      const loss = this.#fatal !== undefined ? new PostgresError(this.#fatal) : toConnectionError(
        error ?? Object.assign(new Error("the connection closed"), { code: "CONNECTION_LOST" }),
        describeHost(this.#host),
      );
      this.#lose(loss);
    }
    // postgres.js learns about the close only after the connection is marked dead.
    this.#socket.closed(error);
    this.#finalize(this.#lossError);
  }

  /** Marks the connection dead because of `error` and ends postgres.js without giving it another query. */
  #lose(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lossError = error;
    this.#sql?.end({ timeout: 0 }).catch(noop);
    this.#transport?.destroy();
    this.#finalize(error);
  }

  #finalize(error: Error | undefined): void {
    if (this.#finalized) return;
    this.#finalized = true;
    this.#closed = true;
    this.#listeners.clear();
    const failure = error ?? this.#closedError();
    for (const waiter of [...this.#closeWaiters]) waiter(failure);
    this.#closeWaiters.clear();
    for (const waiter of this.#cycleWaiters) waiter.resolve();
    this.#cycleWaiters = [];
    const own = this.#ownWaiters;
    this.#ownWaiters = [];
    for (const waiter of own) waiter.reject(failure);
    this.#ownAlarm?.cancel();
    this.#ownAlarm = undefined;
    const listener = this.#onClose;
    if (listener !== undefined && !this.#notified) {
      this.#notified = true;
      listener(error);
    }
  }

  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const failure = this.#closedError();
    for (const waiter of [...this.#closeWaiters]) waiter(failure);
    this.#closeWaiters.clear();
    const seconds = options.timeout ?? 10;
    this.#closing = (async () => {
      const transportGone = new Promise<void>((resolve) => {
        if (this.#socket.readyState === "closed") resolve();
        else this.#socket.once("close", () => resolve());
      });
      try {
        await closeWithin(this.#watchdog, seconds * 1000, [
          this.#sql?.end({ timeout: seconds }) ?? RESOLVED,
          transportGone,
        ]);
      } finally {
        this.#transport?.destroy();
        this.#finalize(undefined);
      }
    })();
    return this.#closing;
  }

  ref(): void {
    this.#transport?.ref();
  }

  unref(): void {
    this.#transport?.unref();
  }

  terminate(): void {
    if (this.#finalized) return;
    this.#closed = true;
    this.#transport?.destroy();
    this.#sql?.end({ timeout: 0 }).catch(noop);
    this.#finalize(undefined);
  }

  // ---------------------------------------------------------------- tap events

  #onCycle(cycle: Cycle): void {
    this.#cycleLog.push(cycle);
    if (this.#cycleWaiters.length === 0) return;
    const cycles = this.#tap.cycles;
    const ready = this.#cycleWaiters.filter((w) => cycles > w.after);
    this.#cycleWaiters = this.#cycleWaiters.filter((w) => cycles <= w.after);
    for (const waiter of ready) waiter.resolve();
  }

  /** A statement the driver wrote itself (the reset) was answered. */
  #onSwallowed(cycle: Cycle): void {
    const waiter = this.#ownWaiters.shift();
    if (this.#ownWaiters.length === 0 && this.#ownAlarm !== undefined) {
      // Nothing of ours is pending any more: the bound goes now, not when it would have fired
      // (an armed alarm would keep the process alive for the whole reset bound after every release).
      this.#ownAlarm.cancel();
      this.#ownAlarm = undefined;
    }
    if (cycle.error !== undefined && !waiter?.tolerate?.includes(cycle.error.code)) {
      this.#poisoned = true;
      const error = new PostgresError(cycle.error);
      this.#lose(error);
      waiter?.reject(error);
      return;
    }
    waiter?.resolve();
  }

  /** Resolves once every statement the driver wrote itself has been answered (or the connection closed). */
  #ownAnswered(): Promise<void> {
    const last = this.#ownWaiters.at(-1);
    if (last === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = last;
      const resolveOld = waiter.resolve;
      const rejectOld = waiter.reject;
      waiter.resolve = () => (resolveOld(), resolve());
      waiter.reject = (e) => (rejectOld(e), resolve());
    });
  }

  /**
   * Resolves once every answer postgres.js asked for has arrived. (postgres.js
   * settles a failed statement at its `ErrorResponse`, before the
   * `ReadyForQuery` that ends it; the driver's own statements must not start
   * in between, or the tap would cut the wrong answer.)
   */
  #wireIdle(): Promise<void> {
    const syncs = this.#socket.syncs;
    return this.#tap.cycles >= syncs ? Promise.resolve() : this.#cycleAfter(syncs - 1);
  }

  /**
   * Writes a simple query straight to the server, behind whatever postgres.js
   * sent before and ahead of whatever it sends next; the tap cuts the answer
   * out of the stream, so postgres.js never sees it. Only call while
   * postgres.js is idle (inside `#run`, or when no operation is queued and the
   * wire is idle). Resolves once the server answered.
   */
  #writeOwn(text: string, timeout: number | undefined, tolerate?: readonly string[]): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#sendOwn(text, timeout, tolerate, resolve, reject));
  }

  /** {@linkcode PostgresConnection.#writeOwn} with callbacks instead of a promise (none needed when nobody waits). */
  #sendOwn(
    text: string,
    timeout: number | undefined,
    tolerate: readonly string[] | undefined,
    resolve: () => void,
    reject: (error: Error) => void,
  ): void {
    let message = this.#resetMessages.get(text);
    if (message === undefined) {
      const body = new TextEncoder().encode(text);
      message = new Uint8Array(body.length + 6);
      message[0] = 0x51; // 'Q'
      new DataView(message.buffer).setInt32(1, body.length + 5);
      message.set(body, 5);
      message[body.length + 5] = 0;
      if (this.#resetMessages.size < 4) this.#resetMessages.set(text, message);
    }
    if (this.#tap.cycles < this.#socket.syncs) {
      throw new InterfaceError(
        "CONNECTION_BUSY",
        "Internal error: the driver wrote while an answer was pending",
      );
    }
    const deadline = timeout === undefined || timeout <= 0
      ? Infinity
      : this.#watchdog.clock.now() + timeout * 1000;
    this.#ownWaiters.push({ resolve, reject, deadline, tolerate });
    this.#tap.swallow();
    this.#socket.writeAhead(message);
    if (deadline < (this.#ownAlarm?.at ?? Infinity)) this.#armOwn(deadline);
  }

  #armOwn(at: number): void {
    this.#ownAlarm?.cancel();
    this.#ownAlarm = this.#watchdog.at(at, this.#ownDue);
  }

  /** Closes the connection when one of the driver's own statements is not answered in time. */
  readonly #ownDue = (): void => {
    this.#ownAlarm = undefined;
    const now = this.#watchdog.clock.now();
    let next = Infinity;
    for (const waiter of this.#ownWaiters) {
      if (waiter.deadline <= now) {
        // The statements queued behind the reset are lost with the connection.
        this.#lose(
          new ConnectionError(
            "CONNECTION_LOST",
            "The server did not answer the session reset in time; the connection was closed",
          ),
        );
        return;
      }
      if (waiter.deadline < next) next = waiter.deadline;
    }
    if (next !== Infinity && !this.#closed) this.#armOwn(next);
  };

  #onNotification(pid: number, channel: string, payload: string): void {
    const listener = this.#listeners.get(channel);
    if (listener === undefined) return;
    try {
      listener(payload, channel, pid);
    } catch {
      // A listener's failure must not break the byte stream.
    }
  }

  /** Resolves once the tap saw more than `after` cycles (or the connection closed). */
  #cycleAfter(after: number): Promise<void> {
    if (this.#tap.cycles > after || this.#finalized) return Promise.resolve();
    return new Promise<void>((resolve) => this.#cycleWaiters.push({ after, resolve }));
  }

  // ---------------------------------------------------------------- running statements

  #mapError(error: unknown): unknown {
    if (error instanceof PoolError) return error;
    if (isPgJsPostgresError(error)) return fromPgJsError(error);
    if (this.#closed) return this.#lossError ?? this.#closedError();
    const code = (error as { code?: unknown } | undefined)?.code;
    if (code === "CONNECTION_CLOSED" || code === "CONNECTION_DESTROYED" || code === "CONNECTION_ENDED") {
      return new ConnectionError("CONNECTION_LOST", "The connection was closed", { cause: error });
    }
    return error;
  }

  /**
   * Runs one operation after the previous one (and any pending cancellation)
   * finished. The caller's promise settles at the deadline; the operation
   * itself is cancelled on the server (or, with `"terminate"`, the connection
   * is dropped).
   */
  #run<T>(
    options: QueryOptions | undefined,
    start: (abort: Abandoned) => Promise<T>,
    onDeadline: OnDeadline = "cancel",
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    try {
      checkQueryOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const timeout = options?.timeout;
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const previous = this.#tail;
    let release!: () => void;
    this.#pending++;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let started = false;
      let finished = false;
      let running: Promise<void> | undefined;
      let alarm: Alarm | undefined;
      const internal: Abandoned = { aborted: false, reason: undefined };
      const cleanup = (): void => {
        alarm?.cancel();
        signal?.removeEventListener("abort", onAbort);
        this.#closeWaiters.delete(onClosed);
      };
      const settle = (fn: () => void): void => {
        if (done) return;
        done = true;
        cleanup();
        fn();
      };
      const fire = (reason: unknown): void => {
        if (done) return;
        settle(() => reject(reason));
        if (!started || finished) return;
        internal.aborted = true;
        internal.reason = reason;
        if (onDeadline === "terminate") this.terminate();
        else this.#cancelRunning(running!, () => finished);
      };
      const onAbort = (): void => fire(signal!.reason);
      let cyclesAtStart = 0;
      // A reply that arrived in full (its ReadyForQuery seen) just before the close must still
      // win: postgres.js has resolved it already, so give that one turn of the event loop. (A turn
      // of the event loop, not a bound in time: the runtime's timer, not the clock's.)
      const onClosed = (error: Error): void => {
        if (started && !finished && this.#tap.cycles > cyclesAtStart) {
          setTimeout(() => settle(() => reject(error)), 0);
        } else settle(() => reject(error));
      };
      if (timeout !== undefined) {
        alarm = this.#watchdog.after(timeout * 1000, () => {
          alarm = undefined;
          fire(
            new PoolTimeoutError(
              "QUERY_TIMEOUT",
              `The query did not finish within ${timeout}s and was cancelled`,
            ),
          );
        });
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#closeWaiters.add(onClosed);
      previous.then(() => this.#cancelling).then(() => {
        if (done || this.#closed) {
          if (!done) settle(() => reject(this.#closedError()));
          this.#pending--;
          release();
          return;
        }
        started = true;
        cyclesAtStart = this.#tap.cycles;
        this.#cycleLog = [];
        let promise: Promise<T>;
        try {
          promise = start(internal);
        } catch (error) {
          promise = Promise.reject(error);
        }
        running = promise.then(
          (value) => {
            finished = true;
            this.#pending--;
            settle(() => resolve(value));
          },
          (error) => {
            finished = true;
            this.#pending--;
            const mapped = this.#mapError(error);
            settle(() => reject(mapped));
          },
        ).finally(release);
      });
    });
  }

  /** Cancels the running statement(s) until `running` settles; terminates when that takes too long. */
  #cancelRunning(running: Promise<void>, isFinished: () => boolean): void {
    if (this.#cancelling !== undefined) return;
    const graceMs = (this.#settings.cancelGrace ?? 5) * 1000;
    this.#cancelling = (async () => {
      let sent = false;
      while (!isFinished() && !this.#closed) {
        const before = this.#tap.cycles;
        try {
          // A cancel hits whatever the backend runs when it arrives: never let it land on the
          // driver's own statements (a pipelined reset runs just ahead of the next statement).
          await this.#ownAnswered();
          if (isFinished() || this.#closed) break;
          await this.#sendCancel();
          sent = true;
        } catch (error) {
          this.#lose(toConnectionError(error, describeHost(this.#host)));
          return;
        }
        if (isFinished() || this.#closed) break;
        const outcome = await awaitCancelled(this.#watchdog, graceMs, running, this.#cycleAfter(before));
        if (outcome === "stuck" && !isFinished()) {
          this.#lose(
            new PoolTimeoutError(
              "QUERY_TIMEOUT",
              "A cancelled query did not finish in time; the connection was closed",
            ),
          );
          return;
        }
      }
      if (sent && !this.#closed) await this.#absorbStrayCancel();
    })().finally(() => (this.#cancelling = undefined));
  }

  /**
   * A cancel request can reach the server just after the statement it was
   * meant for ended, and would then cancel the next one. So after a cancel,
   * before anything else runs, the driver sends a throwaway statement of its
   * own for a late cancel to land on (its 57014 is expected and ignored).
   */
  async #absorbStrayCancel(): Promise<void> {
    try {
      await this.#wireIdle();
      // 57014: the late cancel landed here; 25P02: the cancel aborted the open transaction, and a
      // refused statement changes nothing either.
      await this.#writeOwn("SELECT 1", this.#settings.cancelGrace ?? 5, ["57014", "25P02"]);
    } catch {
      // the connection is gone: there is nothing left to protect
    }
  }

  /** Sends a `CancelRequest` on a new transport and waits until the server closed it. */
  #sendCancel(): Promise<void> {
    return sendCancelRequest(
      this.#watchdog,
      this.#connector,
      targetFor(this.#host),
      this.#tap.pid,
      this.#tap.secret,
      (this.#config.connectTimeout || 30) * 1000,
    );
  }

  query(sql: string, args: readonly unknown[], options?: DriverQueryOptions): Promise<QueryResult> {
    return this.#run(options, async () => {
      this.#queryCount++;
      const query = this.#sql!.unsafe(sql, args as unknown[], {
        prepare: this.#statements.admit(sql, 1),
      });
      const arrayRows = options?.arrayRows === true;
      const result = await (arrayRows ? query.values() : query);
      return toQueryResult(result, this.#cycleLog.at(-1), arrayRows);
    });
  }

  /**
   * postgres.js describes through a named statement only: it is deallocated right after (postgres.js
   * runs a text without arguments as a simple query, so nothing of it would ever use it). With
   * `prepare: false` (a transaction pooler may run the DEALLOCATE on another server session) this
   * rejects with `UNSUPPORTED`.
   */
  describe(sql: string, options?: QueryOptions): Promise<StatementDescription> {
    if (!this.#config.prepare) {
      return Promise.reject(
        new InterfaceError(
          "UNSUPPORTED",
          "Cannot describe a statement with the postgres.js driver when prepare is false as postgres.js " +
            "describes through a named statement; use the native driver",
        ),
      );
    }
    return this.#run(options, async () => {
      this.#queryCount += 2;
      const statement = await this.#sql!.unsafe(sql, []).describe() as {
        name: string;
        types: number[];
        columns: { name: string; type: number }[];
      };
      await this.#sql!.unsafe(`DEALLOCATE ${quoteIdentifier(statement.name)}`);
      return {
        parameterTypes: [...statement.types],
        columns: statement.columns.map((c) => ({ name: c.name, typeOid: c.type })),
      };
    });
  }

  queryMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    options?: DriverQueryOptions,
  ): Promise<QueryResult[]> {
    return this.#run(options, async () => {
      const sqlJs = this.#sql!;
      const arrayRows = options?.arrayRows === true;
      const prepare = this.#statements.admit(sql, argsList.length);
      // Outside a transaction the batch runs in one of its own, so it takes effect whole or not at
      // all: after a failed run the later ones fail too and COMMIT rolls back. Still one pipeline
      // (postgres.js sends queries in the order they are awaited). Inside a transaction, a failed run
      // fails that transaction, which is the caller's to end.
      const wrap = argsList.length > 1 && this.#tap.status === "idle";
      const all: PgQuery[] = [];
      if (wrap) all.push(sqlJs.unsafe("BEGIN"));
      for (const args of argsList) {
        const query = sqlJs.unsafe(sql, args as unknown[], { prepare });
        all.push(arrayRows ? query.values() : query);
      }
      if (wrap) all.push(sqlJs.unsafe("COMMIT"));
      this.#queryCount += argsList.length; // the runs; the BEGIN/COMMIT around them are the driver's
      const settled = await Promise.allSettled(all);
      // The first failure in order is the cause (later runs only report the aborted transaction);
      // a failed COMMIT (say, a deferred constraint) is one too.
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed !== undefined) throw failed.reason;
      const cycles = this.#cycleLog.length === settled.length ? this.#cycleLog : [];
      const first = wrap ? 1 : 0;
      return argsList.map((_, i) =>
        toQueryResult(
          (settled[first + i] as PromiseFulfilledResult<unknown>).value,
          cycles[first + i],
          arrayRows,
        )
      );
    });
  }

  copyOut(sql: string, sink: (chunk: Uint8Array) => unknown, options?: QueryOptions): Promise<string> {
    return this.#run(options, async (abort) => {
      this.#queryCount++;
      const before = this.#tap.cycles;
      const stream = await this.#sql!.unsafe(sql).readable();
      try {
        for await (const chunk of stream) {
          if (!abort.aborted) await sink(chunk);
        }
      } finally {
        // postgres.js pauses the socket when the stream buffer is full and resumes it on read();
        // when the last pause comes with the end of the COPY, nothing resumes it.
        this.#socket.resume();
      }
      await this.#guard(this.#cycleAfter(before));
      return this.#copyTag();
    });
  }

  copyIn(sql: string, source: AsyncIterable<Uint8Array>, options?: QueryOptions): Promise<string> {
    return this.#run(options, async (abort) => {
      this.#queryCount++;
      const before = this.#tap.cycles;
      const stream = await this.#sql!.unsafe(sql).writable();
      // postgres.js destroys the stream on a server error; the error is reported from the tap instead.
      stream.on("error", noop);
      const ended = () => this.#tap.cycles > before;
      let sourceError: { error: unknown } | undefined;
      try {
        for await (const chunk of source) {
          if (abort.aborted || ended() || stream.destroyed) break;
          if (!stream.write(chunk)) await this.#drained(stream, before);
        }
      } catch (error) {
        sourceError = { error };
      }
      if (sourceError !== undefined || abort.aborted) {
        const reason = sourceError?.error ?? abort.reason;
        if (!ended() && !stream.destroyed) {
          stream.destroy(new Error(reason instanceof Error ? reason.message : "COPY aborted by the client"));
        }
        await this.#guard(this.#cycleAfter(before));
        throw reason;
      }
      if (!ended() && !stream.destroyed) stream.end();
      await this.#guard(this.#cycleAfter(before));
      return this.#copyTag();
    });
  }

  #drained(stream: NodeWritable, before: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
      this.#cycleAfter(before).then(done);
    });
  }

  #copyTag(): string {
    const cycle = this.#cycleLog.at(-1);
    if (cycle?.error !== undefined) throw new PostgresError(cycle.error);
    return cycle?.tags.at(-1) ?? "COPY";
  }

  listen(channel: string, listener: NotificationListener): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const previous = this.#listeners.get(channel);
    this.#listeners.set(channel, listener);
    return this.#run(undefined, async () => {
      this.#queryCount++;
      await this.#sql!.unsafe(`LISTEN ${quoteIdentifier(channel)}`);
    }).catch((error) => {
      if (this.#listeners.get(channel) === listener) {
        if (previous === undefined) this.#listeners.delete(channel);
        else this.#listeners.set(channel, previous);
      }
      throw error;
    });
  }

  unlisten(channel: string): Promise<void> {
    return this.#run(undefined, async () => {
      this.#queryCount++;
      await this.#sql!.unsafe(`UNLISTEN ${quoteIdentifier(channel)}`);
      this.#listeners.delete(channel);
    });
  }

  /**
   * Rolls back an open transaction (per the server's transaction status) and,
   * with `query`, sends the reset statements — as one message written by the
   * driver itself, whose answer postgres.js never sees. With `pipeline` it
   * resolves as soon as the message is written: the next statement queues
   * behind it on the wire, and a failure of the reset closes the connection
   * before anything else is read.
   */
  reset(
    options: { query: boolean; signal?: AbortSignal; pipeline?: boolean; timeout?: number },
  ): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const { query, signal, pipeline = false, timeout } = options;
    if (signal?.aborted) {
      this.terminate();
      return Promise.reject(signal.reason);
    }
    // The usual release: no operation queued or running, no cancel under way, every answer in.
    // Queued, the reset would start as soon as it got its turn, which is now: it is written at
    // once instead, without the queue's promises. (An abortable reset takes the queue.)
    if (
      pipeline && signal === undefined && this.#pending === 0 && this.#cancelling === undefined &&
      this.#tap.cycles >= this.#socket.syncs
    ) {
      try {
        this.#resetNow(query, timeout, noop, noop);
      } catch (error) {
        this.terminate();
        return Promise.reject(error);
      }
      return RESOLVED;
    }
    return this.#run({ signal }, async () => {
      await this.#wireIdle();
      if (this.#closed) throw this.#closedError();
      if (pipeline) this.#resetNow(query, timeout, noop, noop);
      else await new Promise<void>((resolve, reject) => this.#resetNow(query, timeout, resolve, reject));
    }, "terminate").catch((error) => {
      this.terminate();
      throw error;
    });
  }

  /**
   * Writes the rollback (when the server reported a transaction) and, with
   * `query`, the reset statements as one message; `resolve` or `reject` is
   * told the answer (a failure closes the connection either way).
   */
  #resetNow(
    query: boolean,
    timeout: number | undefined,
    resolve: () => void,
    reject: (error: Error) => void,
  ): void {
    const rollback = this.#tap.status !== "idle";
    const statements = query && this.#resetSql !== "" ? this.#resetSql : "";
    if (query) this.#listeners.clear();
    if (!rollback && statements === "") return resolve();
    this.#queryCount += (rollback ? 1 : 0) + (statements === "" ? 0 : 1);
    this.#sendOwn(rollback ? `ROLLBACK;\n${statements}` : statements, timeout, undefined, resolve, reject);
    // What the server will report once it ran the rollback; a failure closes the connection.
    this.#tap.status = "idle";
  }

  /**
   * Checks libpq's `target_session_attrs` against this server, from reported
   * parameters where the server sends them (PostgreSQL 14+), else by asking.
   */
  async matchesSessionAttrs(attrs: string, signal?: AbortSignal): Promise<boolean> {
    if (attrs === "any") return true;
    let readOnly = this.#tap.parameters.get("default_transaction_read_only");
    let standby = this.#tap.parameters.get("in_hot_standby");
    if (readOnly === undefined || standby === undefined) {
      const result = await this.query(
        "SELECT current_setting('transaction_read_only') AS ro, pg_catalog.pg_is_in_recovery()::text AS rec",
        [],
        { signal },
      );
      const row = result.rows[0] as { ro: string; rec: string };
      readOnly = row.ro;
      standby = row.rec === "true" ? "on" : "off";
    }
    // As libpq: read-write needs both off (a hot standby reports default_transaction_read_only=off
    // but in_hot_standby=on); read-only accepts either on.
    switch (attrs) {
      case "read-write":
        return readOnly === "off" && standby === "off";
      case "read-only":
        return readOnly === "on" || standby === "on";
      case "primary":
        return standby === "off";
      case "standby":
      case "prefer-standby":
        return standby === "on";
      default:
        return true;
    }
  }
}

/**
 * Opens one connection to `host`, eagerly: TCP (or unix socket), TLS per
 * `sslmode`, startup and authentication. `signal` (a caller's signal, or the
 * attempt's {@linkcode Deadline}: timeout plus signal) bounds the attempt; on
 * failure nothing is left open. `watchdog` times the connection's bounds
 * (query timeouts, the cancel grace, the reset and close bounds); the driver
 * passes its own, on its clock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { openPostgresConnection } from "./pg_connection.ts";
 * import { resolveConnectOptions } from "../dsn.ts";
 * import { nodeConnector } from "../../runtime/node.ts";
 * const config = resolveConnectOptions({}, process.env); // PGHOST, PGPORT, ... or DATABASE_URL
 * const con = await openPostgresConnection(nodeConnector, config, config.hosts[0]!, AbortSignal.timeout(5000));
 * assert.ok(con.pid > 0);
 * con.terminate();
 * ```
 */
export async function openPostgresConnection(
  connector: Connector,
  config: ResolvedConnectOptions,
  host: HostAddress,
  signal: AbortSignal | Deadline,
  settings: PostgresDriverSettings = {},
  watchdog: Watchdog = Watchdog.of(systemClock),
): Promise<PostgresConnection> {
  const connection = new PostgresConnection(connector, config, host, settings, watchdog);
  if (signal instanceof Deadline) {
    await connection.open(signal);
    return connection;
  }
  const deadline = new Deadline(watchdog, undefined, signal, "CONNECT_TIMEOUT", "Timed out connecting");
  try {
    await connection.open(deadline);
  } finally {
    deadline.dispose();
  }
  return connection;
}

/**
 * Puts the shared parameter rules (`../param_text.ts`) in a postgres.js serializer table: bool, bytea and
 * the date types their own, every other built-in scalar type (and 0, a type not described) `paramText()`.
 * json and jsonb keep theirs; the array types are installed afterwards over these.
 */
function installParamText(serializers: Record<number, ((value: unknown) => string) | undefined>): void {
  serializers[0] = paramText;
  for (const [element] of BUILTIN_ARRAYS) {
    if (element !== OID.json && element !== OID.jsonb) serializers[element] = paramText;
  }
  serializers[OID.bool] = serializeBoolParam;
  serializers[OID.bytea] = serializeByteaParam;
  serializers[OID.date] = serializeDateParam;
  serializers[OID.timestamp] = serializeDateParam;
  serializers[OID.timestamptz] = serializeDateParam;
}

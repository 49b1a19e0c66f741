/**
 * A {@linkcode DriverConnection} speaking the PostgreSQL protocol itself:
 * one parser, one state union, a queue of in-flight operations matched in
 * order with their answers (pipelining), the reset written into the stream.
 *
 * @module
 */

import type {
  DriverConnection,
  NotificationListener,
  QueryOptions,
  QueryResult,
  ServerVersion,
  TransactionStatus,
} from "../../core/driver.ts";
import {
  ConnectionError,
  InterfaceError,
  PoolError,
  PoolTimeoutError,
  PostgresError,
} from "../../core/errors.ts";
import type { Watchdog } from "../../core/watchdog.ts";
import type { Connector, Transport, TransportTarget } from "../../runtime/transport.ts";
import { StatementCache } from "../statement_cache.ts";
import { md5Password, ScramSession } from "./auth.ts";
import {
  parseFields,
  quoteIdent,
  toPostgresError,
  writeBind,
  writeDescribe,
  writeExecute,
  writeParse,
  writeQuery,
  writeSync,
} from "./messages.ts";
import { type Fields, Operation } from "./operation.ts";
import { inferParamOid, serializeParam, type TypeRegistry } from "./values/index.ts";
import { cstrEnd, int32, utf8, WireReader } from "./wire_reader.ts";
import { WireWriter } from "./wire_writer.ts";

/** How long a cancel request's socket waits for the server to close it before closing it itself. */
const CANCEL_CLOSE_WAIT_MS = 10_000;

/** The statements that clear session state, in one simple query. */
export const RESET_SQL =
  "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;\nDISCARD TEMP;";

/** A named statement on the server. */
interface Prepared {
  name: string;
  fields: Fields | undefined;
  described: boolean;
}

type State =
  | { kind: "starting" }
  | { kind: "open" }
  | { kind: "closing" }
  | { kind: "closed"; error: Error | undefined };

/** What a connection needs from its driver. */
export interface NativeSettings {
  /** Opens the transport of a cancel request. */
  connector: Connector;
  /** Where the connection goes (the cancel request goes there too). */
  target: TransportTarget;
  /** The driver's watchdog (one timer for all deadlines). */
  watchdog: Watchdog;
  /** Parsers by oid. */
  types: TypeRegistry;
  /** Named statements at all. */
  prepare: boolean;
  /** Bound of named statements. */
  statementCacheSize: number;
}

function parseVersion(text: string): ServerVersion {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  return { major: Number(m?.[1] ?? 0), minor: Number(m?.[2] ?? 0), micro: Number(m?.[3] ?? 0), text };
}

/**
 * One native connection; made by the native driver, usable once
 * {@linkcode NativeConnection.startup} resolved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { createNativeDriver } from "./driver.ts";
 * import { nodeConnector } from "../../runtime/node.ts";
 * // A DSN, or the libpq environment (PGHOST, PGPORT, PGUSER, ...) when there is none.
 * const driver = createNativeDriver(nodeConnector, { env: process.env });
 * const con = await driver.connect({ dsn: process.env.DATABASE_URL });
 * assert.deepEqual((await con.query("SELECT $1::int AS n", [1])).rows, [{ n: 1 }]);
 * await con.close();
 * ```
 */
export class NativeConnection implements DriverConnection {
  #state: State = { kind: "starting" };
  #transport: Transport | undefined;
  readonly #settings: NativeSettings;
  readonly #writer = new WireWriter();
  readonly #reader: WireReader;
  readonly #ops: Operation[] = [];
  #opHead = 0;
  readonly #cache: StatementCache;
  readonly #prepared = new Map<string, Prepared>();
  #nextName = 0;
  #pid = 0;
  #secret = 0;
  #status: TransactionStatus = "idle";
  #version: ServerVersion = parseVersion("0");
  #queryCount = 0;
  #onClose: ((error: Error | undefined) => void) | undefined;
  #listeners = new Map<string, NotificationListener>();
  #pendingCancel: Promise<void> | undefined;
  #drainWaiters: (() => void)[] = [];
  #closeWaiters: (() => void)[] = [];
  #handshake: ((type: number, b: Uint8Array, start: number, end: number) => void) | undefined;
  #handshakeFail: ((error: Error) => void) | undefined;
  /** Set by a failed pipelined reset: nothing after it may be delivered. */
  #poisoned = false;

  /** @param settings What the driver provides. */
  constructor(settings: NativeSettings) {
    this.#settings = settings;
    this.#cache = new StatementCache(settings.prepare ? settings.statementCacheSize : 0);
    this.#reader = new WireReader((type, b, start, end) => this.#message(type, b, start, end));
  }

  /** Attaches the transport (after any TLS negotiation). */
  attach(transport: Transport): void {
    this.#transport = transport;
  }

  /** Feeds bytes from the transport. */
  data(chunk: Uint8Array): void {
    if (this.#state.kind === "closed") return;
    this.#reader.feed(chunk);
  }

  /** The transport drained. */
  drain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  /** The transport closed. */
  transportClosed(error?: Error): void {
    const local = this.#state.kind === "closing";
    this.#transition(
      local
        ? undefined
        : new ConnectionError("CONNECTION_LOST", "The connection was closed", { cause: error }),
    );
  }

  get pid(): number {
    return this.#pid;
  }

  get serverVersion(): ServerVersion {
    return this.#version;
  }

  get queryCount(): number {
    return this.#queryCount;
  }

  get transactionStatus(): TransactionStatus {
    return this.#status;
  }

  isClosed(): boolean {
    return this.#state.kind === "closed";
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#onClose = listener;
  }

  /**
   * Runs the startup exchange (StartupMessage already known as `startup`),
   * authentication included; resolves at the first ReadyForQuery.
   */
  startup(startup: Uint8Array, user: string, password: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let scram: ScramSession | undefined;
      const fail = (error: Error): void => {
        if (this.#handshakeFail === undefined) return;
        this.#handshake = undefined;
        this.#handshakeFail = undefined;
        reject(error);
        this.terminate();
      };
      this.#handshakeFail = fail;
      const needPassword = (): string => {
        if (password === undefined) {
          throw new ConnectionError("PASSWORD_REQUIRED", "The server asks for a password and none was given");
        }
        return password;
      };
      this.#handshake = (type, b, start, end) => {
        try {
          if (type === 0x45) return fail(toPostgresError(b, start, end));
          if (type === 0x5a) {
            this.#handshake = undefined;
            this.#handshakeFail = undefined;
            this.#state = { kind: "open" };
            return resolve();
          }
          if (type !== 0x52) return;
          const code = int32(b, start);
          const w = this.#writer;
          if (code === 3) {
            w.begin(0x70).cstr(needPassword()).end();
          } else if (code === 5) {
            w.begin(0x70).cstr(md5Password(user, needPassword(), b.slice(start + 4, start + 8))).end();
          } else if (code === 10) {
            const mechanisms = utf8(b, start + 4, end).split("\0");
            if (!mechanisms.includes("SCRAM-SHA-256")) {
              throw new ConnectionError(
                "AUTH_UNSUPPORTED",
                `No supported SASL mechanism in ${mechanisms.join(" ")}`,
              );
            }
            scram = new ScramSession(needPassword());
            const first = scram.first();
            w.begin(0x70).cstr("SCRAM-SHA-256");
            const at = new TextEncoder().encode(first);
            w.int32(at.length).bytes(at).end();
          } else if (code === 11) {
            const challenge = utf8(b, start + 4, end);
            const s = scram!;
            s.final(challenge).then((final) => {
              this.#writer.begin(0x70).text(final);
              this.#writer.end();
              this.#flush();
            }, fail);
            return;
          } else if (code === 12) {
            scram!.verify(utf8(b, start + 4, end));
            return;
          } else if (code === 0) {
            return;
          } else {
            throw new ConnectionError("AUTH_UNSUPPORTED", `Unsupported authentication request ${code}`);
          }
          this.#flush();
        } catch (error) {
          fail(error as Error);
        }
      };
      this.#transport!.write(startup);
    });
  }

  #flush(): void {
    if (!this.#writer.empty) this.#transport?.write(this.#writer.take());
  }

  #message(type: number, b: Uint8Array, start: number, end: number): void {
    switch (type) {
      case 0x53: { // ParameterStatus
        const k = cstrEnd(b, start);
        const name = utf8(b, start, k);
        if (name === "server_version") this.#version = parseVersion(utf8(b, k + 1, cstrEnd(b, k + 1)));
        return;
      }
      case 0x4b: // BackendKeyData
        this.#pid = int32(b, start);
        this.#secret = int32(b, start + 4);
        return;
      case 0x4e: // NoticeResponse
        parseFields(b, start, end);
        return;
      case 0x41: { // NotificationResponse
        const pid = int32(b, start);
        const c = cstrEnd(b, start + 4);
        const channel = utf8(b, start + 4, c);
        const payload = utf8(b, c + 1, cstrEnd(b, c + 1));
        this.#listeners.get(channel)?.(payload, channel, pid);
        return;
      }
    }
    if (this.#handshake !== undefined) return this.#handshake(type, b, start, end);
    if (type === 0x5a) {
      const s = b[start];
      this.#status = s === 0x54 ? "transaction" : s === 0x45 ? "failed" : "idle";
    }
    const op = this.#ops[this.#opHead];
    if (op === undefined) {
      if (type === 0x45) {
        const error = toPostgresError(b, start, end);
        this.#transition(error);
      }
      return;
    }
    if (op.message(type, b, start, end)) {
      this.#ops[this.#opHead++] = undefined as unknown as Operation;
      if (this.#opHead === this.#ops.length) {
        this.#ops.length = 0;
        this.#opHead = 0;
      }
      if (!this.#poisoned) op.settle();
    }
  }

  /** The one transition to closed. */
  #transition(error: Error | undefined): void {
    if (this.#state.kind === "closed") return;
    this.#state = { kind: "closed", error };
    const failure = error ?? new InterfaceError("CONNECTION_CLOSED", "The connection is closed");
    const ops = this.#ops.splice(this.#opHead);
    this.#ops.length = 0;
    this.#opHead = 0;
    for (const op of ops) op.fail(failure);
    this.#handshakeFail?.(failure);
    this.#transport?.destroy();
    this.drain();
    for (const w of this.#closeWaiters) w();
    this.#closeWaiters = [];
    const listener = this.#onClose;
    this.#onClose = undefined;
    listener?.(error);
  }

  #closedError(): Error {
    const s = this.#state;
    return new InterfaceError("CONNECTION_CLOSED", "The connection is closed", {
      cause: s.kind === "closed" ? s.error : undefined,
    });
  }

  /** Queues an operation for what is in the writer and writes it. */
  #submit<T>(
    readies: number,
    options: QueryOptions | undefined,
    map: (results: QueryResult[]) => T,
    known?: Fields,
    onDescribed?: (fields: Fields | undefined) => void,
    setup?: (op: Operation) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const op = new Operation(
        this.#settings.types,
        readies,
        (r) => resolve(map(r)),
        reject,
        known,
        onDescribed,
      );
      setup?.(op);
      this.#ops.push(op);
      this.#queryCount++;
      this.#flush();
      if (options !== undefined) this.#bound(op, options);
    });
  }

  #bound(op: Operation, options: QueryOptions): void {
    const { timeout, signal } = options;
    if (timeout !== undefined && timeout > 0) {
      op.alarm = this.#settings.watchdog.after(timeout * 1000, () => {
        op.cancelReason = new PoolTimeoutError("QUERY_TIMEOUT", `The query was cancelled after ${timeout}s`);
        this.#cancel();
      });
    }
    if (signal !== undefined) {
      const onAbort = (): void => {
        op.cancelReason = signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
        this.#cancel();
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        const prior = op.onDone;
        op.onDone = () => {
          prior?.();
          signal.removeEventListener("abort", onAbort);
        };
      }
    }
  }

  /** Sends a CancelRequest over a second transport. */
  #cancel(): void {
    const { connector, target } = this.#settings;
    const w = new WireWriter(16);
    w.int32(16).int32(80877102).int32(this.#pid).int32(this.#secret);
    const message = w.take();
    const sent = (async () => {
      let done!: () => void;
      const closed = new Promise<void>((r) => (done = r));
      const t = await connector(target, { data: () => {}, drain: () => {}, close: () => done() }, {});
      t.write(message);
      // The server closes the socket once it handled the request, and only then do we (as libpq does):
      // closing first makes PgBouncer drop the cancel, and before 1.20 crash (pgbouncer/pgbouncer#801).
      const alarm = this.#settings.watchdog.after(CANCEL_CLOSE_WAIT_MS, () => t.destroy());
      await closed;
      alarm.cancel();
    })().catch(() => {});
    this.#pendingCancel = sent;
    sent.then(() => {
      if (this.#pendingCancel === sent) this.#pendingCancel = undefined;
    });
  }

  #ensureOpen(): void {
    if (this.#state.kind !== "open") throw this.#closedError();
  }

  /** Writes the extended-protocol messages of one statement run `argsList.length` times. */
  #writeExtended(sql: string, argsList: readonly (readonly unknown[])[]): {
    known?: Fields;
    onDescribed?: (f: Fields | undefined) => void;
  } {
    const w = this.#writer;
    const first = argsList[0] ?? [];
    let prepared = this.#prepared.get(sql);
    let name = "";
    let known: Fields | undefined;
    let onDescribed: ((f: Fields | undefined) => void) | undefined;
    let describePortal = true;
    if (prepared === undefined && this.#cache.admit(sql, argsList.length)) {
      prepared = { name: `n${this.#nextName++}`, fields: undefined, described: false };
      this.#prepared.set(sql, prepared);
      writeParse(w, prepared.name, sql, first.map(inferParamOid));
      writeDescribe(w, "S", prepared.name);
      const p = prepared;
      onDescribed = (f) => {
        p.fields = f;
        p.described = true;
      };
      name = p.name;
      describePortal = false;
    } else if (prepared !== undefined) {
      name = prepared.name;
      known = prepared.fields;
      // Not yet described (its Describe is still in flight), or without result columns: describe the portal.
      describePortal = known === undefined;
    } else {
      writeParse(w, "", sql, first.map(inferParamOid));
    }
    for (const args of argsList) {
      writeBind(w, name, args.map((a) => serializeParam(a).text));
      if (describePortal) writeDescribe(w, "P", "");
      writeExecute(w);
    }
    writeSync(w);
    return { known, onDescribed };
  }

  #forget(sql: string): (error: unknown) => never {
    return (error) => {
      const p = this.#prepared.get(sql);
      if (p !== undefined && !p.described) this.#prepared.delete(sql);
      throw error;
    };
  }

  query(sql: string, args: readonly unknown[], options?: QueryOptions): Promise<QueryResult> {
    try {
      this.#ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    if (args.length === 0 && sql.includes(";")) {
      writeQuery(this.#writer, sql);
      return this.#submit(1, options, (r) => r[r.length - 1] ?? { rows: [], columns: [], command: "" });
    }
    const { known, onDescribed } = this.#writeExtended(sql, [args]);
    const p = this.#submit(1, options, (r) => r[0]!, known, onDescribed);
    return onDescribed === undefined ? p : p.catch(this.#forget(sql));
  }

  queryMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    options?: QueryOptions,
  ): Promise<QueryResult[]> {
    try {
      this.#ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    if (argsList.length === 0) return Promise.resolve([]);
    // One Sync: the Executes run in one implicit transaction outside an explicit one.
    const { known, onDescribed } = this.#writeExtended(sql, argsList);
    const p = this.#submit(1, options, (r) => r, known, onDescribed);
    return onDescribed === undefined ? p : p.catch(this.#forget(sql));
  }

  async copyOut(sql: string, sink: (chunk: Uint8Array) => unknown, options?: QueryOptions): Promise<string> {
    this.#ensureOpen();
    let chain: Promise<unknown> = Promise.resolve();
    let pending = 0;
    let sinkError: unknown;
    writeQuery(this.#writer, sql);
    const results = await this.#submit(1, options, (r) => r, undefined, undefined, (op) => {
      op.onCopyData = (chunk) => {
        pending++;
        if (pending === 1) this.#transport?.pause();
        chain = chain.then(() => sinkError === undefined ? sink(chunk) : undefined).catch((e) => {
          sinkError ??= e;
        }).finally(() => {
          if (--pending === 0) this.#transport?.resume();
        });
      };
    });
    await chain;
    if (sinkError !== undefined) throw sinkError;
    return results[results.length - 1]?.command ?? "";
  }

  async copyIn(sql: string, source: AsyncIterable<Uint8Array>, options?: QueryOptions): Promise<string> {
    this.#ensureOpen();
    writeQuery(this.#writer, sql);
    const results = await this.#submit(1, options, (r) => r, undefined, undefined, (op) => {
      op.onCopyIn = () => {
        this.#pump(source).catch(() => {});
      };
    });
    return results[results.length - 1]?.command ?? "";
  }

  async #pump(source: AsyncIterable<Uint8Array>): Promise<void> {
    const w = this.#writer;
    try {
      for await (const chunk of source) {
        if (this.#state.kind !== "open") return;
        w.begin(0x64).bytes(chunk).end();
        const ok = this.#transport!.write(w.take());
        if (!ok) await new Promise<void>((r) => this.#drainWaiters.push(r));
      }
      w.begin(0x63).end();
    } catch (error) {
      w.begin(0x66).cstr(error instanceof Error ? error.message : String(error)).end();
    }
    this.#flush();
  }

  async listen(channel: string, listener: NotificationListener): Promise<void> {
    await this.query(`LISTEN ${quoteIdent(channel)}`, []);
    this.#listeners.set(channel, listener);
  }

  async unlisten(channel: string): Promise<void> {
    await this.query(`UNLISTEN ${quoteIdent(channel)}`, []);
    this.#listeners.delete(channel);
  }

  async reset(
    options: { query: boolean; signal?: AbortSignal; pipeline?: boolean; timeout?: number },
  ): Promise<void> {
    this.#ensureOpen();
    if (this.#pendingCancel !== undefined) await this.#pendingCancel;
    this.#ensureOpen();
    let readies = 0;
    if (this.#status !== "idle") {
      writeQuery(this.#writer, "ROLLBACK");
      readies++;
    }
    if (options.query) {
      writeQuery(this.#writer, RESET_SQL);
      readies++;
    }
    if (readies === 0) return;
    this.#listeners.clear();
    let fail!: (error: Error) => void;
    const failed = (error: unknown): void => {
      if (this.#state.kind === "closed") return;
      this.#poisoned = true;
      this.#transition(
        error instanceof PoolError
          ? error
          : new ConnectionError("RESET_FAILED", "The reset failed", { cause: error }),
      );
    };
    const done = this.#submit(readies, undefined, () => undefined, undefined, undefined, (op) => {
      if (options.timeout !== undefined && options.timeout > 0) {
        const seconds = options.timeout;
        op.alarm = this.#settings.watchdog.after(seconds * 1000, () => {
          fail = failed;
          fail(new PoolTimeoutError("RELEASE_TIMEOUT", `The reset was not answered within ${seconds}s`));
        });
      }
    });
    if (options.pipeline) {
      done.catch(failed);
      return;
    }
    try {
      await done;
    } catch (error) {
      failed(error);
      throw error;
    }
  }

  async close(options?: { timeout?: number }): Promise<void> {
    if (this.#state.kind === "closed") return;
    if (this.#state.kind !== "closing") {
      this.#state = { kind: "closing" };
      this.#writer.begin(0x58).end();
      this.#flush();
      this.#transport?.end();
    }
    const closed = new Promise<void>((r) => this.#closeWaiters.push(r));
    const seconds = options?.timeout;
    const alarm = seconds !== undefined && seconds > 0
      ? this.#settings.watchdog.after(seconds * 1000, () => this.#transition(undefined))
      : undefined;
    await closed;
    alarm?.cancel();
  }

  terminate(): void {
    if (this.#state.kind === "closed") return;
    this.#state = { kind: "closing" };
    this.#transition(undefined);
  }

  /** Reports a PostgresError FATAL during startup. */
  static isFatal(error: unknown): boolean {
    return error instanceof PostgresError;
  }
}

/**
 * A {@linkcode DriverConnection} speaking the PostgreSQL protocol itself:
 * one parser, one state union, a queue of in-flight operations matched in
 * order with their answers (pipelining), the reset written into the stream.
 *
 * @module
 */

import {
  type DriverCapabilities,
  type DriverConnection,
  type DriverQueryOptions,
  NATIVE_CAPABILITIES,
  type NotificationListener,
  type QueryOptions,
  type QueryResult,
  type ServerVersion,
  type StatementDescription,
  type TransactionStatus,
} from "../../core/driver.ts";
import {
  ConnectionError,
  InterfaceError,
  PoolTimeoutError,
  PostgresError,
  type PostgresErrorFields,
} from "../../core/errors.ts";
import type { Notice } from "../../core/log_listeners.ts";
import type { Alarm, Watchdog } from "../../core/watchdog.ts";
import type { Connector, Transport, TransportTarget } from "../../runtime/transport.ts";
import { checkQueryOptions, toConnectionError } from "../hosts.ts";
import { parseServerVersion, resetQueryFor } from "../server_session.ts";
import { StatementCache } from "../statement_cache.ts";
import { awaitCancelled, sendCancelRequest } from "../timing.ts";
import { md5Password, ScramSession } from "./auth.ts";
import {
  parseFields,
  quoteIdent,
  toPostgresError,
  writeBind,
  writeClose,
  writeDescribe,
  writeExecute,
  writeParse,
  writeQuery,
  writeSync,
} from "./messages.ts";
import { type Fields, Operation } from "./operation.ts";
import { inferParamOid, serializeParam, type TypeRegistry } from "./values/index.ts";
import { ConnectionCodecs } from "./values/codecs.ts";
import type { CodecType, TextCodec } from "../../core/type_codecs.ts";
import { cstrEnd, int32, utf8, WireReader } from "./wire_reader.ts";
import { WireWriter } from "./wire_writer.ts";

/** A named statement on the server. */
interface Prepared {
  /** Its text (the key it is cached under). */
  sql: string;
  name: string;
  fields: Fields | undefined;
  described: boolean;
  /** Parameter type oids as the server described them (undefined until then). */
  params: readonly number[] | undefined;
}

const EMPTY: readonly (string | null)[] = [];

const WRITER = new WireWriter(1024);

/** The reported parameters the engine uses (the reset query's choice, the version); the rest are not kept. */
const KEPT_PARAMETERS: ReadonlySet<string> = new Set([
  "server_version",
  "crate_version",
  "crdb_version",
  "padb_revision",
  "in_hot_standby",
  "default_transaction_read_only",
]);

/** The statements of a reset query (`a;\nb;`), one per entry. */
function splitStatements(sql: string): string[] {
  return sql.split(";").map((x) => x.trim()).filter((x) => x !== "");
}

/** How many statement texts run unnamed keep their described parameter types. */
const PARAM_TYPES_LIMIT = 256;

const firstResult = (results: QueryResult[]): QueryResult => results[0]!;
const allResults = (results: QueryResult[]): QueryResult[] => results;

function isFatal(error: Error | undefined): error is PostgresError {
  return error instanceof PostgresError && (error.severity === "FATAL" || error.severity === "PANIC");
}

/** Whether an argument's text depends on its parameter's type (a string for json, an array, an object). */
function typeDependent(args: readonly unknown[]): boolean {
  for (const a of args) {
    if (typeof a === "string") return true;
    if (typeof a === "object" && a !== null && !(a instanceof Date) && !(a instanceof Uint8Array)) {
      return true;
    }
  }
  return false;
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
  /** The host as messages name it. */
  where: string;
  /** Seconds a cancelled statement may take to end before the connection is closed. */
  cancelGrace: number;
  /** Milliseconds a cancel request may take to be delivered. */
  cancelLimitMs: number;
  /** Receives server notices. */
  onNotice: ((notice: PostgresErrorFields) => void) | undefined;
}

const noop = (): void => {};

/** A copy from the client: the source's failure, and whether the copy was ended with CopyFail. */
interface CopyState {
  error: unknown;
  failed: boolean;
  started: boolean;
}

/** A round written while a cancel request could still land: held back until it cannot. */
interface Held {
  op: Operation;
  bytes: Uint8Array;
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
  /** The one writer of every native connection: a round is written and taken in one synchronous step. */
  readonly #writer = WRITER;
  readonly #reader: WireReader;
  readonly #ops: Operation[] = [];
  #opHead = 0;
  readonly #cache: StatementCache;
  readonly #prepared = new Map<string, Prepared>();
  /** Described parameter types of texts run unnamed (bounded). */
  #paramTypes: Map<string, readonly number[]> | undefined;
  #nextName = 0;
  #pid = 0;
  #secret = 0;
  #status: TransactionStatus = "idle";
  #version: ServerVersion = parseServerVersion("0");
  #queryCount = 0;
  /** Run-time parameters the server reported (ParameterStatus). */
  readonly #parameters = new Map<string, string>();
  /** The session reset statements this server supports (known after startup). */
  #resetStatements: readonly string[] | undefined;
  /** Whether the reset statements are prepared on the server (as r0, r1, ..., and the rollback as rb). */
  #resetPrepared = false;
  /**
   * Since the last reset, a round went out that could leave a transaction open: a simple query, or a
   * statement bound without parameters (a statement with a parameter is never a transaction command).
   */
  #mayBeOpen = false;
  #onClose: ((error: Error | undefined) => void) | undefined;
  /** The connection's notice receiver (the log listeners of its `Connection`). */
  #onNotice: ((notice: Notice) => void) | undefined;
  /** Parsers by oid: the driver's shared registry, or the connection's own codecs in front of it. */
  #types: TypeRegistry;
  /** The connection's own type codecs (made at the first `setTypeCodec`). */
  #codecs: ConnectionCodecs | undefined;
  /** LISTEN callbacks by channel (made at the first listen). */
  #listeners: Map<string, NotificationListener> | undefined;
  /**
   * Rounds held back (undefined: writes go out at once) while something must come first: a cancel
   * request on its way, or the Binds of a describe-first round. `#blockers` counts those reasons.
   */
  #held: Held[] | undefined;
  #blockers = 0;
  /** A cancel request went out: a throwaway statement goes first when the held rounds are written. */
  #absorb = false;
  #cancelling: Promise<void> | undefined;
  #readyWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #closeWaiters: (() => void)[] = [];
  #handshake: ((type: number, b: Uint8Array, start: number, end: number) => void) | undefined;
  #handshakeFail: ((error: Error) => void) | undefined;
  /** Names of cached statements to close (see `#dropStale`), written with the next extended round. */
  #stale: string[] | undefined;
  /** A pipelined reset not written yet (see `#defer`). */
  #deferred: Uint8Array | undefined;
  #deferredAlarm: Alarm | undefined;

  /** @param settings What the driver provides. */
  constructor(settings: NativeSettings) {
    this.#settings = settings;
    this.#types = settings.types;
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

  /** Opened on the fallback pass of `prefer-standby` (set by the driver's connect). */
  fallback = false;
  /** What this driver can do where the drivers differ. */
  readonly capabilities: DriverCapabilities = NATIVE_CAPABILITIES;

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

  resetQuery(): string {
    return resetQueryFor(this.#parameters);
  }

  onNotice(listener: ((notice: Notice) => void) | undefined): void {
    this.#onNotice = listener;
  }

  setTypeCodec(type: CodecType, codec: TextCodec | undefined): void {
    const codecs = this.#codecs ??= new ConnectionCodecs(this.#settings.types);
    this.#types = codecs;
    codecs.set(type, codec);
    // Statements described before keep their columns' parsers: choose them again.
    for (const prepared of this.#prepared.values()) {
      const fields = prepared.fields;
      if (fields !== undefined) fields.parsers = fields.oids.map((oid) => codecs.parser(oid));
    }
  }

  /** The text of an argument: the connection's encoder of its type when it set one, else the built-in rules. */
  #paramText(value: unknown, describedOid: number | undefined): string | null {
    const codecs = this.#codecs;
    if (codecs !== undefined && value !== null && value !== undefined) {
      const inferred = inferParamOid(value);
      const encode = codecs.encoder(inferred === 0 ? describedOid ?? 0 : inferred);
      if (encode !== undefined) return encode(value);
    }
    return serializeParam(value, describedOid).text;
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
    if (!this.#writer.empty) this.#send(this.#writer.take());
  }

  /**
   * Writes to the transport, behind a deferred reset if there is one: the reset and the next
   * checkout's first statement leave in one write (a write costs more than the bytes).
   */
  #send(bytes: Uint8Array): boolean {
    const deferred = this.#deferred;
    if (deferred !== undefined) {
      this.#deferred = undefined;
      this.#deferredAlarm?.cancel();
      this.#deferredAlarm = undefined;
      const both = new Uint8Array(deferred.length + bytes.length);
      both.set(deferred);
      both.set(bytes, deferred.length);
      bytes = both;
    }
    return this.#transport?.write(bytes) ?? false;
  }

  /** Holds a reset's bytes until the next write or the next turn of the event loop, whichever is first. */
  #defer(bytes: Uint8Array): void {
    if (this.#deferred !== undefined) {
      this.#send(bytes);
      return;
    }
    this.#deferred = bytes;
    this.#deferredAlarm = this.#settings.watchdog.after(0, () => {
      this.#deferredAlarm = undefined;
      const pending = this.#deferred;
      this.#deferred = undefined;
      if (pending !== undefined && this.#state.kind === "open") this.#transport?.write(pending);
    });
  }

  #message(type: number, b: Uint8Array, start: number, end: number): void {
    if (this.#state.kind === "closed") return;
    switch (type) {
      case 0x53: { // ParameterStatus
        const k = cstrEnd(b, start);
        const name = utf8(b, start, k);
        if (!KEPT_PARAMETERS.has(name)) return;
        const value = utf8(b, k + 1, cstrEnd(b, k + 1));
        this.#parameters.set(name, value);
        if (name === "server_version") this.#version = parseServerVersion(value);
        return;
      }
      case 0x4b: // BackendKeyData
        this.#pid = int32(b, start);
        this.#secret = int32(b, start + 4);
        return;
      case 0x4e: { // NoticeResponse
        const onNotice = this.#settings.onNotice;
        const own = this.#onNotice;
        if (onNotice === undefined && own === undefined) return;
        const notice = parseFields(b, start, end);
        // A reset's rollback behind pipelined one-shots finds no transaction most of the time: expected.
        if (notice.code === "25P01" && this.#ops[this.#opHead]?.reset === true) return;
        try {
          onNotice?.(notice);
        } catch {
          // a failing notice handler must not break the connection's reading
        }
        try {
          own?.(notice);
        } catch {
          // the same for the connection's own receiver
        }
        return;
      }
      case 0x41: { // NotificationResponse
        const pid = int32(b, start);
        const c = cstrEnd(b, start + 4);
        const channel = utf8(b, start + 4, c);
        const payload = utf8(b, c + 1, cstrEnd(b, c + 1));
        this.#listeners?.get(channel)?.(payload, channel, pid);
        return;
      }
    }
    if (this.#handshake !== undefined) return this.#handshake(type, b, start, end);
    if (type === 0x5a) {
      const s = b[start];
      this.#status = s === 0x54 ? "transaction" : s === 0x45 ? "failed" : "idle";
      if (this.#readyWaiters.length !== 0) queueMicrotask(() => this.#wakeReady());
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
      if (op.error !== undefined && op.statement !== undefined) {
        this.#dropStale(op.statement as Prepared, op.error);
      }
      if (op.reset && op.error !== undefined) {
        // Nothing after a failed reset may be delivered: close now, before the next answer is read.
        op.settle();
        this.#resetFailed(op.error);
        return;
      }
      op.settle();
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
    // A statement the server ended with a FATAL error (a terminated backend) fails with that error.
    for (const op of ops) op.fail(isFatal(op.error) ? op.error : failure);
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#blockers = 0;
    this.#deferred = undefined;
    this.#deferredAlarm?.cancel();
    for (const h of held) h.op.fail(failure);
    this.#wakeReady();
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

  /** Queues an operation for what is in the writer and writes it (or holds it while a cancel is on its way). */
  #submit<T>(
    readies: number,
    options: QueryOptions | undefined,
    map: (results: QueryResult[]) => T,
    known?: Fields,
    onDescribed?: (fields: Fields | undefined) => void,
    setup?: (op: Operation) => void,
    defer = false,
    statement?: Prepared,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const op = new Operation(
        this.#types,
        readies,
        (r) => resolve(map(r)),
        reject,
        known,
        onDescribed,
      );
      setup?.(op);
      if (statement !== undefined) op.statement = statement;
      if ((options as DriverQueryOptions | undefined)?.arrayRows === true) op.arrayRows = true;
      this.#queryCount++;
      const bytes = this.#writer.take();
      if (this.#held !== undefined) this.#held.push({ op, bytes });
      else this.#write(op, bytes, defer);
      if (options !== undefined) this.#bound(op, options);
    });
  }

  #bound(op: Operation, options: QueryOptions): void {
    const { timeout, signal } = options;
    if (timeout !== undefined && timeout > 0) {
      op.alarm = this.#settings.watchdog.after(timeout * 1000, () => {
        op.alarm = undefined;
        this.#giveUp(
          op,
          new PoolTimeoutError(
            "QUERY_TIMEOUT",
            `The query did not finish within ${timeout}s and was cancelled`,
          ),
        );
      });
    }
    if (signal !== undefined) {
      const onAbort = (): void => {
        this.#giveUp(op, signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const prior = op.onDone;
      op.onDone = () => {
        prior?.();
        signal.removeEventListener("abort", onAbort);
      };
    }
  }

  /**
   * The caller of `op` gives up (timeout, abort): it rejects now. A round not
   * written yet is dropped; a written one is cancelled on the server, and its
   * answer is consumed when it comes.
   */
  #giveUp(op: Operation, reason: Error): void {
    if (op.settled) return;
    op.abandon(reason);
    const held = this.#held;
    if (held !== undefined) {
      const i = held.findIndex((h) => h.op === op);
      if (i !== -1) {
        held.splice(i, 1);
        return;
      }
    }
    // Still describing: its Binds will not be written, there is nothing to cancel.
    if (op.onFirstReady !== undefined) return;
    if (op.onGiveUp?.() === true) return;
    this.#startCancel();
  }

  /** Writes a round; a describe-first round holds every later one until its Binds are written. */
  #write(op: Operation, bytes: Uint8Array, defer = false): void {
    this.#ops.push(op);
    if (defer) this.#defer(bytes);
    else this.#send(bytes);
    if (op.onFirstReady !== undefined) this.#hold();
  }

  #hold(): void {
    this.#blockers++;
    this.#held ??= [];
  }

  /** One reason to hold is gone; with none left, the held rounds are written, in order. */
  #unhold(): void {
    if (--this.#blockers > 0) return;
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined || this.#state.kind !== "open") return;
    if (this.#absorb) {
      this.#absorb = false;
      // Its error (57014: the late cancel landed here; 25P02: a failed transaction) is expected.
      writeQuery(this.#writer, "SELECT 1");
      const absorber = new Operation(this.#types, 1, noop, noop);
      absorber.own = true;
      this.#ops.push(absorber);
      this.#send(this.#writer.take());
    }
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      this.#write(h.op, h.bytes);
      const again = this.#held as Held[] | undefined;
      if (again !== undefined) {
        // a describe-first round: the rest waits for its Binds
        again.push(...held.slice(i + 1));
        return;
      }
    }
    // A round given up on while a cancel was finishing needs a cancel of its own.
    if (this.#cancelling === undefined && this.#firstAbandoned() !== undefined) this.#startCancel();
  }

  /** Starts cancelling the abandoned rounds, unless that runs already. */
  #startCancel(): void {
    if (this.#cancelling !== undefined || this.#state.kind !== "open") return;
    this.#hold();
    this.#cancelling = this.#cancelRounds().then((sent) => {
      this.#cancelling = undefined;
      if (sent) this.#absorb = true;
      this.#unhold();
    });
  }

  /** The first round still on the wire whose caller gave up. */
  #firstAbandoned(): Operation | undefined {
    for (let i = this.#opHead; i < this.#ops.length; i++) {
      const op = this.#ops[i]!;
      if (op.abandoned) return op;
    }
    return undefined;
  }

  #nextReady(): Promise<void> {
    return new Promise<void>((resolve) => this.#readyWaiters.push(resolve));
  }

  #wakeReady(): void {
    const waiters = this.#readyWaiters;
    if (waiters.length === 0) return;
    this.#readyWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Cancels each abandoned round once it runs, until none is left; a round
   * that outlives the cancel by `cancelGrace` closes the connection. Resolves
   * true when a cancel request went out: one could land late, on whatever
   * runs next, so a throwaway statement must run first.
   */
  async #cancelRounds(): Promise<boolean> {
    const { watchdog, cancelGrace } = this.#settings;
    let sent = false;
    try {
      for (;;) {
        if (this.#state.kind !== "open") return false;
        const target = this.#firstAbandoned();
        if (target === undefined) return sent;
        if (this.#ops[this.#opHead] !== target) {
          // A cancel hits whatever the backend runs when it lands: wait until the target runs.
          await this.#nextReady();
          continue;
        }
        const progress = this.#nextReady();
        await sendCancelRequest(
          watchdog,
          this.#settings.connector,
          this.#settings.target,
          this.#pid,
          this.#secret,
          this.#settings.cancelLimitMs,
        );
        sent = true;
        if (this.#state.kind !== "open") return false;
        const outcome = await awaitCancelled(watchdog, cancelGrace * 1000, target.finished(), progress);
        if (outcome === "stuck" && this.#ops.includes(target)) {
          this.#transition(
            new PoolTimeoutError(
              "QUERY_TIMEOUT",
              "A cancelled query did not finish in time; the connection was closed",
            ),
          );
          return false;
        }
      }
    } catch (error) {
      this.#transition(toConnectionError(error, this.#settings.where));
      return false;
    }
  }

  #ensureOpen(): void {
    if (this.#state.kind !== "open") throw this.#closedError();
  }

  /**
   * Writes one statement run once per argument list, as one round (one Sync: outside an explicit
   * transaction the runs are one implicit transaction). Arguments whose text depends on the
   * parameter's type (strings for json, arrays, objects) need the types the server describes: when
   * they are not known yet, the round starts with Parse + Describe and its Binds follow the answer
   * (see `#bindDescribed`).
   */
  #extended<T>(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    options: QueryOptions | undefined,
    map: (results: QueryResult[]) => T,
  ): Promise<T> {
    const w = this.#startRound();
    const first = argsList[0]!;
    const known = this.#prepared.get(sql);
    const prepared = known ?? this.#admit(sql, argsList.length);
    const fresh = prepared !== known;
    const name = prepared?.name ?? "";
    const types = prepared === undefined ? this.#paramTypes?.get(sql) : prepared.params;
    let promise: Promise<T>;
    // With codecs of its own the connection needs the parameter types to pick an encoder.
    if (types === undefined && (this.#codecs !== undefined || argsList.some(typeDependent))) {
      // Describe first; the Binds are written when the parameter types are in.
      if (prepared === undefined || fresh) writeParse(w, name, sql, first.map(inferParamOid));
      writeDescribe(w, "S", name);
      writeSync(w);
      const target = prepared;
      promise = this.#submit(1, options, map, undefined, (fields) => {
        if (target !== undefined) {
          target.fields = fields;
          target.described = true;
        }
      }, (op) => {
        op.onFirstReady = (paramOids) => this.#bindDescribed(op, sql, target, argsList, paramOids);
      });
    } else {
      // Every text first (a refused value must leave nothing half-written), then the messages.
      const texts = argsList.map((args) => args.map((a, i) => this.#paramText(a, types?.[i])));
      let known: Fields | undefined;
      let onDescribed: ((f: Fields | undefined) => void) | undefined;
      let describePortal = true;
      if (prepared === undefined) writeParse(w, "", sql, first.map(inferParamOid));
      else if (fresh) {
        writeParse(w, name, sql, first.map(inferParamOid));
        writeDescribe(w, "S", name);
        const target = prepared;
        onDescribed = (f) => {
          target.fields = f;
          target.described = true;
        };
        describePortal = false;
      } else {
        known = prepared.fields;
        // Not yet described (its Describe is still in flight), or without result columns: describe the portal.
        describePortal = known === undefined;
      }
      for (const t of texts) {
        writeBind(w, name, t);
        if (describePortal) writeDescribe(w, "P", "");
        writeExecute(w);
      }
      writeSync(w);
      const target = prepared;
      promise = this.#submit(
        1,
        options,
        map,
        known,
        onDescribed,
        fresh
          ? (op) => {
            op.onParams = (oids) => (target!.params = oids);
          }
          : undefined,
        false,
        prepared,
      );
    }
    this.#queryCount += argsList.length - 1;
    if (!fresh) return promise;
    this.#prepared.set(sql, prepared!);
    return promise.catch(this.#forget(sql));
  }

  /**
   * The first answer of a describe-first round is in: writes its Binds with the described
   * parameter types, right behind it (later rounds were held until now). False when the round
   * ends here (its statement failed, its caller gave up, or an argument was refused).
   */
  #bindDescribed(
    op: Operation,
    sql: string,
    prepared: Prepared | undefined,
    argsList: readonly (readonly unknown[])[],
    paramOids: readonly number[],
  ): boolean {
    let written = false;
    if (op.error === undefined && !op.abandoned && this.#state.kind === "open") {
      if (prepared !== undefined) prepared.params = paramOids;
      else {
        const known = this.#paramTypes ??= new Map();
        if (known.size >= PARAM_TYPES_LIMIT) known.clear();
        known.set(sql, paramOids);
      }
      try {
        const texts = argsList.map((args) => args.map((a, i) => this.#paramText(a, paramOids[i])));
        const w = this.#writer;
        const name = prepared?.name ?? "";
        // An unnamed statement is parsed again in this round: behind a transaction pooler the first round's
        // server session may be lent to someone else once it ended, and this round may land on another.
        if (prepared === undefined) writeParse(w, "", sql, paramOids);
        for (const t of texts) {
          writeBind(w, name, t);
          writeExecute(w);
        }
        writeSync(w);
        this.#send(w.take());
        written = true;
      } catch (error) {
        op.error = error as Error;
      }
    }
    this.#unhold();
    return written;
  }

  /**
   * The writer, empty, for a new extended round; statements found stale (see `#dropStale`) are
   * closed at its start.
   */
  #startRound(): WireWriter {
    const w = this.#writer;
    w.discard();
    const stale = this.#stale;
    if (stale !== undefined) {
      this.#stale = undefined;
      for (const name of stale) writeClose(w, "S", name);
    }
    return w;
  }

  /** A new named statement for `sql` when the statement cache admits it (`runs` as `StatementCache.admit`). */
  #admit(sql: string, runs: number): Prepared | undefined {
    if (!this.#cache.admit(sql, runs)) return undefined;
    return { sql, name: `n${this.#nextName++}`, fields: undefined, described: false, params: undefined };
  }

  /**
   * A cached statement the server would not run (0A000: "cached plan must not change result type"
   * after an ALTER of a table it reads; 26000: it is gone, e.g. after a DEALLOCATE ALL) is dropped
   * from the cache, closed with the next round, and prepared again at the next run of its text.
   */
  #dropStale(statement: Prepared, error: Error): void {
    const code = (error as { code?: unknown }).code;
    if (!(error instanceof PostgresError) || (code !== "0A000" && code !== "26000")) return;
    if (this.#prepared.get(statement.sql) !== statement) return;
    this.#prepared.delete(statement.sql);
    (this.#stale ??= []).push(statement.name);
  }

  #forget(sql: string): (error: unknown) => never {
    return (error) => {
      const p = this.#prepared.get(sql);
      if (p !== undefined && !p.described) this.#prepared.delete(sql);
      throw error;
    };
  }

  /** Rejects when the connection is not open, the options are invalid or the signal aborted already. */
  #refuse(options: QueryOptions | undefined): Promise<never> | undefined {
    try {
      this.#ensureOpen();
      checkQueryOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return undefined;
  }

  query(sql: string, args: readonly unknown[], options?: QueryOptions): Promise<QueryResult> {
    const refused = this.#refuse(options);
    if (refused !== undefined) return refused;
    // Without arguments a text goes as a simple query, as postgres.js sends it: several statements
    // allowed, and no portal of its own in pg_cursors.
    if (args.length === 0) {
      this.#mayBeOpen = true;
      writeQuery(this.#writer, sql);
      return this.#submit(1, options, (r) => r[r.length - 1] ?? { rows: [], columns: [], command: "" });
    }
    try {
      return this.#extended(sql, [args], options, firstResult);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  queryMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    options?: QueryOptions,
  ): Promise<QueryResult[]> {
    const refused = this.#refuse(options);
    if (refused !== undefined) return refused;
    if (argsList.length === 0) return Promise.resolve([]);
    for (const args of argsList) if (args.length === 0) this.#mayBeOpen = true;
    try {
      return this.#extended(sql, argsList, options, allResults);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Parse + Describe, one round. The text takes a place in the statement cache when one is free
   * (later runs of it then bind the named statement with the described types); otherwise it is
   * described as the unnamed statement, and nothing stays on the server.
   */
  describe(sql: string, options?: QueryOptions): Promise<StatementDescription> {
    const refused = this.#refuse(options);
    if (refused !== undefined) return refused;
    const w = this.#startRound();
    const known = this.#prepared.get(sql);
    const prepared = known ?? this.#admit(sql, 2);
    const fresh = prepared !== known;
    const name = prepared?.name ?? "";
    if (prepared === undefined || fresh) writeParse(w, name, sql, []);
    writeDescribe(w, "S", name);
    writeSync(w);
    const target = prepared;
    let params: readonly number[] = [];
    let fields: Fields | undefined;
    const promise = this.#submit(
      1,
      options,
      (): StatementDescription => ({
        parameterTypes: [...params],
        columns: fields === undefined
          ? []
          : fields.names.map((name, i) => ({ name, typeOid: fields!.oids[i]! })),
      }),
      undefined,
      (f) => {
        fields = f;
        if (target !== undefined) {
          target.fields = f;
          target.described = true;
        }
      },
      (op) => {
        op.onParams = (oids) => {
          params = oids;
          if (target !== undefined) target.params = oids;
        };
      },
    );
    if (!fresh) return promise;
    this.#prepared.set(sql, prepared!);
    return promise.catch(this.#forget(sql));
  }

  async copyOut(sql: string, sink: (chunk: Uint8Array) => unknown, options?: QueryOptions): Promise<string> {
    this.#ensureOpen();
    let chain: Promise<unknown> = Promise.resolve();
    let pending = 0;
    let sinkError: unknown;
    this.#mayBeOpen = true;
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
    this.#mayBeOpen = true;
    writeQuery(this.#writer, sql);
    const copy: CopyState = { error: undefined, failed: false, started: false };
    try {
      const results = await this.#submit(1, options, (r) => r, undefined, undefined, (op) => {
        op.onCopyIn = () => {
          copy.started = true;
          if (op.abandoned) this.#copyFail(copy, "the copy was cancelled");
          else this.#pump(source, copy).catch(noop);
        };
        // Given up on (timeout, abort): the client ends its own copy, no cancel request needed.
        op.onGiveUp = () => {
          if (copy.started) this.#copyFail(copy, "the copy was cancelled");
          return true;
        };
      });
      return results[results.length - 1]?.command ?? "";
    } catch (error) {
      // The server refuses the copy because the source failed (CopyFail): the source's own error is the answer.
      if (copy.error !== undefined && error instanceof PostgresError && error.code === "57014") {
        throw copy.error;
      }
      throw error;
    }
  }

  /** Ends a copy from the client with CopyFail (once). */
  #copyFail(copy: CopyState, message: string): void {
    if (copy.failed || this.#state.kind !== "open") return;
    copy.failed = true;
    this.#writer.begin(0x66).cstr(message).end();
    this.#flush();
  }

  async #pump(source: AsyncIterable<Uint8Array>, copy: CopyState): Promise<void> {
    const w = this.#writer;
    try {
      for await (const chunk of source) {
        if (this.#state.kind !== "open" || copy.failed) return;
        w.begin(0x64).bytes(chunk).end();
        const ok = this.#send(w.take());
        if (!ok) await new Promise<void>((r) => this.#drainWaiters.push(r));
      }
      if (copy.failed || this.#state.kind !== "open") return;
      w.begin(0x63).end();
      this.#flush();
    } catch (error) {
      copy.error = error;
      this.#copyFail(copy, error instanceof Error ? error.message : String(error));
    }
  }

  async listen(channel: string, listener: NotificationListener): Promise<void> {
    await this.query(`LISTEN ${quoteIdent(channel)}`, []);
    (this.#listeners ??= new Map()).set(channel, listener);
  }

  async unlisten(channel: string): Promise<void> {
    await this.query(`UNLISTEN ${quoteIdent(channel)}`, []);
    this.#listeners?.delete(channel);
  }

  async reset(
    options: { query: boolean; signal?: AbortSignal; pipeline?: boolean; timeout?: number; behind?: boolean },
  ): Promise<void> {
    this.#ensureOpen();
    const { signal, timeout } = options;
    if (signal?.aborted) {
      this.terminate();
      throw signal.reason;
    }
    const behind = options.behind === true;
    // Statements of the releasing caller still running (or given up on and being cancelled): the reset
    // waits for them, so that it sees the transaction status they leave, and never starts the next
    // checkout on a connection that a failing cancel is about to close. Behind pipelined one-shots it
    // does not wait: it rolls back whatever they may have left open instead.
    if (!behind && this.#busy()) await this.#quiet(timeout, signal);
    const rollback = this.#status !== "idle" || (behind && this.#mayBeOpen);
    this.#mayBeOpen = false;
    const resetStatements = this.#resetStatements ??= splitStatements(resetQueryFor(this.#parameters));
    const statements = options.query ? resetStatements.length : 0;
    let readies = 0;
    if (behind) {
      // One round: the rollback (prepared like the reset statements) goes first in it.
      if (rollback || statements !== 0) {
        const w = this.#prepareReset(resetStatements);
        if (rollback) {
          writeBind(w, "rb", EMPTY);
          writeExecute(w);
        }
        for (let i = 0; i < statements; i++) {
          writeBind(w, `r${i}`, EMPTY);
          writeExecute(w);
        }
        writeSync(w);
        readies = 1;
      }
    } else {
      if (rollback) {
        writeQuery(this.#writer, "ROLLBACK");
        readies++;
      }
      if (statements !== 0) {
        // Prepared once per connection (their Parse rides along with the first reset): the server then
        // only binds and runs them, which costs it about a fifth less than a simple query of four.
        const w = this.#prepareReset(resetStatements);
        for (let i = 0; i < statements; i++) {
          writeBind(w, `r${i}`, EMPTY);
          writeExecute(w);
        }
        writeSync(w);
        readies++;
      }
    }
    if (options.query) this.#listeners = undefined;
    if (readies === 0) return;
    const done = this.#submit(readies, undefined, () => undefined, undefined, undefined, (op) => {
      op.own = true;
      op.reset = true;
      if (timeout !== undefined && timeout > 0) {
        op.alarm = this.#settings.watchdog.after(timeout * 1000, () => {
          const error = new PoolTimeoutError(
            "RELEASE_TIMEOUT",
            `The reset was not answered within ${timeout}s`,
          );
          op.fail(error);
          this.#resetFailed(error);
        });
      }
    }, options.pipeline === true);
    this.#queryCount += readies - 1;
    // What the server reports once it ran the reset (a failure closes the connection); a reset of the
    // next release, pipelined behind this one, must not roll back again.
    this.#status = "idle";
    if (options.pipeline) {
      done.catch(noop);
      return;
    }
    await done;
    // Behind a one-shot given up on: not done while its cancel may still land (the next statement
    // written goes behind a throwaway one, or the connection closes).
    if (behind && this.#busy()) await this.#quiet(timeout, signal);
  }

  /**
   * The writer, with the Parse of the reset statements (`r0`, `r1`, ...) and of the rollback (`rb`)
   * when this connection has not prepared them yet.
   */
  #prepareReset(resetStatements: readonly string[]): WireWriter {
    const w = this.#writer;
    if (!this.#resetPrepared) {
      writeParse(w, "rb", "ROLLBACK", []);
      for (let i = 0; i < resetStatements.length; i++) writeParse(w, `r${i}`, resetStatements[i]!, []);
      this.#resetPrepared = true;
    }
    return w;
  }

  /**
   * A reset failed or went unanswered: the connection closes. What was queued behind it fails as a
   * lost connection: the server may well have run it (a reset that fails with an ERROR does not stop
   * the statements already sent behind it), so its outcome is unknown, never the reset's own error.
   * Only a FATAL error (the session ended during the reset) proves nothing behind it ran.
   */
  #resetFailed(error: Error): void {
    if (this.#state.kind === "closed") return;
    this.#transition(
      isFatal(error) ? error : new ConnectionError(
        "CONNECTION_LOST",
        error instanceof PostgresError
          ? "The session reset failed; the connection was closed"
          : "The session reset was not answered; the connection was closed",
        { cause: error },
      ),
    );
  }

  /** A caller's round on the wire, rounds held back, or a cancel under way (the driver's own rounds do not count). */
  #busy(): boolean {
    if (this.#held !== undefined || this.#cancelling !== undefined) return true;
    for (let i = this.#opHead; i < this.#ops.length; i++) if (!this.#ops[i]!.own) return true;
    return false;
  }

  /**
   * Resolves once nothing is on the wire; past `timeout` seconds (`RELEASE_TIMEOUT`) or on abort it
   * terminates the connection and rejects.
   */
  #quiet(timeout: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        alarm?.cancel();
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) return resolve();
        this.terminate();
        reject(error);
      };
      const onAbort = (): void => finish(signal!.reason);
      const alarm = timeout !== undefined && timeout > 0
        ? this.#settings.watchdog.after(timeout * 1000, () =>
          finish(
            new PoolTimeoutError(
              "RELEASE_TIMEOUT",
              `The connection was not free for its reset within ${timeout}s`,
            ),
          ))
        : undefined;
      signal?.addEventListener("abort", onAbort, { once: true });
      (async () => {
        while (!settled && this.#state.kind === "open" && this.#busy()) {
          if (this.#cancelling !== undefined) await this.#cancelling;
          else await this.#nextReady();
        }
        finish(this.#state.kind === "open" ? undefined : this.#closedError());
      })();
    });
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

  ref(): void {
    this.#transport?.ref();
  }

  unref(): void {
    this.#transport?.unref();
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

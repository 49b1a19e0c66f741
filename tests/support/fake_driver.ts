/**
 * A scriptable fake driver for the core's unit tests. Each operation's outcome
 * can be scripted: "ok", "error", "slow" (settles after `slowMs` on the fake
 * clock) or "never" (settles only when aborted, where a real driver would too).
 *
 * A query answers one row that echoes it: `n` is its first argument (1 when it
 * has none), `pid` the connection that ran it and `sql` its text; each
 * connection also records every statement (`queries`, `args`). A "still works"
 * check can thus prove which connection ran which statement, not just that
 * nothing threw.
 */
import { Connection } from "../../src/core/connection.ts";
import type {
  ConnectOptions,
  DriverCapabilities,
  DriverConnection,
  DriverQueryOptions,
  NotificationListener,
  QueryOptions,
  QueryResult,
  Row,
  ServerVersion,
  TransactionStatus,
} from "../../src/core/driver.ts";
import { ConnectionError, InterfaceError, PoolTimeoutError } from "../../src/core/errors.ts";
import type { Notice } from "../../src/core/log_listeners.ts";
import type { CodecType, TextCodec } from "../../src/core/type_codecs.ts";
import type { FakeClock } from "./fake_clock.ts";

export type Outcome = "ok" | "error" | "slow" | "never";

/** Scripted outcomes: a queue consumed per call, then the default. */
export class Script {
  #queue: Outcome[] = [];
  constructor(public fallback: Outcome = "ok") {}
  push(...outcomes: Outcome[]): this {
    this.#queue.push(...outcomes);
    return this;
  }
  next(): Outcome {
    return this.#queue.shift() ?? this.fallback;
  }
}

export class ScriptedError extends Error {
  constructor(what: string) {
    super(`scripted ${what} failure`);
    this.name = "ScriptedError";
  }
}

function abortable(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) return;
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** Runs `outcome` for an operation: resolves, rejects, waits on the clock, or waits for an abort. */
export function play(
  clock: FakeClock,
  outcome: Outcome,
  what: string,
  slowMs: number,
  signal?: AbortSignal,
): Promise<void> {
  switch (outcome) {
    case "ok":
      return Promise.resolve();
    case "error":
      return Promise.reject(new ScriptedError(what));
    case "slow":
      return Promise.race([
        new Promise<void>((resolve) => clock.setTimeout(resolve, slowMs)),
        abortable(signal),
      ]);
    case "never":
      return abortable(signal);
  }
}

let nextPid = 1000;

export class FakeDriverConnection implements DriverConnection {
  readonly pid: number = nextPid++;
  readonly serverVersion: ServerVersion = { major: 16, minor: 0, micro: 0, text: "16.0" };
  queryCount = 0;
  transactionStatus: TransactionStatus = "idle";
  resets = 0;
  queries: string[] = [];
  /** The arguments of each statement in `queries`, in the same order. */
  args: (readonly unknown[])[] = [];
  /** The options of each `query()` call, in the same order. */
  options: (DriverQueryOptions | undefined)[] = [];
  #closed = false;
  #onClose: ((error: Error | undefined) => void) | undefined;
  #listeners = new Map<string, NotificationListener>();
  #pending = new Set<(e: Error) => void>();

  /** Opened as a prefer-standby fallback: what {@linkcode FakeDriver.fallback} was at connect. */
  readonly fallback: boolean;

  constructor(readonly driver: FakeDriver) {
    this.fallback = driver.fallback;
  }

  isClosed(): boolean {
    return this.#closed;
  }

  /** Pipelining when the driver says so ({@linkcode FakeDriver.pipelining}); no flags otherwise. */
  get capabilities(): DriverCapabilities | undefined {
    return this.driver.pipelining
      ? { describeUnnamed: true, codecsOnPrepared: true, pipelining: true }
      : undefined;
  }

  /** Statements started and not settled. */
  inFlight = 0;
  /** The most statements in flight at once. */
  maxInFlight = 0;
  /** Resets queued behind statements in flight (`behind`). */
  behindResets = 0;

  #guard(): void {
    if (this.#closed) throw new InterfaceError("CONNECTION_CLOSED", "Cannot use a closed connection");
  }

  async #run(outcome: Outcome, what: string, opts?: QueryOptions): Promise<void> {
    this.#guard();
    this.queryCount++;
    let timer: unknown;
    const ctl = new AbortController();
    if (opts?.timeout !== undefined) {
      timer = this.driver.clock.setTimeout(
        () => ctl.abort(new PoolTimeoutError("QUERY_TIMEOUT", "Query timed out")),
        opts.timeout * 1000,
      );
    }
    const onAbort = () => ctl.abort(opts!.signal!.reason);
    opts?.signal?.addEventListener("abort", onAbort, { once: true });
    let drop!: (e: Error) => void;
    const dropped = new Promise<never>((_, reject) => drop = reject);
    this.#pending.add(drop);
    try {
      await Promise.race([play(this.driver.clock, outcome, what, this.driver.slowMs, ctl.signal), dropped]);
    } finally {
      this.#pending.delete(drop);
      if (timer !== undefined) this.driver.clock.clearTimeout(timer);
      opts?.signal?.removeEventListener("abort", onAbort);
    }
  }

  async query(sql: string, args: readonly unknown[], opts?: DriverQueryOptions): Promise<QueryResult> {
    this.queries.push(sql);
    this.args.push(args);
    this.options.push(opts);
    this.driver.onQuery?.(this, sql, args, opts);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      if (this.driver.gate !== undefined) await this.driver.gate(sql);
      await this.#run(this.driver.query.next(), "query", opts);
    } catch (e) {
      const code = this.driver.queryErrorCode;
      if (code !== undefined && e instanceof ScriptedError) Object.assign(e, { code });
      throw e;
    } finally {
      this.inFlight--;
    }
    const verb = sql.trim().split(/\s+/)[0]!.toUpperCase();
    if (verb === "BEGIN") this.transactionStatus = "transaction";
    if (verb === "COMMIT" || verb === "ROLLBACK") this.transactionStatus = "idle";
    const n = args.length > 0 ? args[0] : 1;
    return {
      // Array rows when asked (a row factory), like the real drivers.
      rows: [opts?.arrayRows === true ? [n, this.pid, sql] as unknown as Row : { n, pid: this.pid, sql }],
      columns: ["n", "pid", "sql"],
      command: verb === "SELECT" ? "SELECT 1" : verb,
    };
  }

  async queryMany(
    sql: string,
    argsList: readonly (readonly unknown[])[],
    opts?: QueryOptions,
  ): Promise<QueryResult[]> {
    const out: QueryResult[] = [];
    for (const args of argsList) out.push(await this.query(sql, args, opts));
    return out;
  }

  async copyOut(sql: string, sink: (chunk: Uint8Array) => unknown, opts?: QueryOptions): Promise<string> {
    await this.query(sql, [], opts);
    await sink(new TextEncoder().encode("1\n"));
    return "COPY 1";
  }

  async copyIn(sql: string, source: AsyncIterable<Uint8Array>, opts?: QueryOptions): Promise<string> {
    await this.query(sql, [], opts);
    let n = 0;
    for await (const chunk of source) n += new TextDecoder().decode(chunk).split("\n").length - 1;
    return `COPY ${n}`;
  }

  async listen(channel: string, listener: NotificationListener): Promise<void> {
    await this.query(`LISTEN "${channel}"`, []);
    this.#listeners.set(channel, listener);
  }

  async unlisten(channel: string): Promise<void> {
    await this.query(`UNLISTEN "${channel}"`, []);
    this.#listeners.delete(channel);
  }

  /** Test helper: deliver a notification. */
  notify(channel: string, payload: string): void {
    this.#listeners.get(channel)?.(payload, channel, 1);
  }

  /** The `query` flag of each reset, in order. */
  resetQueries: boolean[] = [];

  async reset(
    options: { query: boolean; signal?: AbortSignal; pipeline?: boolean; behind?: boolean },
  ): Promise<void> {
    this.#guard();
    this.resets++;
    this.resetQueries.push(options.query);
    this.driver.resets++;
    if (options.behind === true) {
      // Queued behind the statements in flight: a pipelined one resolves at once, its failure closes.
      this.behindResets++;
      this.queryCount++;
      const done = play(this.driver.clock, this.driver.reset.next(), "reset", this.driver.slowMs)
        .then(() => this.driver.onResetDone?.(this, options.pipeline === true), (e) => {
          this.terminate();
          throw e;
        });
      if (options.pipeline === true) return void done.catch(() => {});
      return await done;
    }
    if (this.transactionStatus !== "idle") {
      this.queryCount++;
      this.transactionStatus = "idle";
    }
    if (!options.query) return this.driver.onResetDone?.(this, false);
    this.queryCount++;
    try {
      await play(this.driver.clock, this.driver.reset.next(), "reset", this.driver.slowMs, options.signal);
    } catch (e) {
      this.terminate();
      throw e;
    }
    this.driver.onResetDone?.(this, false);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.driver.closes++;
    this.#die(undefined);
    return Promise.resolve();
  }

  terminate(): void {
    if (this.#closed) return;
    this.driver.terminates++;
    this.#die(undefined);
  }

  /** Test helper: the server or network dropped the connection. */
  kill(): void {
    this.#die(new ConnectionError("CONNECTION_LOST", "The server closed the connection"));
  }

  #die(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.driver.open--;
    const lost = new InterfaceError("CONNECTION_CLOSED", "The connection closed during the operation");
    for (const drop of this.#pending) drop(lost);
    const cb = this.#onClose;
    this.#onClose = undefined;
    cb?.(error);
  }

  /** Whether the connection would keep the process alive (the pool unrefs idle connections). */
  refd = true;

  ref(): void {
    this.refd = true;
  }

  unref(): void {
    this.refd = false;
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#onClose = listener;
  }

  resetQuery(): string {
    return "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET SESSION AUTHORIZATION;\nRESET ALL;";
  }

  /** The notice receiver the connection registered (a test calls it to play a server notice). */
  noticeListener: ((notice: Notice) => void) | undefined;

  onNotice(listener: ((notice: Notice) => void) | undefined): void {
    this.noticeListener = listener;
  }

  /** The codecs set, by type oid. */
  codecs = new Map<number, TextCodec>();

  setTypeCodec(type: CodecType, codec: TextCodec | undefined): void {
    if (codec === undefined) this.codecs.delete(type.oid);
    else this.codecs.set(type.oid, codec);
  }
}

export class FakeDriver {
  connect = new Script();
  query = new Script();
  reset = new Script();
  slowMs = 100;
  /** New connections report this as `fallback` (opened on prefer-standby's fallback pass). */
  fallback = false;
  /** When set, a scripted query error carries this `code` (an SQLSTATE such as 25006). */
  queryErrorCode: string | undefined = undefined;
  connects = 0;
  closes = 0;
  terminates = 0;
  resets = 0;
  open = 0;
  maxOpen = 0;
  connectOptions: ConnectOptions[] = [];
  connections: FakeDriverConnection[] = [];
  /** Connect calls in flight (to observe concurrency). */
  inFlight = 0;
  maxInFlight = 0;
  /** Connections report `capabilities.pipelining` (and take `reset({ behind })`). */
  pipelining = false;
  /** Called as each statement starts (before it settles). */
  onQuery:
    | ((con: FakeDriverConnection, sql: string, args: readonly unknown[], opts?: QueryOptions) => void)
    | undefined;
  /** Awaited by each statement before its outcome plays (a test's scheduler orders them). */
  gate: ((sql: string) => Promise<void>) | undefined;
  /** Called when a reset was answered (`pipelined`: queued behind statements, and the pool did not wait for it). */
  onResetDone: ((con: FakeDriverConnection, pipelined: boolean) => void) | undefined;

  constructor(readonly clock: FakeClock) {}

  /** A pool `connect` hook. */
  hook = async (options: ConnectOptions): Promise<Connection> => {
    this.connects++;
    this.connectOptions.push(options);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      // "slow" ignores the signal (the connection arrives late); "never" honours it.
      const outcome = this.connect.next();
      await play(
        this.clock,
        outcome,
        "connect",
        this.slowMs,
        outcome === "never" ? options.signal : undefined,
      );
    } finally {
      this.inFlight--;
    }
    const dc = new FakeDriverConnection(this);
    this.connections.push(dc);
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    return new Connection(dc, options);
  };
}

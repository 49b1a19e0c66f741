/**
 * The pool's LISTEN service (`pool.listen()`): one dedicated connection, outside
 * `maxSize`, carries every channel the application listens on. When that
 * connection is lost, the service reconnects with capped, jittered exponential
 * backoff, LISTENs every channel again and then reports the gap (notifications
 * sent while it was down are lost: PostgreSQL queues notifications per session).
 *
 * The service's desired state is the set of channels with at least one
 * subscription; one sequential loop per connection (`#sync`) makes the
 * connection's LISTENed channels converge on it, one LISTEN or UNLISTEN at a
 * time, so concurrent listen() and unlisten() calls never race on the wire.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import { Connection, connectionInternals } from "./connection.ts";
import { InterfaceError, PoolTimeoutError } from "./errors.ts";
import { durationMs } from "./options.ts";
import type { WarningCode } from "./warnings.ts";
import { type Alarm, Watchdog } from "./watchdog.ts";

/** Receives a notification of `pool.listen()`: its payload and its channel. */
export type ListenCallback = (payload: string, channel: string) => void;

/** Ends one subscription of `pool.listen()`; see {@linkcode ListenService.listen}. */
export type Unlisten = () => Promise<void>;

/** Options of `pool.listen()`. */
export interface ListenOptions {
  /**
   * Seconds to wait for the dedicated connection and the `LISTEN` (while it
   * reconnects, too); past it the call rejects with `LISTEN_TIMEOUT`. `0`
   * waits without bound. Default: the pool's `listenTimeout`.
   */
  timeout?: number;
  /** Aborting gives the call up; it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * What the `onListenGap` pool option receives after the pool's LISTEN
 * connection was lost and every channel is LISTENed again: notifications sent
 * between `error` and now may have been missed (re-read whatever they announce).
 */
export interface ListenGap {
  /** The channels LISTENed again (all the pool listens on). */
  channels: string[];
  /** Why the connection was lost, when the driver said (e.g. `57P01` after `pg_terminate_backend`). */
  error: Error | undefined;
  /** Seconds from the loss until every channel was LISTENed again. */
  downtime: number;
  /** Connection attempts it took. */
  attempts: number;
}

/** Receives a {@linkcode ListenGap}; see the pool option `onListenGap`. */
export type ListenGapHandler = (gap: ListenGap) => void;

/** What the service needs from its pool. */
export interface ListenHost {
  /** The pool's clock. */
  clock: Clock;
  /** Opens a connection through the pool's `connect` hook with its current connect options. */
  open(signal: AbortSignal): Promise<Connection>;
  /** The `onListenGap` option; without it, a gap becomes a `LISTEN_GAP` warning. */
  onGap: ListenGapHandler | undefined;
  /** The pool's warning channel. */
  warn(code: WarningCode, message: string): void;
  /** `listenTimeout` in ms (0: no bound). */
  timeoutMs: number;
  /** Seconds a graceful close of the connection may take (the pool's `releaseTimeout`), or undefined. */
  closeTimeout: number | undefined;
  /** `poolMode: "transaction"`: listen() rejects with `UNSUPPORTED`. */
  transactionMode: boolean;
}

/** The first pause after a failed attempt; it doubles per failure up to the cap, jittered to 50–100%. */
export const LISTEN_BACKOFF_BASE_MS = 100;
/** The longest pause between two attempts. */
export const LISTEN_BACKOFF_CAP_MS = 5000;
/** How long the listen connection may sit idle before a heartbeat round trip checks it. */
export const LISTEN_HEARTBEAT_MS = 30_000;
/** How long the heartbeat waits for its answer before the connection is replaced. */
export const LISTEN_HEARTBEAT_TIMEOUT_MS = 10_000;
/** Longest channel name PostgreSQL keeps (NAMEDATALEN - 1 bytes); a longer one would be truncated. */
const MAX_CHANNEL_BYTES = 63;

/** One listen() call's callback. */
interface Subscription {
  readonly channel: string;
  readonly callback: ListenCallback;
}

/** A listen() call waiting for its channel to be LISTENed. */
interface PendingListen {
  readonly sub: Subscription;
  readonly resolve: (unlisten: Unlisten) => void;
  readonly reject: (error: unknown) => void;
  /** Ends the wait's timer and abort listener. */
  dispose: () => void;
}

/** An unlisten() call waiting for its channel's `UNLISTEN`. */
interface PendingUnlisten {
  readonly channel: string;
  readonly resolve: () => void;
}

/** A loss not reported yet: LISTENed channels were lost at `since`. */
interface Lost {
  since: number;
  error: Error | undefined;
}

/** The connection being opened, its abort, and a loss to report once it is in sync. */
interface Connecting {
  kind: "connecting";
  abort: AbortController;
  lost: Lost | undefined;
}

/** The dedicated connection, the channels LISTENed on it, and whether its sync loop runs. */
interface Open {
  kind: "open";
  con: Connection;
  listened: Set<string>;
  lost: Lost | undefined;
  syncing: boolean;
  /** The next heartbeat, armed while the connection is in sync. */
  heartbeat: Alarm | undefined;
}

/** The pause before the next attempt. */
interface Waiting {
  kind: "waiting";
  alarm: Alarm;
  lost: Lost | undefined;
}

type ServiceState =
  | { kind: "idle" }
  | Connecting
  | Open
  | Waiting
  | { kind: "closed" };

const conInternals = connectionInternals();
const encoder = new TextEncoder();

function checkChannel(channel: unknown): asserts channel is string {
  if (typeof channel !== "string" || channel === "") {
    throw new InterfaceError("INVALID_ARGUMENT", "Cannot listen as 'channel' must be a non-empty string");
  }
  if (encoder.encode(channel).length > MAX_CHANNEL_BYTES) {
    throw new InterfaceError(
      "INVALID_ARGUMENT",
      `Cannot listen as the channel name is longer than ${MAX_CHANNEL_BYTES} bytes (the server would truncate it)`,
    );
  }
}

/**
 * The pause before connection attempt number `failures + 1` after `failures`
 * failed ones: none after a loss of a healthy connection, then 100 ms doubling
 * up to 5 s, each jittered to 50–100% by `random()`.
 *
 * @param failures Attempts failed in a row.
 * @param random A number in `[0, 1)`.
 * @returns Milliseconds.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenBackoffMs } from "./listen_service.ts";
 * assert.equal(listenBackoffMs(0, 0.5), 0);
 * assert.equal(listenBackoffMs(1, 0), 50);
 * assert.equal(listenBackoffMs(20, 0.5), 3750); // capped at 5 s, then jittered
 * ```
 */
export function listenBackoffMs(failures: number, random: number): number {
  if (failures <= 0) return 0;
  const full = Math.min(LISTEN_BACKOFF_CAP_MS, LISTEN_BACKOFF_BASE_MS * 2 ** (failures - 1));
  return full * (0.5 + 0.5 * random);
}

/**
 * The LISTEN service of one pool. Internal: the pool makes one and forwards
 * `listen()`, `close()` and `terminate()` to it.
 *
 * @example Over the pool (the way it is used)
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool } from "@x/pgpool";
 * await using pool = await createPool({ maxSize: 2 });
 * const got = Promise.withResolvers<string>();
 * const unlisten = await pool.listen("jobs", (payload) => got.resolve(payload));
 * await pool.execute("SELECT pg_notify('jobs', 'job 7')");
 * assert.equal(await got.promise, "job 7");
 * await unlisten();
 * ```
 */
export class ListenService {
  #host: ListenHost;
  #watchdog: Watchdog;
  #random: () => number;
  #state: ServiceState = { kind: "idle" };
  /** The desired state: the subscriptions of each channel (a channel is here while it has one). */
  #channels = new Map<string, Set<Subscription>>();
  #pendingListens = new Set<PendingListen>();
  #pendingUnlistens: PendingUnlisten[] = [];
  /** Attempts failed in a row (reset once a connection is in sync). */
  #failures = 0;
  /** Attempts since the last loss, for the gap report. */
  #attempts = 0;
  /** The last failed attempt's error, for a timed-out listen()'s cause. */
  #lastError: unknown = undefined;
  #closing: Promise<void> | undefined;
  /** The connection `close()` is closing gracefully (a `terminate()` meanwhile drops it). */
  #closingCon: Connection | undefined;
  /** Delivers a notification to the channel's subscriptions; one function for every channel. */
  #dispatch = (payload: string, channel: string): void => {
    const subs = this.#channels.get(channel);
    if (subs === undefined) return;
    for (const sub of [...subs]) {
      try {
        sub.callback(payload, channel);
      } catch (e) {
        // A callback's failure must reach neither the driver's reader nor the other callbacks.
        this.#host.warn(
          "LISTEN_CALLBACK_FAILED",
          `A pool.listen() callback for channel ${JSON.stringify(channel)} threw: ${String(e)}`,
        );
      }
    }
  };

  /**
   * @param host What the service needs from its pool.
   */
  constructor(host: ListenHost) {
    this.#host = host;
    this.#watchdog = new Watchdog(host.clock);
    const clock = host.clock;
    this.#random = clock.random === undefined ? Math.random : () => clock.random!();
  }

  /**
   * Subscribes `callback` to `channel`; resolves once the channel is LISTENed on
   * the dedicated connection (opened if needed).
   *
   * @param channel The channel (quoted as an identifier on the wire).
   * @param callback Receives payload and channel.
   * @param options `timeout` (seconds) and `signal` bound the wait.
   * @returns The unlisten function of this subscription.
   */
  listen(channel: string, callback: ListenCallback, options?: ListenOptions): Promise<Unlisten> {
    try {
      if (this.#host.transactionMode) {
        throw new InterfaceError(
          "UNSUPPORTED",
          "Cannot call listen() in transaction pool mode as notifications go to the server session that ran " +
            "LISTEN, which the pooler lends to other clients after each transaction; use a pool that does not " +
            "go through the transaction pooler",
        );
      }
      checkChannel(channel);
      if (typeof callback !== "function") {
        throw new InterfaceError("INVALID_ARGUMENT", "Cannot listen as 'callback' must be a function");
      }
      if (options !== undefined && (typeof options !== "object" || options === null)) {
        throw new TypeError("Cannot listen as the options must be an object");
      }
      const timeoutMs = durationMs("Cannot listen", "timeout", options?.timeout, this.#host.timeoutMs);
      const signal = options?.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) {
        throw new TypeError("Cannot listen as 'signal' must be an AbortSignal");
      }
      if (this.#state.kind === "closed") {
        throw new InterfaceError("POOL_CLOSED", "Cannot listen as the pool is closed");
      }
      signal?.throwIfAborted();
      return this.#subscribe({ channel, callback }, timeoutMs, signal);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #subscribe(sub: Subscription, timeoutMs: number, signal: AbortSignal | undefined): Promise<Unlisten> {
    const { promise, resolve, reject } = Promise.withResolvers<Unlisten>();
    let alarm: Alarm | undefined;
    const onAbort = (): void => this.#giveUp(pending, signal!.reason);
    const pending: PendingListen = {
      sub,
      resolve,
      reject,
      dispose: () => {
        alarm?.cancel();
        signal?.removeEventListener("abort", onAbort);
      },
    };
    this.#pendingListens.add(pending);
    let subs = this.#channels.get(sub.channel);
    if (subs === undefined) this.#channels.set(sub.channel, subs = new Set());
    subs.add(sub);
    if (timeoutMs > 0) {
      alarm = this.#watchdog.after(timeoutMs, () => {
        const last = this.#lastError;
        this.#giveUp(
          pending,
          new PoolTimeoutError(
            "LISTEN_TIMEOUT",
            `Timed out after ${timeoutMs / 1000}s waiting to LISTEN on the pool's listen connection` +
              (last === undefined ? "" : `; the last connection attempt failed: ${errorText(last)}`),
            last === undefined ? undefined : { cause: last },
          ),
        );
      });
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#wake();
    return promise;
  }

  /** A pending listen() ends without its subscription: timeout, abort, a failed LISTEN or connect. */
  #giveUp(pending: PendingListen, error: unknown): void {
    if (!this.#pendingListens.delete(pending)) return;
    pending.dispose();
    this.#drop(pending.sub);
    pending.reject(error);
    this.#wake();
  }

  /** Removes a subscription from the desired state. */
  #drop(sub: Subscription): void {
    const subs = this.#channels.get(sub.channel);
    if (subs === undefined || !subs.delete(sub)) return;
    if (subs.size === 0) this.#channels.delete(sub.channel);
  }

  /** The unlisten function of an active subscription. */
  #unlistenOf(sub: Subscription): Unlisten {
    let done: Promise<void> | undefined;
    return () => done ??= this.#unlisten(sub);
  }

  #unlisten(sub: Subscription): Promise<void> {
    this.#drop(sub);
    const s = this.#state;
    if (this.#channels.has(sub.channel) || s.kind !== "open" || !s.listened.has(sub.channel)) {
      this.#wake();
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#pendingUnlistens.push({ channel: sub.channel, resolve });
    this.#wake();
    return promise;
  }

  /** Something changed: move towards the desired state. */
  #wake(): void {
    const s = this.#state;
    switch (s.kind) {
      case "idle":
        if (this.#channels.size > 0) {
          this.#move({ kind: "connecting", abort: new AbortController(), lost: undefined });
        }
        return;
      case "open":
        void this.#sync(s);
        return;
      case "connecting":
      case "waiting":
        // Every listen() given up before the connection came: stop trying. Else the connection, once
        // open, syncs to whatever is desired then.
        if (this.#channels.size === 0) this.#move({ kind: "idle" });
        return;
      case "closed":
        return;
    }
  }

  /**
   * The one place the state changes. Leaving `connecting` for anything but
   * `open` aborts the attempt; leaving `waiting` cancels its pause. Entering a
   * state starts its work.
   */
  #move(next: ServiceState): void {
    const prev = this.#state;
    if (prev.kind === "closed") return;
    this.#state = next;
    if (prev.kind === "connecting" && next.kind !== "open") {
      prev.abort.abort(
        new InterfaceError("POOL_CLOSED", "The pool's listen connection attempt was given up"),
      );
    } else if (prev.kind === "waiting") prev.alarm.cancel();
    else if (prev.kind === "open") prev.heartbeat?.cancel();
    switch (next.kind) {
      case "connecting":
        this.#attempts++;
        void this.#connect(next);
        break;
      case "open":
        void this.#sync(next);
        break;
      case "idle":
      case "closed":
        break;
    }
    this.#settle();
  }

  /** One connection attempt. */
  async #connect(state: Connecting): Promise<void> {
    let con: Connection;
    try {
      const result: unknown = await this.#host.open(state.abort.signal);
      if (!(result instanceof Connection)) {
        if (typeof (result as { terminate?: unknown })?.terminate === "function") {
          (result as { terminate(): void }).terminate();
        }
        throw new InterfaceError(
          "BAD_CONNECT_RESULT",
          "Expected the connect hook to return a Connection for the pool's listen connection",
        );
      }
      con = result;
    } catch (e) {
      if (this.#state === state) this.#failed(state, e);
      return;
    }
    if (this.#state !== state) {
      con.terminate(); // closed or given up meanwhile
      return;
    }
    conInternals.onClose(con, (error) => this.#lost(con, error));
    this.#move({
      kind: "open",
      con,
      listened: new Set(),
      lost: state.lost,
      syncing: false,
      heartbeat: undefined,
    });
    if (con.isClosed()) this.#lost(con, undefined); // closed before its close listener was in place
  }

  /** An attempt failed: retry after a pause while a subscription is active, else fail the waiting calls. */
  #failed(state: Connecting, error: unknown): void {
    this.#failures++;
    this.#lastError = error;
    if (this.#activeCount() === 0) {
      // Nobody has been told they listen: the callers waiting hear why, as an acquire would.
      for (const pending of [...this.#pendingListens]) this.#giveUp(pending, error);
      this.#failures = 0;
      this.#attempts = 0;
      if (this.#channels.size === 0) {
        this.#move({ kind: "idle" });
        return;
      }
    }
    this.#retry(state.lost);
  }

  /** Subscriptions whose listen() resolved. */
  #activeCount(): number {
    let n = 0;
    for (const subs of this.#channels.values()) n += subs.size;
    return n - this.#pendingListens.size;
  }

  /** Connects again, at once or after the backoff pause. */
  #retry(lost: Lost | undefined): void {
    const pause = this.#failures === 0 ? 0 : listenBackoffMs(this.#failures, this.#random());
    if (pause === 0) {
      this.#move({ kind: "connecting", abort: new AbortController(), lost });
      return;
    }
    const alarm = this.#watchdog.after(pause, () => {
      if (this.#state.kind === "waiting" && this.#state.alarm === alarm) {
        this.#move({ kind: "connecting", abort: new AbortController(), lost });
      }
    });
    this.#move({ kind: "waiting", alarm, lost });
  }

  /** The dedicated connection closed (server kill, restart, network loss, or a failed heartbeat). */
  #lost(con: Connection, error: Error | undefined): void {
    const s = this.#state;
    if (s.kind !== "open" || s.con !== con) return;
    let lost = s.lost;
    if (lost === undefined && s.listened.size > 0) {
      lost = { since: this.#host.clock.now(), error };
      this.#attempts = 0;
    }
    if (error !== undefined) this.#lastError = error;
    if (this.#channels.size === 0) this.#move({ kind: "idle" });
    else this.#retry(lost);
  }

  /**
   * Makes the connection's LISTENed channels match the desired ones, one
   * statement at a time; then reports a pending gap, and closes the connection
   * when no channel is left.
   */
  async #sync(state: Open): Promise<void> {
    if (state.syncing) return;
    state.syncing = true;
    try {
      while (this.#state === state) {
        const add = firstMissing(this.#channels.keys(), state.listened);
        if (add !== undefined) {
          try {
            await state.con.addListener(add, this.#dispatch);
          } catch (e) {
            if (this.#state !== state || state.con.isClosed()) return; // lost: the reconnect takes over
            // The server refused this LISTEN: the calls waiting on it hear why.
            for (const pending of [...this.#pendingListens]) {
              if (pending.sub.channel === add) this.#giveUp(pending, e);
            }
            // Active subscriptions of that channel (a refusal on re-LISTEN) stay desired; try later.
            if (this.#channels.has(add)) {
              this.#failures++;
              this.#host.warn(
                "LISTEN_FAILED",
                `LISTEN ${
                  JSON.stringify(add)
                } failed on the pool's listen connection; it reconnects and tries ` +
                  `again: ${errorText(e)}`,
              );
              state.con.terminate();
              return;
            }
            continue;
          }
          if (this.#state !== state) return;
          state.listened.add(add);
          this.#settle();
          continue;
        }
        const drop = firstMissing(state.listened.keys(), this.#channels);
        if (drop !== undefined) {
          try {
            await state.con.removeListener(drop, this.#dispatch);
          } catch {
            if (this.#state !== state || state.con.isClosed()) return;
            // An UNLISTEN that failed leaves a channel nobody reads: its notifications are dropped here.
          }
          if (this.#state !== state) return;
          state.listened.delete(drop);
          this.#settle();
          continue;
        }
        // In sync: a listen() of a channel LISTENed already resolves here.
        this.#settle();
        if (state.lost !== undefined) {
          const lost = state.lost;
          state.lost = undefined;
          this.#reportGap(lost, [...state.listened]);
        }
        this.#failures = 0;
        this.#lastError = undefined;
        if (this.#channels.size === 0) {
          this.#move({ kind: "idle" });
          this.#closeConnection(state.con);
          return;
        }
        state.heartbeat?.cancel();
        state.heartbeat = this.#watchdog.after(LISTEN_HEARTBEAT_MS, () => void this.#beat(state));
        return;
      }
    } finally {
      state.syncing = false;
    }
  }

  /**
   * A round trip on an idle listen connection: a connection that does not answer
   * within {@linkcode LISTEN_HEARTBEAT_TIMEOUT_MS} (a cut network, a frozen
   * server) is dropped and replaced like a lost one. Without it a dead network
   * would go unnoticed: a listening session sends nothing.
   */
  async #beat(state: Open): Promise<void> {
    state.heartbeat = undefined;
    if (this.#state !== state || state.syncing) return;
    try {
      await state.con.execute("SELECT 1", undefined, { timeout: LISTEN_HEARTBEAT_TIMEOUT_MS / 1000 });
    } catch (e) {
      if (this.#state !== state) return;
      this.#lost(state.con, e instanceof Error ? e : new Error(String(e)));
      state.con.terminate();
      return;
    }
    if (this.#state === state && !state.syncing && state.heartbeat === undefined) {
      state.heartbeat = this.#watchdog.after(LISTEN_HEARTBEAT_MS, () => void this.#beat(state));
    }
  }

  /** Resolves the listen() calls whose channel is LISTENed and the unlisten() calls whose channel no longer is. */
  #settle(): void {
    const s = this.#state;
    const listened = s.kind === "open" ? s.listened : undefined;
    if (listened !== undefined && this.#pendingListens.size > 0) {
      for (const pending of [...this.#pendingListens]) {
        if (!listened.has(pending.sub.channel)) continue;
        this.#pendingListens.delete(pending);
        pending.dispose();
        pending.resolve(this.#unlistenOf(pending.sub));
      }
    }
    if (this.#pendingUnlistens.length > 0) {
      const waiting = this.#pendingUnlistens;
      this.#pendingUnlistens = [];
      for (const u of waiting) {
        if (listened?.has(u.channel) && !this.#channels.has(u.channel)) this.#pendingUnlistens.push(u);
        else u.resolve();
      }
    }
  }

  #reportGap(lost: Lost, channels: string[]): void {
    const gap: ListenGap = {
      channels,
      error: lost.error,
      downtime: (this.#host.clock.now() - lost.since) / 1000,
      attempts: this.#attempts,
    };
    this.#attempts = 0;
    const onGap = this.#host.onGap;
    if (onGap === undefined) {
      this.#host.warn(
        "LISTEN_GAP",
        `The pool's listen connection was lost${
          lost.error === undefined ? "" : ` (${errorText(lost.error)})`
        } and is back after ${gap.downtime}s with LISTEN on ${channels.length} channel(s); ` +
          "notifications sent meanwhile may be missing (set onListenGap to handle this)",
      );
      return;
    }
    try {
      onGap(gap);
    } catch (e) {
      this.#host.warn("LISTEN_CALLBACK_FAILED", `The onListenGap callback threw: ${String(e)}`);
    }
  }

  /** Closes a connection the service no longer uses, gracefully, in the background. */
  #closeConnection(con: Connection): void {
    con.close({ timeout: this.#host.closeTimeout }).catch(() => con.terminate());
  }

  /** Stops for good: waiting calls reject with `POOL_CLOSED`, later ones too. */
  #stop(): Connection | undefined {
    const s = this.#state;
    this.#move({ kind: "closed" });
    this.#watchdog.stop();
    const closed = new InterfaceError("POOL_CLOSED", "Cannot listen as the pool was closed");
    for (const pending of [...this.#pendingListens]) this.#giveUp(pending, closed);
    this.#channels.clear();
    const unlistens = this.#pendingUnlistens;
    this.#pendingUnlistens = [];
    for (const u of unlistens) u.resolve();
    return s.kind === "open" ? s.con : undefined;
  }

  /**
   * Stops the service and closes the connection gracefully (bounded by the
   * pool's `releaseTimeout`, then terminated). Never rejects; idempotent.
   *
   * @returns Settles once the connection is closed.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const con = this.#closingCon = this.#stop();
    return this.#closing = con === undefined
      ? Promise.resolve()
      : con.close({ timeout: this.#host.closeTimeout }).catch(() => con.terminate()).finally(() => {
        this.#closingCon = undefined;
      });
  }

  /** Stops the service and drops the connection now (also one that `close()` is closing). */
  terminate(): void {
    const con = this.#stop() ?? this.#closingCon;
    this.#closingCon = undefined;
    con?.terminate();
    this.#closing ??= Promise.resolve();
  }
}

function firstMissing(keys: Iterable<string>, from: { has(key: string): boolean }): string | undefined {
  for (const key of keys) if (!from.has(key)) return key;
  return undefined;
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === "string" ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

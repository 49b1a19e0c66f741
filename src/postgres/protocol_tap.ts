/**
 * A reader of the backend's byte stream. It frames messages (a type byte plus
 * an int32 length that counts itself), copes with messages split across
 * chunks, and decodes the few messages the driver needs: transaction status,
 * backend key, parameter status, notifications, command tags and errors.
 *
 * The bytes go on to postgres.js as they came, except for cycles the driver
 * sent itself (a pipelined session reset): after {@linkcode ProtocolTap.swallow}
 * the next cycle, up to and including its `ReadyForQuery`, is cut out of the
 * stream and reported to `swallowed` instead of `cycle`.
 *
 * Each `ReadyForQuery` closes one "cycle" (a simple query, or the messages up to
 * a `Sync`); the tap reports the command tags and the first error seen in it.
 *
 * @module
 */

import type { PostgresErrorFields } from "../errors.ts";
import type { TransactionStatus } from "../driver.ts";

/** What the server said between two `ReadyForQuery` messages. */
export interface Cycle {
  /** Command tags of every `CommandComplete`, in order. */
  tags: string[];
  /** The first `ErrorResponse`, if any. */
  error: PostgresErrorFields | undefined;
  /** The transaction status the cycle ended in. */
  status: TransactionStatus;
}

/** Callbacks of a {@linkcode ProtocolTap}. */
export interface TapHandlers {
  /** A `ReadyForQuery` ended a cycle. */
  cycle?(cycle: Cycle): void;
  /** A `NotificationResponse` arrived. */
  notification?(pid: number, channel: string, payload: string): void;
  /** An `ErrorResponse` arrived whose severity is `FATAL` or `PANIC`. */
  fatal?(error: PostgresErrorFields): void;
  /** A swallowed cycle ended (see {@linkcode ProtocolTap.swallow}). */
  swallowed?(cycle: Cycle): void;
  /**
   * A cycle being cut holds a `ParseComplete` or `BindComplete`: it answers an
   * extended-protocol statement of postgres.js, never the driver's own simple
   * query, so the stream is out of step and the connection must not be used.
   */
  misaligned?(): void;
}

const TYPE_READY = 0x5a; // Z
const TYPE_KEY = 0x4b; // K
const TYPE_PARAMETER = 0x53; // S
const TYPE_NOTIFICATION = 0x41; // A
const TYPE_ERROR = 0x45; // E
const TYPE_COMPLETE = 0x43; // C
const TYPE_PARSE_COMPLETE = 0x31; // 1
const TYPE_BIND_COMPLETE = 0x32; // 2

/** Message types whose body the tap decodes; all others are skipped unread. */
const DECODED = new Set([TYPE_READY, TYPE_KEY, TYPE_PARAMETER, TYPE_NOTIFICATION, TYPE_ERROR, TYPE_COMPLETE]);

const decoder = new TextDecoder();

/**
 * Decodes the fields of an `ErrorResponse` or `NoticeResponse` body.
 *
 * @example
 * ```ts
 * import { parseErrorFields } from "./protocol_tap.ts";
 * const body = new TextEncoder().encode("SERROR\0C42P01\0Mno such table\0\0");
 * console.log(parseErrorFields(body).code); // "42P01"
 * ```
 */
export function parseErrorFields(body: Uint8Array): PostgresErrorFields {
  const raw = new Map<string, string>();
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const key = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    const stop = end === -1 ? body.length : end;
    raw.set(key, decoder.decode(body.subarray(i + 1, stop)));
    i = stop + 1;
  }
  const position = raw.get("P");
  return {
    code: raw.get("C") ?? "XX000",
    message: raw.get("M") ?? "Unknown server error",
    severity: raw.get("V") ?? raw.get("S"),
    detail: raw.get("D"),
    hint: raw.get("H"),
    position: position === undefined ? undefined : Number(position),
    schema: raw.get("s"),
    table: raw.get("t"),
    column: raw.get("c"),
    constraint: raw.get("n"),
    dataType: raw.get("d"),
    where: raw.get("W"),
  };
}

function readInt32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/**
 * Watches backend messages as they stream past.
 *
 * @example
 * ```ts
 * import { ProtocolTap } from "./protocol_tap.ts";
 * const tap = new ProtocolTap({ cycle: (c) => console.log(c.status) });
 * tap.feed(new Uint8Array([0x5a, 0, 0, 0, 5, 0x49])); // ReadyForQuery, idle
 * console.log(tap.status); // "idle"
 * ```
 */
export class ProtocolTap {
  #handlers: TapHandlers;
  #header = new Uint8Array(5);
  #headerFill = 0;
  #type = 0;
  #remaining = 0;
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #tags: string[] = [];
  #error: PostgresErrorFields | undefined;
  /** Cycles still to cut from the stream. */
  #swallowPending = 0;
  /** Whether the message being read is cut. */
  #cut = false;

  /** Transaction status from the last `ReadyForQuery`. */
  status: TransactionStatus = "idle";
  /** Backend pid from `BackendKeyData` (0 until seen). */
  pid = 0;
  /** Cancellation secret from `BackendKeyData`. */
  secret = 0;
  /** Number of `ReadyForQuery` messages seen. */
  cycles = 0;
  /** Every `ParameterStatus` seen, latest value per name. */
  readonly parameters: Map<string, string> = new Map();

  /** @param handlers Callbacks for decoded events. */
  constructor(handlers: TapHandlers = {}) {
    this.#handlers = handlers;
  }

  /** Replaces the callbacks. */
  setHandlers(handlers: TapHandlers): void {
    this.#handlers = handlers;
  }

  /**
   * The next cycle (everything up to and including the next `ReadyForQuery`)
   * answers a statement the driver wrote itself: cut it from the stream.
   */
  swallow(): void {
    this.#swallowPending++;
  }

  /** Cycles announced with {@linkcode ProtocolTap.swallow} whose `ReadyForQuery` has not arrived yet. */
  get swallowing(): number {
    return this.#swallowPending;
  }

  /**
   * Reads one chunk of the backend stream and returns the bytes to pass on:
   * the chunk itself, or a copy without the swallowed messages.
   */
  feed(chunk: Uint8Array): Uint8Array {
    let at = 0;
    const length = chunk.length;
    let out: Uint8Array | undefined;
    let outLength = 0;
    /** Passes bytes [from, to) on, or cuts them. */
    const pass = (from: number, to: number): void => {
      if (this.#cut) {
        if (out === undefined) {
          out = new Uint8Array(length);
          out.set(chunk.subarray(0, from));
          outLength = from;
        }
      } else if (out !== undefined) {
        out.set(chunk.subarray(from, to), outLength);
        outLength += to - from;
      }
    };
    while (at < length) {
      if (this.#remaining === 0 && this.#headerFill < 5) {
        if (this.#headerFill === 0) this.#cut = this.#swallowPending > 0;
        const take = Math.min(5 - this.#headerFill, length - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        pass(at, at + take);
        at += take;
        if (this.#headerFill < 5) break;
        this.#type = this.#header[0]!;
        this.#remaining = readInt32(this.#header, 1) - 4;
        if (this.#remaining < 0) this.#remaining = 0;
        this.#body = DECODED.has(this.#type) ? new Uint8Array(this.#remaining) : undefined;
        this.#bodyFill = 0;
        if (this.#remaining === 0) {
          this.#finish();
          continue;
        }
      }
      const take = Math.min(this.#remaining, length - at);
      if (this.#body !== undefined) this.#body.set(chunk.subarray(at, at + take), this.#bodyFill);
      this.#bodyFill += take;
      this.#remaining -= take;
      pass(at, at + take);
      at += take;
      if (this.#remaining === 0) this.#finish();
    }
    return out === undefined ? chunk : out.subarray(0, outLength);
  }

  #finish(): void {
    const type = this.#type;
    if (this.#cut && (type === TYPE_PARSE_COMPLETE || type === TYPE_BIND_COMPLETE)) {
      this.#handlers.misaligned?.();
    }
    const body = this.#body ?? new Uint8Array(0);
    this.#headerFill = 0;
    this.#body = undefined;
    switch (type) {
      case TYPE_READY:
        return this.#ready(body);
      case TYPE_KEY:
        this.pid = readInt32(body, 0);
        this.secret = readInt32(body, 4);
        return;
      case TYPE_PARAMETER: {
        const split = body.indexOf(0);
        const end = body.indexOf(0, split + 1);
        this.parameters.set(
          decoder.decode(body.subarray(0, split)),
          decoder.decode(body.subarray(split + 1, end === -1 ? body.length : end)),
        );
        return;
      }
      case TYPE_NOTIFICATION: {
        const pid = readInt32(body, 0);
        const channelEnd = body.indexOf(0, 4);
        const payloadEnd = body.indexOf(0, channelEnd + 1);
        const channel = decoder.decode(body.subarray(4, channelEnd));
        const payload = decoder.decode(
          body.subarray(channelEnd + 1, payloadEnd === -1 ? body.length : payloadEnd),
        );
        this.#handlers.notification?.(pid, channel, payload);
        return;
      }
      case TYPE_ERROR: {
        const fields = parseErrorFields(body);
        this.#error ??= fields;
        if (fields.severity === "FATAL" || fields.severity === "PANIC") this.#handlers.fatal?.(fields);
        return;
      }
      case TYPE_COMPLETE: {
        const end = body.indexOf(0);
        this.#tags.push(decoder.decode(body.subarray(0, end === -1 ? body.length : end)));
        return;
      }
    }
  }

  #ready(body: Uint8Array): void {
    const byte = body[0];
    this.status = byte === 0x54 ? "transaction" : byte === 0x45 ? "failed" : "idle";
    const cycle: Cycle = { tags: this.#tags, error: this.#error, status: this.status };
    this.#tags = [];
    this.#error = undefined;
    if (this.#cut) {
      this.#swallowPending--;
      this.#handlers.swallowed?.(cycle);
      return;
    }
    this.cycles++;
    this.#handlers.cycle?.(cycle);
  }
}

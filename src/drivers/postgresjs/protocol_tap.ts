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

import type { PostgresErrorFields } from "../../core/errors.ts";
import type { TransactionStatus } from "../../core/driver.ts";

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
  /**
   * A swallowed cycle ended (see {@linkcode ProtocolTap.swallow}). Its `tags`
   * are left empty: nobody reads them, so they are not decoded.
   */
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

/** Message types whose body the tap decodes (1), by type byte; all others are skipped unread. */
const DECODED = new Uint8Array(256);
for (const type of [TYPE_READY, TYPE_KEY, TYPE_PARAMETER, TYPE_NOTIFICATION, TYPE_ERROR, TYPE_COMPLETE]) {
  DECODED[type] = 1;
}

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

const EMPTY = new Uint8Array(0);

/** Longest command tag kept for reuse (see `ProtocolTap.#tag`). */
const TAG_CACHE_MAX = 64;

/**
 * Watches backend messages as they stream past.
 *
 * Messages that lie whole in a chunk (nearly all of them) are decoded where
 * they lie, without copying; only a message split across chunks is gathered
 * into a buffer of its own, and only when its body is decoded at all. The
 * returned bytes are the chunk itself, or a view of it when the cut messages
 * lie at its start or end; a copy is made only when a cut lies between two
 * passed ranges.
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
  /** The start of a message whose 5-byte header was split across chunks. */
  #header = new Uint8Array(5);
  /** Header bytes held in `#header` (0: no header is pending). */
  #headerFill = 0;
  /** Type of the message whose body is still coming. */
  #type = 0;
  /** Body bytes of a split message still to come. */
  #remaining = 0;
  /** The split message's body, gathered when its type is decoded. */
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #tags: string[] = [];
  #error: PostgresErrorFields | undefined;
  /** Cycles still to cut from the stream. */
  #swallowPending = 0;
  /** Whether the message being read is cut. */
  #cut = false;
  /** Passed bytes of the chunk being fed: the current run of them, and a copy once runs are apart. */
  #runFrom = 0;
  #runTo = 0;
  #out: Uint8Array | undefined;
  #outLength = 0;
  /** The last command tag and its bytes: a statement run again reports the same tag. */
  #lastTag = "";
  #lastTagBytes: Uint8Array = EMPTY;

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
   * the chunk itself, a view of it, or a copy without the swallowed messages.
   */
  feed(chunk: Uint8Array): Uint8Array {
    const length = chunk.length;
    this.#runFrom = 0;
    this.#runTo = 0;
    this.#out = undefined;
    this.#outLength = 0;
    let at = this.#headerFill > 0 || this.#remaining > 0 ? this.#continue(chunk) : 0;
    while (at < length) {
      // Whether a message is cut is decided at its first byte: a swallow() announced later
      // concerns a later cycle.
      const cut = this.#swallowPending > 0;
      this.#cut = cut;
      if (length - at < 5) {
        // Only part of the header is here: keep it for the next chunk.
        for (let i = at; i < length; i++) this.#header[i - at] = chunk[i]!;
        this.#headerFill = length - at;
        this.#pass(chunk, at, length, cut);
        break;
      }
      const type = chunk[at]!;
      const size = Math.max(0, readInt32(chunk, at + 1) - 4);
      const bodyAt = at + 5;
      const end = bodyAt + size;
      if (end <= length) {
        this.#pass(chunk, at, end, cut);
        this.#message(type, chunk, bodyAt, end);
        at = end;
        continue;
      }
      // The body goes on in later chunks.
      this.#type = type;
      this.#remaining = end - length;
      if (DECODED[type] === 1) {
        this.#body = new Uint8Array(size);
        this.#body.set(chunk.subarray(bodyAt, length));
        this.#bodyFill = length - bodyAt;
      } else {
        this.#body = undefined;
      }
      this.#pass(chunk, at, length, cut);
      break;
    }
    return this.#passed(chunk);
  }

  /** Goes on with a message begun in an earlier chunk; returns where the next message starts. */
  #continue(chunk: Uint8Array): number {
    const length = chunk.length;
    let at = 0;
    if (this.#headerFill > 0) {
      const take = Math.min(5 - this.#headerFill, length);
      for (let i = 0; i < take; i++) this.#header[this.#headerFill + i] = chunk[i]!;
      this.#headerFill += take;
      this.#pass(chunk, 0, take, this.#cut);
      at = take;
      if (this.#headerFill < 5) return at;
      this.#headerFill = 0;
      const type = this.#header[0]!;
      const size = Math.max(0, readInt32(this.#header, 1) - 4);
      if (size === 0) {
        this.#message(type, EMPTY, 0, 0);
        return at;
      }
      this.#type = type;
      this.#remaining = size;
      this.#body = DECODED[type] === 1 ? new Uint8Array(size) : undefined;
      this.#bodyFill = 0;
    }
    const take = Math.min(this.#remaining, length - at);
    if (this.#body !== undefined) this.#body.set(chunk.subarray(at, at + take), this.#bodyFill);
    this.#bodyFill += take;
    this.#remaining -= take;
    this.#pass(chunk, at, at + take, this.#cut);
    at += take;
    if (this.#remaining === 0) {
      const body = this.#body ?? EMPTY;
      this.#body = undefined;
      this.#message(this.#type, body, 0, body.length);
    }
    return at;
  }

  /** Bytes [from, to) of the chunk are passed on, or cut. */
  #pass(chunk: Uint8Array, from: number, to: number, cut: boolean): void {
    if (cut || from === to) return;
    if (this.#runFrom === this.#runTo) {
      this.#runFrom = from;
    } else if (this.#runTo !== from) {
      // A cut lies between this run and the last: from now on the passed bytes are copied.
      this.#flushRun(chunk);
      this.#runFrom = from;
    }
    this.#runTo = to;
  }

  #flushRun(chunk: Uint8Array): void {
    this.#out ??= new Uint8Array(chunk.length);
    this.#out.set(chunk.subarray(this.#runFrom, this.#runTo), this.#outLength);
    this.#outLength += this.#runTo - this.#runFrom;
  }

  #passed(chunk: Uint8Array): Uint8Array {
    if (this.#out === undefined) {
      if (this.#runFrom === 0 && this.#runTo === chunk.length) return chunk;
      return chunk.subarray(this.#runFrom, this.#runTo);
    }
    if (this.#runFrom !== this.#runTo) this.#flushRun(chunk);
    const out = this.#out.subarray(0, this.#outLength);
    this.#out = undefined;
    return out;
  }

  /** Decodes one whole message whose body is `bytes[start, end)`. */
  #message(type: number, bytes: Uint8Array, start: number, end: number): void {
    switch (type) {
      case TYPE_READY:
        return this.#ready(start < end ? bytes[start]! : 0);
      case TYPE_COMPLETE: {
        // The tags of a cut cycle are never read: skip decoding them.
        if (this.#cut) return;
        let stop = start;
        while (stop < end && bytes[stop] !== 0) stop++;
        this.#tags.push(this.#tag(bytes, start, stop));
        return;
      }
      case TYPE_PARSE_COMPLETE:
      case TYPE_BIND_COMPLETE:
        if (this.#cut) this.#handlers.misaligned?.();
        return;
      case TYPE_KEY:
      case TYPE_PARAMETER:
      case TYPE_NOTIFICATION:
      case TYPE_ERROR:
        return this.#rare(type, bytes.subarray(start, end));
    }
  }

  /** A command tag: the last one again when its bytes are the same (no decoding, no new string). */
  #tag(bytes: Uint8Array, start: number, stop: number): string {
    const n = stop - start;
    const last = this.#lastTagBytes;
    if (last.length === n && n > 0) {
      let i = 0;
      while (i < n && bytes[start + i] === last[i]) i++;
      if (i === n) return this.#lastTag;
    }
    const tag = decoder.decode(bytes.subarray(start, stop));
    if (n <= TAG_CACHE_MAX) {
      this.#lastTagBytes = bytes.slice(start, stop);
      this.#lastTag = tag;
    }
    return tag;
  }

  /** Messages that come seldom (startup, notifications, errors): decoded from a view of their own. */
  #rare(type: number, body: Uint8Array): void {
    switch (type) {
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
    }
  }

  #ready(byte: number): void {
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

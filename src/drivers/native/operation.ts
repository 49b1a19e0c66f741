/**
 * One in-flight round on a native connection: what was written, and how its
 * answer is collected. The connection matches answers to operations in order.
 *
 * @module
 */

import type { QueryResult, Row } from "../../core/driver.ts";
import type { Parser, TypeRegistry } from "./values/index.ts";
import { cstrEnd, int16, int32, utf8 } from "./wire_reader.ts";
import { toPostgresError } from "./messages.ts";
import type { Alarm } from "../../core/watchdog.ts";

/** Column names and parsers of a row description. */
export interface Fields {
  /** Column names. */
  names: string[];
  /** Column type oids (what `describe()` reports; the parsers are chosen again from them when the connection's codecs change). */
  oids: number[];
  /** Parser per column (undefined: the text is the value). */
  parsers: (Parser | undefined)[];
}

/** Decodes a RowDescription body. */
export function decodeFields(b: Uint8Array, start: number, types: TypeRegistry): Fields {
  const n = int16(b, start);
  const names = new Array<string>(n);
  const oids = new Array<number>(n);
  const parsers = new Array<Parser | undefined>(n);
  let i = start + 2;
  for (let c = 0; c < n; c++) {
    const stop = cstrEnd(b, i);
    names[c] = utf8(b, i, stop);
    i = stop + 1;
    const oid = int32(b, i + 6) >>> 0;
    oids[c] = oid;
    parsers[c] = types.parser(oid);
    i += 18;
  }
  return { names, oids, parsers };
}

function decodeRow(b: Uint8Array, start: number, fields: Fields): Row {
  const row: Row = {};
  const { names, parsers } = fields;
  let i = start + 2;
  for (let c = 0; c < names.length; c++) {
    const len = int32(b, i);
    i += 4;
    let value: unknown = null;
    if (len >= 0) {
      const text = utf8(b, i, i + len);
      i += len;
      const parse = parsers[c];
      value = parse === undefined ? text : parse(text);
    }
    const name = names[c]!;
    // A column named __proto__ must be an own property, not the row's prototype.
    if (name === "__proto__") {
      Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
    } else row[name] = value;
  }
  return row;
}

/** Decodes a DataRow body into an array of values in column order (for a row factory). */
function decodeValues(b: Uint8Array, start: number, fields: Fields): unknown[] {
  const { parsers } = fields;
  const n = parsers.length;
  const values = new Array<unknown>(n);
  let i = start + 2;
  for (let c = 0; c < n; c++) {
    const len = int32(b, i);
    i += 4;
    if (len < 0) {
      values[c] = null;
      continue;
    }
    const text = utf8(b, i, i + len);
    i += len;
    const parse = parsers[c];
    values[c] = parse === undefined ? text : parse(text);
  }
  return values;
}

/**
 * Collects results until the last ReadyForQuery of the round. `readies` is how
 * many ReadyForQuery messages end it (one per Sync or simple Query).
 */
export class Operation {
  /** Results, one per CommandComplete / EmptyQueryResponse. */
  readonly results: QueryResult[] = [];
  /** The first error of the round. */
  error: Error | undefined;
  /** The deadline of the round, if any. */
  alarm: Alarm | undefined;
  /** Called with each CopyData chunk (copy out). */
  onCopyData: ((chunk: Uint8Array) => void) | undefined;
  /** Called on CopyInResponse (copy in). */
  onCopyIn: (() => void) | undefined;
  /**
   * Called when the caller gives up on a round that is on the wire; true when that handled it (a
   * copy from the client ends itself with CopyFail), false when the server must be sent a cancel.
   */
  onGiveUp: (() => boolean) | undefined;
  /** Called when the round is over (before settle). */
  onDone: (() => void) | undefined;
  /**
   * Set on a describe-first round: called at its first ReadyForQuery with the described
   * parameter types; true when it wrote the rest of the round (its Binds), false when the round
   * ends there.
   */
  onFirstReady: ((paramOids: readonly number[]) => boolean) | undefined;
  /** Receives the parameter types of a statement described in this round. */
  onParams: ((paramOids: readonly number[]) => void) | undefined;
  #paramOids: readonly number[] = [];
  /** Rows as arrays of values in column order (a row factory builds the rows). */
  arrayRows = false;
  /** A session reset: its failure closes the connection before any later answer is read. */
  reset = false;
  /** The driver's own round (a reset, a throwaway statement after a cancel), not a caller's. */
  own = false;
  /** Set once the caller got its answer (or gave up: timeout, abort). */
  settled = false;
  /** The caller gave up before the answer came: the answer is consumed and dropped. */
  abandoned = false;
  #finished: (() => void) | undefined;
  #ended = false;
  #fields: Fields | undefined;
  #rows: Row[] = [];
  #readies: number;
  readonly #types: TypeRegistry;
  readonly #resolve: (results: QueryResult[]) => void;
  readonly #reject: (error: Error) => void;
  /** Row description known ahead (a cached named statement). */
  #known: Fields | undefined;
  /** Receives the row description of a statement described in this round. */
  #onDescribed: ((fields: Fields | undefined) => void) | undefined;

  /** The cached statement this round ran (opaque to the operation; the connection drops a stale one). */
  statement: object | undefined = undefined;

  constructor(
    types: TypeRegistry,
    readies: number,
    resolve: (results: QueryResult[]) => void,
    reject: (error: Error) => void,
    known?: Fields,
    onDescribed?: (fields: Fields | undefined) => void,
  ) {
    this.#types = types;
    this.#readies = readies;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#known = known;
    this.#fields = known;
    this.#onDescribed = onDescribed;
  }

  /** Handles one message; true when the round is complete. */
  message(type: number, b: Uint8Array, start: number, end: number): boolean {
    switch (type) {
      case 0x44: // DataRow (none is kept without a description: the driver's own statements)
        if (this.#fields !== undefined) {
          this.#rows.push(
            this.arrayRows
              ? decodeValues(b, start, this.#fields) as unknown as Row
              : decodeRow(b, start, this.#fields),
          );
        }
        return false;
      case 0x54: // RowDescription
        this.#fields = decodeFields(b, start, this.#types);
        this.#described(this.#fields);
        return false;
      case 0x6e: // NoData
        this.#fields = undefined;
        this.#described(undefined);
        return false;
      case 0x43: { // CommandComplete
        const command = utf8(b, start, end - 1);
        this.results.push({ rows: this.#rows, columns: this.#fields?.names ?? [], command });
        this.#rows = [];
        this.#fields = this.#known;
        return false;
      }
      case 0x49: // EmptyQueryResponse
        this.results.push({ rows: [], columns: [], command: "" });
        return false;
      case 0x45: // ErrorResponse
        this.error ??= toPostgresError(b, start, end);
        return false;
      case 0x64: // CopyData
        this.onCopyData?.(b.slice(start, end));
        return false;
      case 0x47: // CopyInResponse
        this.onCopyIn?.();
        return false;
      case 0x74: { // ParameterDescription
        const n = int16(b, start);
        const oids = new Array<number>(n);
        for (let i = 0; i < n; i++) oids[i] = int32(b, start + 2 + 4 * i) >>> 0;
        this.#paramOids = oids;
        this.onParams?.(oids);
        return false;
      }
      case 0x5a: { // ReadyForQuery
        const next = this.onFirstReady;
        if (next === undefined) return --this.#readies === 0;
        this.onFirstReady = undefined;
        return !next(this.#paramOids);
      }
      default: // ParseComplete, BindComplete, CloseComplete, CopyOut/Done, PortalSuspended
        return false;
    }
  }

  /** The statement described in this round: every execution of the round has these columns. */
  #described(fields: Fields | undefined): void {
    const onDescribed = this.#onDescribed;
    if (onDescribed === undefined) return;
    this.#onDescribed = undefined;
    this.#known = fields;
    onDescribed(fields);
  }

  /** Settles the round from what was collected (nothing, when the caller gave up already). */
  settle(): void {
    this.#end();
    if (this.settled) return;
    this.settled = true;
    if (this.error !== undefined) {
      this.#reject(this.error);
    } else this.#resolve(this.results);
  }

  /** Fails the round (connection lost). */
  fail(error: Error): void {
    this.#end();
    if (this.settled) return;
    this.settled = true;
    this.#reject(error);
  }

  /** The caller gives up now (timeout, abort); the round's answer, when it comes, is dropped. */
  abandon(reason: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.abandoned = true;
    this.alarm?.cancel();
    this.onDone?.();
    this.onDone = undefined;
    this.#reject(reason);
  }

  /** Resolves once the round's answer is complete (or the connection lost); made only on the cancel path. */
  finished(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prior = this.#finished;
      this.#finished = prior === undefined ? resolve : () => {
        prior();
        resolve();
      };
    });
  }

  #end(): void {
    this.#ended = true;
    this.alarm?.cancel();
    this.onDone?.();
    this.onDone = undefined;
    const finished = this.#finished;
    this.#finished = undefined;
    finished?.();
  }
}

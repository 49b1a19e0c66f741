/**
 * Log listeners: the server's notices and warnings (`RAISE NOTICE`, `RAISE
 * WARNING`, and the server's own, such as "there is no transaction in
 * progress") delivered to callbacks registered on a connection with
 * `addLogListener()`. A pool removes the listeners left on a connection at
 * release, with the `RELEASED_WITH_LISTENERS` warning.
 *
 * @module
 */

import type { PostgresErrorFields } from "./errors.ts";

/**
 * A notice or warning from the server (`NoticeResponse`), with every field it
 * sent: `severity` (`NOTICE`, `WARNING`, `INFO`, `LOG`, `DEBUG`), `code`
 * (SQLSTATE), `message`, and when reported `detail`, `hint`, `position`,
 * `where`, the schema/table/column/constraint/data type names, the internal
 * query and position, and the server's source `file`, `line` and `routine`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, type Notice } from "@x/pgpool";
 * await using con = await connect();
 * const notices: Notice[] = [];
 * con.addLogListener((notice) => notices.push(notice));
 * await con.execute(`DO $$ BEGIN RAISE WARNING 'disk almost full' USING HINT = 'add a disk'; END $$`);
 * assert.equal(notices[0]?.severity, "WARNING");
 * assert.equal(notices[0]?.code, "01000");
 * assert.equal(notices[0]?.hint, "add a disk");
 * ```
 */
export interface Notice extends PostgresErrorFields {
  /** `NOTICE`, `WARNING`, `INFO`, `LOG` or `DEBUG` (the non-localized form when the server sends it). */
  severity?: string;
  /** 1-based character position in the internal query (`internalQuery`). */
  internalPosition?: number;
  /** The text of an internally generated statement that caused the notice (e.g. in a PL/pgSQL function). */
  internalQuery?: string;
  /** The server's source file that reported it. */
  file?: string;
  /** The line in that source file. */
  line?: number;
  /** The server's source routine that reported it. */
  routine?: string;
}

/**
 * Receives one server notice: see {@linkcode Notice}.
 *
 * @example
 * ```ts
 * import type { LogListener } from "@x/pgpool";
 * const log: LogListener = (notice) => console.log(`${notice.severity}: ${notice.message}`);
 * ```
 */
export type LogListener = (notice: Notice) => void;

/**
 * The log listeners of one connection. Each notice goes to every listener in
 * the order they were added; a listener that throws does not keep the notice
 * from the others, nor break the connection (its error is dropped).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogListeners } from "./log_listeners.ts";
 * const listeners = new LogListeners();
 * const seen: string[] = [];
 * const cb = (n: { message: string }): void => void seen.push(n.message);
 * listeners.add(cb);
 * listeners.add(cb); // once only
 * listeners.deliver({ code: "00000", message: "hello", severity: "NOTICE" });
 * assert.deepEqual(seen, ["hello"]);
 * assert.equal(listeners.remove(cb), true);
 * assert.equal(listeners.size, 0);
 * ```
 */
export class LogListeners {
  #listeners = new Set<LogListener>();

  /** How many listeners are registered. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Adds `listener` (a listener already added is not added twice). */
  add(listener: LogListener): void {
    this.#listeners.add(listener);
  }

  /** Removes `listener`; true when it was registered. */
  remove(listener: LogListener): boolean {
    return this.#listeners.delete(listener);
  }

  /** Removes every listener. */
  clear(): void {
    this.#listeners.clear();
  }

  /** Hands `notice` to every listener (a copy of the set: a listener may remove itself). */
  deliver(notice: Notice): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(notice);
      } catch {
        // A failing listener must not keep the notice from the others nor break the connection's reading.
      }
    }
  }
}

/**
 * One pool slot: at most one physical connection, and where it is in its life.
 * Only `Pool.#move()` changes `state`. A slot keeps no state of any one acquire
 * or release: those are {@linkcode Checkout} and `Release` objects of their own.
 *
 * @module
 */

import type { Checkout } from "./checkout.ts";
import type { Connection } from "./connection.ts";
import type { DriverConnection } from "./driver.ts";
import type { CloseReason } from "./pool_stats.ts";

/**
 * - `empty`: no connection; free.
 * - `idle`: connected and free.
 * - `acquiring`: reserved by an acquire (connecting, `init`, `setup`).
 * - `busy`: checked out.
 * - `releasing`: being reset after release.
 * - `shared`: runs pipelined one-shots (never checked out meanwhile).
 */
export type SlotState = "empty" | "idle" | "acquiring" | "busy" | "releasing" | "shared";

/** A pool slot. Internal. */
export class Slot {
  state: SlotState = "empty";
  con: Connection | undefined = undefined;
  driver: DriverConnection | undefined = undefined;
  generation = 0;
  /** The checkout that holds it while `busy` or `releasing`; no other checkout ever matches it. */
  holder: Checkout | undefined = undefined;
  /** When it became idle (clock ms). */
  idleSince = 0;
  /** When its connection's lifetime ends (clock ms; Infinity without `maxLifetime`). */
  expiresAt = Infinity;
  /** Its connection outlived its lifetime: closed at release, or at once when idle. */
  lifeOver = false;
  /** Idle past `pingAfterIdle`: pinged before it is handed out. */
  stale = false;
  /** While `shared`: one-shots placed on it and not finished (reset included for a bounded one). */
  depth = 0;
  /** While `shared`: a one-shot with a timeout or signal is among them, so nothing more is queued behind it. */
  bounded = false;
  /** While `shared`: a one-shot found the server read-only (25006) where the pool wants a writable one. */
  readOnly = false;
  /** Why the pool is closing its connection, once it decided to (counted when the connection goes). */
  closeReason: CloseReason | undefined = undefined;
}

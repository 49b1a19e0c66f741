/**
 * One pool slot: at most one physical connection, and where it is in its life.
 * Only `Pool.#move()` changes `state`.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import type { DriverConnection } from "./driver.ts";
import type { PoolConnection } from "./pool_connection.ts";

/**
 * - `empty`: no connection; free.
 * - `idle`: connected and free.
 * - `acquiring`: reserved by an acquire (connecting, `init`, `setup`).
 * - `busy`: checked out.
 * - `releasing`: being reset after release.
 */
export type SlotState = "empty" | "idle" | "acquiring" | "busy" | "releasing";

/** A pool slot. Internal. */
export class Slot {
  state: SlotState = "empty";
  con: Connection | undefined = undefined;
  driver: DriverConnection | undefined = undefined;
  generation = 0;
  /** The proxy of the current checkout; stale proxies never match it. */
  proxy: PoolConnection | undefined = undefined;
  /** Timeout (ms) of the acquire that made the current checkout: the default release bound. */
  acquireTimeoutMs: number | undefined = undefined;
  /** When it became idle (clock ms). */
  idleSince = 0;
  /** While a bounded release runs: its bound (ms). */
  releaseTimeoutMs = 0;
  /** While a bounded release runs: when it must be done (clock ms). */
  releaseDeadline = 0;
  /** While a bounded release runs: fails it (called by the pool's release watchdog). */
  releaseFail: ((error: Error) => void) | undefined = undefined;
}

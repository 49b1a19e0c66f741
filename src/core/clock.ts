/**
 * Time as the pool sees it. The core reads time and arms timers only through a
 * {@linkcode Clock}, so tests can drive every timing rule with a fake clock and
 * never sleep.
 *
 * @module
 */

/** An opaque handle returned by {@linkcode Clock.setTimeout}. */
export type TimerHandle = unknown;

/**
 * A source of time and timers. Milliseconds throughout.
 *
 * @example Use the system clock explicitly
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, systemClock } from "@x/pgpool";
 * const pool = await createPool({ clock: systemClock, minSize: 1 });
 * assert.equal(pool.getSize(), 1);
 * await pool.close();
 * ```
 */
export interface Clock {
  /** The current time in milliseconds (monotonic where the runtime allows). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer armed by {@linkcode Clock.setTimeout}; a no-op for one that already ran. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * A number in `[0, 1)` for the pool's jitter (connection lifetimes, backoff).
   * Optional: `Math.random` when absent; a test clock makes it repeatable.
   */
  random?(): number;
}

/**
 * The clock of the running runtime: `performance.now()` and the global timers.
 *
 * @example Read the time
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemClock } from "@x/pgpool";
 * const t0 = systemClock.now();
 * await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 20));
 * assert.ok(systemClock.now() - t0 >= 19); // timers may round a little
 * ```
 */
export const systemClock: Clock = {
  now: (): number => performance.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle => setTimeout(fn, ms),
  clearTimeout: (handle: TimerHandle): void => clearTimeout(handle as number),
  random: (): number => Math.random(),
};

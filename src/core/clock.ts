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
  /**
   * Optional: lets a timer armed by {@linkcode Clock.setTimeout} not keep the
   * process alive (the pool's own timers use it, so an idle pool never holds a
   * process open). A clock without it keeps its timers as they are.
   */
  unref?(handle: TimerHandle): void;
  /**
   * Optional: the current time for bookkeeping that tolerates a little staleness (wait-time statistics,
   * idle timestamps): a clock may return one reading for everything in the same turn of microtasks.
   * The pool uses {@linkcode Clock.now} when absent. Deadlines always use `now()`.
   */
  coarseNow?(): number;
}

/**
 * How the runtime lets a timer handle not keep the process alive. Timers that
 * are objects with `unref()` need nothing more; a runtime whose timers are
 * numbers installs its own (the entry points do, through {@linkcode installTimerUnref}).
 */
let unrefTimer = (handle: TimerHandle): void => {
  if (typeof handle === "object" && handle !== null) (handle as { unref?: () => void }).unref?.();
};

/**
 * Sets how {@linkcode systemClock} unrefs its timers on this runtime. Internal:
 * called by an entry point with its runtime adapter's function.
 *
 * @param fn Unrefs one timer handle of the global `setTimeout`.
 * @example
 * ```ts
 * import { installTimerUnref } from "./clock.ts";
 * import { denoTimerUnref } from "../runtime/deno.ts";
 * installTimerUnref(denoTimerUnref); // what the Deno entry point does: Deno's timers are numbers
 * ```
 */
export function installTimerUnref(fn: (handle: TimerHandle) => void): void {
  unrefTimer = fn;
}

/** One `performance.now()` reading shared by the microtasks queued before its expiry (see coarseNow). */
let coarse = 0;
let coarseFresh = false;
const expireCoarse = (): void => {
  coarseFresh = false;
};

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
  coarseNow: (): number => {
    if (!coarseFresh) {
      coarse = performance.now();
      coarseFresh = true;
      queueMicrotask(expireCoarse);
    }
    return coarse;
  },
  setTimeout: (fn: () => void, ms: number): TimerHandle => setTimeout(fn, ms),
  clearTimeout: (handle: TimerHandle): void => clearTimeout(handle as number),
  random: (): number => Math.random(),
  unref: (handle: TimerHandle): void => unrefTimer(handle),
};

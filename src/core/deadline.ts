/**
 * A deadline for one operation: an optional timeout (an {@linkcode Alarm} on a
 * {@linkcode Watchdog}) plus an optional caller's `AbortSignal`. Operations
 * race their promises against it; when it fires, the losing promise's late
 * result is left to a cleanup callback.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import { PoolTimeoutError, type TimeoutErrorCode } from "./errors.ts";
import { type Alarm, Watchdog } from "./watchdog.ts";

/**
 * Fires once, on timeout or abort.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * import { Deadline } from "./deadline.ts";
 * import { Watchdog } from "./watchdog.ts";
 * const deadline = new Deadline(Watchdog.of(systemClock), 5000, undefined, "QUERY_TIMEOUT", "Too slow");
 * try {
 *   console.log(await deadline.race(Promise.resolve(42))); // 42
 * } finally {
 *   deadline.dispose();
 * }
 * ```
 */
export class Deadline {
  #alarm: Alarm | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #reason: unknown = undefined;
  #fired = false;
  /** Rejecters of the races under way (usually none or one). */
  #racers: Array<(reason: unknown) => void> | undefined;
  #controller: AbortController | undefined;
  /** The timeout in milliseconds, if any. */
  readonly timeoutMs: number | undefined;

  /**
   * @param timer The watchdog that times it (or a clock, meaning that clock's shared {@linkcode Watchdog.of}).
   * @param timeoutMs Fires this long from now with a {@linkcode PoolTimeoutError}; none when undefined.
   * @param signal Fires with `signal.reason` when it aborts (at once when it already has).
   * @param code The timeout error's code.
   * @param message The timeout error's message.
   */
  constructor(
    timer: Watchdog | Clock,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    code: TimeoutErrorCode,
    message: string,
  ) {
    this.timeoutMs = timeoutMs;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#fired = true;
        this.#reason = signal.reason;
        return;
      }
      this.#signal = signal;
      this.#onAbort = () => this.#fire(signal.reason);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    if (timeoutMs !== undefined) {
      const dog = timer instanceof Watchdog ? timer : Watchdog.of(timer);
      this.#alarm = dog.after(timeoutMs, () => {
        this.#alarm = undefined;
        this.#fire(new PoolTimeoutError(code, message));
      });
    }
  }

  /** True once fired. */
  get fired(): boolean {
    return this.#fired;
  }

  /** Why it fired. */
  get reason(): unknown {
    return this.#reason;
  }

  /** Throws the reason when fired. */
  check(): void {
    if (this.#fired) throw this.#reason;
  }

  /** An AbortSignal that aborts when this deadline fires (made on first use). */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#fired) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /**
   * Settles like `promise`, or rejects with the reason when the deadline fires
   * first; then `onLate` receives the promise's eventual value (for cleanup).
   * Several races may run at once.
   */
  race<T>(promise: Promise<T>, onLate?: (value: T) => void): Promise<T> {
    if (this.#fired) {
      promise.then(onLate, noop);
      return Promise.reject(this.#reason);
    }
    if (this.#alarm === undefined && this.#signal === undefined) return promise;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const lose = (reason: unknown): void => {
        settled = true;
        reject(reason);
      };
      (this.#racers ??= []).push(lose);
      promise.then(
        (value) => {
          if (settled) {
            onLate?.(value);
            return;
          }
          settled = true;
          this.#drop(lose);
          resolve(value);
        },
        (error) => {
          if (settled) return;
          settled = true;
          this.#drop(lose);
          reject(error);
        },
      );
    });
  }

  /** Stops the timer and the abort listener; races still under way are left to their promises. */
  dispose(): void {
    if (this.#alarm !== undefined) {
      this.#alarm.cancel();
      this.#alarm = undefined;
    }
    if (this.#onAbort !== undefined) {
      this.#signal!.removeEventListener("abort", this.#onAbort);
      this.#onAbort = undefined;
    }
    this.#racers = undefined;
  }

  #drop(lose: (reason: unknown) => void): void {
    const racers = this.#racers;
    if (racers === undefined) return;
    const i = racers.indexOf(lose);
    if (i >= 0) racers.splice(i, 1);
  }

  #fire(reason: unknown): void {
    if (this.#fired) return;
    this.#fired = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const racers = this.#racers;
    this.#racers = undefined;
    if (racers !== undefined) { for (const lose of racers) lose(reason); }
    this.dispose();
  }
}

function noop(): void {}

/**
 * A deadline for one operation: an optional timeout on the pool's clock plus an
 * optional caller's `AbortSignal`. Operations race their promises against it;
 * when it fires, the losing promise's late result is left to a cleanup callback.
 *
 * @module
 */

import type { Clock, TimerHandle } from "./clock.ts";
import { PoolTimeoutError, type TimeoutErrorCode } from "./errors.ts";

/** Fires once, on timeout or abort. */
export class Deadline {
  #clock: Clock;
  #timer: TimerHandle | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #reason: unknown = undefined;
  #fired = false;
  #reject: ((reason: unknown) => void) | undefined;
  #controller: AbortController | undefined;
  /** The timeout in milliseconds, if any. */
  readonly timeoutMs: number | undefined;

  constructor(
    clock: Clock,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    code: TimeoutErrorCode,
    message: string,
  ) {
    this.#clock = clock;
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
      this.#timer = clock.setTimeout(() => {
        this.#timer = undefined;
        this.#fire(new PoolTimeoutError(code, message));
      }, timeoutMs);
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
   */
  race<T>(promise: Promise<T>, onLate?: (value: T) => void): Promise<T> {
    if (this.#fired) {
      promise.then(onLate, noop);
      return Promise.reject(this.#reason);
    }
    if (this.#timer === undefined && this.#signal === undefined) return promise;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      this.#reject = (reason) => {
        settled = true;
        reject(reason);
      };
      promise.then(
        (value) => {
          if (settled) {
            onLate?.(value);
            return;
          }
          settled = true;
          this.#reject = undefined;
          resolve(value);
        },
        (error) => {
          if (settled) return;
          settled = true;
          this.#reject = undefined;
          reject(error);
        },
      );
    });
  }

  /** Stops the timer and the abort listener. */
  dispose(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#onAbort !== undefined) {
      this.#signal!.removeEventListener("abort", this.#onAbort);
      this.#onAbort = undefined;
    }
    this.#reject = undefined;
  }

  #fire(reason: unknown): void {
    if (this.#fired) return;
    this.#fired = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const reject = this.#reject;
    this.#reject = undefined;
    reject?.(reason);
    this.dispose();
  }
}

function noop(): void {}

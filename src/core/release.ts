/**
 * One release: the reset (or close) of one checkout's connection, its deadline
 * and its outcome. Each `release()` makes its own {@linkcode Release}; whatever
 * its work does after the release ended (a reset finishing after the release
 * timed out) is ignored, so it can never free a slot a later checkout holds or
 * settle a later release.
 *
 * @module
 */

import type { Checkout } from "./checkout.ts";
import type { Alarm, Watchdog } from "./watchdog.ts";
import { PoolTimeoutError } from "./errors.ts";

/** What a release tells its pool. Made once per pool, not per release. */
export interface ReleaseHost {
  /** The work succeeded: give the slot back. */
  returned(checkout: Checkout): void;
  /** The work failed, timed out or was abandoned: drop the connection and give the slot back. */
  dropped(checkout: Checkout): void;
}

/**
 * - `running`: its work runs; its alarm (if any) is armed.
 * - `returned`: the work succeeded; the slot was given back.
 * - `failed`: the work failed, timed out or was abandoned; the connection was dropped.
 */
export type ReleaseState = "running" | "returned" | "failed";

/** One release of one checkout. Internal. */
export class Release {
  /** Settles once, when the release ends. */
  readonly promise: Promise<void>;
  readonly #host: ReleaseHost;
  readonly #checkout: Checkout;
  readonly #timeoutMs: number | undefined;
  #state: ReleaseState = "running";
  #alarm: Alarm | undefined;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;

  /**
   * Starts watching `work`; the caller has moved the checkout to `releasing`.
   *
   * @param host The pool.
   * @param checkout The checkout being released.
   * @param work The reset or close.
   * @param watchdog Where its deadline is armed.
   * @param timeoutMs Its bound (ms), or undefined for none.
   */
  constructor(
    host: ReleaseHost,
    checkout: Checkout,
    work: Promise<void>,
    watchdog: Watchdog,
    timeoutMs: number | undefined,
  ) {
    this.#host = host;
    this.#checkout = checkout;
    this.#timeoutMs = timeoutMs;
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    work.then(() => this.#end("returned", undefined), (e: unknown) => this.#end("failed", e));
    // Armed a microtask later, behind the settling of a `work` that is already over (a pipelined reset
    // is: the driver bounds its answer itself), so that the common release arms and cancels nothing.
    if (timeoutMs !== undefined) {
      queueMicrotask(() => {
        if (this.#state === "running") this.#alarm = watchdog.after(timeoutMs, () => this.#timedOut());
      });
    }
  }

  /** Where it is. */
  get state(): ReleaseState {
    return this.#state;
  }

  /** Ends it now as failed with `error` (the pool was terminated under it). A no-op once ended. */
  abandon(error: unknown): void {
    this.#end("failed", error);
  }

  #timedOut(): void {
    this.#end(
      "failed",
      new PoolTimeoutError(
        "RELEASE_TIMEOUT",
        `Timed out after ${this.#timeoutMs! / 1000}s releasing a connection; it was terminated`,
      ),
    );
  }

  /** The one transition function: `running` → `returned` | `failed`; anything after is ignored. */
  #end(to: "returned" | "failed", error: unknown): void {
    if (this.#state !== "running") return; // late: this release is over and owns nothing any more
    this.#state = to;
    this.#alarm?.cancel();
    this.#alarm = undefined;
    const checkout = this.#checkout;
    checkout.to("over");
    try {
      if (to === "returned") this.#host.returned(checkout);
      else this.#host.dropped(checkout);
    } catch (e) {
      this.#reject(e);
      return;
    }
    if (to === "returned") this.#resolve();
    else this.#reject(error);
  }
}

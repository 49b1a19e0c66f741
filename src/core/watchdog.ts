/**
 * One timer for many deadlines: the single timing mechanism of the pool and the
 * drivers. Operations arm an {@linkcode Alarm} for an instant on a
 * {@linkcode Clock}; the watchdog keeps one clock timer, armed for the earliest
 * live alarm, so a bounded operation on the hot path costs no timer of its own.
 *
 * @module
 */

import type { Clock, TimerHandle } from "./clock.ts";

/** One armed deadline. Owned by the operation that armed it; nothing else can cancel or fire it. */
export class Alarm {
  /** Clock time (ms) at which it fires. */
  readonly at: number;
  #fire: (() => void) | undefined;
  #onCancel: (() => void) | undefined;

  /**
   * @param at When to fire (clock ms).
   * @param fire What to call, once.
   * @param onCancel Told when it is cancelled (its watchdog drops dead alarms).
   */
  constructor(at: number, fire: () => void, onCancel?: () => void) {
    this.at = at;
    this.#fire = fire;
    this.#onCancel = onCancel;
  }

  /** True until it fired or was cancelled. */
  get live(): boolean {
    return this.#fire !== undefined;
  }

  /** Stops it; a no-op once fired or cancelled. */
  cancel(): void {
    if (this.#fire === undefined) return;
    this.#fire = undefined;
    this.#onCancel?.();
  }

  /** Fires it (the watchdog calls this when due). @returns False when it was no longer live. */
  trigger(): boolean {
    const fire = this.#fire;
    if (fire === undefined) return false;
    this.#fire = undefined;
    fire();
    return true;
  }
}

/**
 * Fires {@linkcode Alarm}s on a clock with one timer.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * import { Watchdog } from "./watchdog.ts";
 * const dog = new Watchdog(systemClock);
 * const alarm = dog.after(1000, () => console.log("late"));
 * alarm.cancel();
 * ```
 */
export class Watchdog {
  readonly clock: Clock;
  #alarms: Alarm[] = [];
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #dead = 0;
  readonly #onCancel = (): void => {
    // Cancelled alarms are dropped in bulk once they outnumber the live ones.
    if (++this.#dead > 64 && this.#dead * 2 > this.#alarms.length) this.#compact();
  };

  /** @param clock Where time and the one timer come from. */
  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Arms an alarm `ms` from now. @returns The alarm (cancel it when the operation ends first). */
  after(ms: number, fire: () => void): Alarm {
    return this.at(this.clock.now() + Math.max(0, ms), fire);
  }

  /** Arms an alarm for clock time `at` (ms). @returns The alarm. */
  at(at: number, fire: () => void): Alarm {
    const alarm = new Alarm(at, fire, this.#onCancel);
    this.#alarms.push(alarm);
    if (at < this.#timerAt) this.#arm(at);
    return alarm;
  }

  /** Live alarms (for tests and diagnostics). @returns The count. */
  get size(): number {
    let n = 0;
    for (const a of this.#alarms) if (a.live) n++;
    return n;
  }

  /** Cancels every alarm and the timer (a closed pool or driver). */
  stop(): void {
    const alarms = this.#alarms;
    this.#alarms = [];
    for (const a of alarms) a.cancel();
    this.#dead = 0;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #compact(): void {
    this.#alarms = this.#alarms.filter((a) => a.live);
    this.#dead = 0;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.clock.setTimeout(() => this.#run(), Math.max(0, at - this.clock.now()));
  }

  #run(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.clock.now();
    const due: Alarm[] = [];
    const keep: Alarm[] = [];
    let next = Infinity;
    for (const a of this.#alarms) {
      if (!a.live) continue;
      if (a.at <= now) due.push(a);
      else {
        keep.push(a);
        if (a.at < next) next = a.at;
      }
    }
    this.#alarms = keep;
    this.#dead = 0;
    if (next !== Infinity) this.#arm(next);
    // Fired after the list is rebuilt: an alarm's callback may arm new alarms.
    for (const a of due) a.trigger();
  }
}

/**
 * One timer for many deadlines: the single timing mechanism of the pool and the
 * drivers. Operations arm an {@linkcode Alarm} for an instant on a
 * {@linkcode Clock}; the watchdog keeps one clock timer, armed for the earliest
 * live alarm, so a bounded operation on the hot path costs no timer of its own.
 *
 * @module
 */

import type { Clock, TimerHandle } from "./clock.ts";

/**
 * One armed deadline. Owned by the operation that armed it; nothing else can cancel or fire it.
 *
 * @example
 * ```ts
 * import { Alarm } from "./watchdog.ts";
 * const alarm = new Alarm(10, () => console.log("due"));
 * alarm.trigger(); // logs "due"
 * console.log(alarm.live); // false
 * ```
 */
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

/** Alarms above this count are compacted once most of them are dead. */
const COMPACT_FLOOR = 64;

const shared = new WeakMap<Clock, Watchdog>();

/**
 * Fires {@linkcode Alarm}s on a clock with one timer. The timer is armed for
 * the earliest live alarm and cleared as soon as no alarm is live, so an idle
 * watchdog never keeps a process alive.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * import { Watchdog } from "./watchdog.ts";
 * const dog = new Watchdog(systemClock);
 * const alarm = dog.after(1000, () => console.log("late"));
 * alarm.cancel();
 * console.log(dog.size); // 0
 * ```
 */
export class Watchdog {
  /** Where time and the one timer come from. */
  readonly clock: Clock;
  /** Armed alarms, live or cancelled (cancelled ones are dropped in bulk). */
  #alarms: Alarm[] = [];
  /** Alarms being fired by the current run (taken out of `#alarms`). */
  #due: Alarm[] = [];
  /** Alarms neither fired nor cancelled. */
  #live = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  readonly #onCancel = (): void => {
    if (--this.#live === 0) this.#idle();
    else if (this.#alarms.length > COMPACT_FLOOR && this.#alarms.length > 2 * this.#live) {
      this.#alarms = this.#alarms.filter((a) => a.live);
    }
  };
  readonly #onTimer = (): void => this.#run();
  readonly #unref: boolean;

  /**
   * @param clock Where time and the one timer come from.
   * @param options `unref`: its timer does not keep the process alive (where the clock can say so,
   *   see {@linkcode Clock.unref}).
   */
  constructor(clock: Clock, options?: { unref?: boolean }) {
    this.clock = clock;
    this.#unref = options?.unref === true;
  }

  /**
   * The watchdog shared by everything that runs on `clock` and has none of its
   * own (never {@linkcode Watchdog.stop} it).
   *
   * @example
   * ```ts
   * import { systemClock } from "./clock.ts";
   * import { Watchdog } from "./watchdog.ts";
   * console.log(Watchdog.of(systemClock) === Watchdog.of(systemClock)); // true
   * ```
   */
  static of(clock: Clock): Watchdog {
    let dog = shared.get(clock);
    if (dog === undefined) shared.set(clock, dog = new Watchdog(clock));
    return dog;
  }

  /** Arms an alarm `ms` from now. @returns The alarm (cancel it when the operation ends first). */
  after(ms: number, fire: () => void): Alarm {
    return this.at(this.clock.now() + Math.max(0, ms), fire);
  }

  /** Arms an alarm for clock time `at` (ms). @returns The alarm. */
  at(at: number, fire: () => void): Alarm {
    const alarm = new Alarm(at, fire, this.#onCancel);
    this.#alarms.push(alarm);
    this.#live++;
    if (at < this.#timerAt) this.#arm(at);
    return alarm;
  }

  /** Live alarms (for tests and diagnostics). */
  get size(): number {
    return this.#live;
  }

  /** Alarms held, live or cancelled but not dropped yet (for tests of the memory bound). */
  get held(): number {
    return this.#alarms.length;
  }

  /** Cancels every alarm and the timer (a closed pool or driver). It can be armed again afterwards. */
  stop(): void {
    const alarms = this.#alarms.concat(this.#due);
    for (const a of alarms) a.cancel();
    this.#idle();
  }

  /** No live alarm: drop the dead ones and the timer. */
  #idle(): void {
    this.#alarms = [];
    this.#due = [];
    this.#live = 0;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    // Whole milliseconds, rounded up: a runtime that truncates a fraction would wake before the
    // alarm is due and spin through re-arms until it is.
    this.#timer = this.clock.setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - this.clock.now())));
    if (this.#unref) this.clock.unref?.(this.#timer);
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
    if (next !== Infinity) this.#arm(next);
    if (due.length === 0) return;
    // Earliest first (a late timer can find several due); equal instants in the order they were armed.
    if (due.length > 1) due.sort((a, b) => a.at - b.at);
    this.#due = due;
    // Fired after the list is rebuilt: a callback may arm new alarms or cancel due ones.
    for (const a of due) {
      if (!a.live) continue;
      this.#live--;
      a.trigger();
    }
    if (this.#due === due) this.#due = [];
    if (this.#live === 0 && this.#timer !== undefined) this.#idle();
  }
}

/** A manual clock for the core's unit tests: time moves only when a test says so. */
import type { Clock, TimerHandle } from "../../src/core/clock.ts";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Lets pending promise callbacks run: many microtask turns, enough for every
 * await chain in the core (which never waits on real I/O under the fake driver).
 */
export async function flush(turns = 200): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

export class FakeClock implements Clock {
  #now = 0;
  #next = 1;
  #timers: Timer[] = [];
  #seed: number;

  /** @param seed Seeds {@linkcode FakeClock.random}: every run with the same seed draws the same numbers. */
  constructor(seed = 1) {
    this.#seed = seed >>> 0 || 1;
  }

  /** Repeatable numbers in [0, 1) (xorshift32); a test may replace it with its own function. */
  random(): number {
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed / 4294967296;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.#next++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Pending timers. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Advances time by `ms`, firing due timers in order and letting promises settle between them. */
  async tick(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.#timers[0];
      if (t === undefined || t.at > end) break;
      this.#timers.shift();
      this.#now = t.at;
      t.fn();
      await flush();
    }
    this.#now = end;
    await flush();
  }
}

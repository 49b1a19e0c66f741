/**
 * The system clock's two readings: `now()` always fresh, `coarseNow()` one reading per turn of
 * microtasks (for the pool's bookkeeping, where a read on Deno costs about 100 ns).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../../src/core/clock.ts";

/** Spins until `performance.now()` has moved past `t`. */
function after(t: number): void {
  while (performance.now() <= t) {
    // busy: no await may end the turn here
  }
}

describe("systemClock", () => {
  it("systemClock.coarseNow() gives one reading within a turn of microtasks and a fresh one after it", async () => {
    const first = systemClock.coarseNow!();
    after(first + 1);
    assert.equal(systemClock.coarseNow!(), first, "the same reading within the turn");
    assert.ok(systemClock.now() > first + 1, "now() is fresh meanwhile");
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    const later = systemClock.coarseNow!();
    assert.ok(later > first + 1, `a fresh reading in a later turn (${later} > ${first + 1})`);
  });
});

/**
 * Forcing garbage collection in tests, on Deno (`--v8-flags=--expose-gc`, or
 * switched on here through `node:v8`) and Bun (`Bun.gc(true)`).
 */
import v8 from "node:v8";
import vm from "node:vm";

/** Runs a full, synchronous garbage collection. */
export function collectGarbage(): void {
  const g = globalThis as { Bun?: { gc(sync: boolean): void }; gc?: () => void };
  if (g.Bun !== undefined) return g.Bun.gc(true);
  if (typeof g.gc === "function") return g.gc();
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}

/**
 * Overwrites a stretch of the machine stack: JavaScriptCore (Bun) scans the
 * stack conservatively, and a stale pointer left there by an earlier call can
 * keep an unreachable object alive.
 */
function scrubStack(depth: number): number {
  const filler = [depth, depth, depth, depth, depth, depth, depth, depth];
  return depth === 0 ? filler.length : scrubStack(depth - 1) + filler.length;
}

/**
 * Collects garbage and yields a macrotask (finalization callbacks run as tasks
 * of their own) until `done()` holds, at most `rounds` times.
 *
 * @returns Whether `done()` held within the bound.
 */
export async function collectUntil(done: () => boolean, rounds = 50): Promise<boolean> {
  for (let i = 0; i < rounds; i++) {
    if (done()) return true;
    scrubStack(200);
    collectGarbage();
    // A few tasks that settle promises with fresh values: Bun was seen to keep the last value a
    // timer-settled promise carried reachable until the next one replaced it.
    for (let j = 0; j < 4; j++) await new Promise<object>((resolve) => setTimeout(() => resolve({ j }), 0));
  }
  return done();
}

/** Builds pools over the fake driver and fake clock for the core's unit tests. */
import type { PoolOptions } from "../../src/core/options.ts";
import { BasePool as Pool } from "../../src/core/pool.ts";
import type { PoolWarning } from "../../src/core/warnings.ts";
import { FakeClock } from "./fake_clock.ts";
import { FakeDriver } from "./fake_driver.ts";

export interface Harness {
  pool: Pool;
  clock: FakeClock;
  driver: FakeDriver;
  warnings: PoolWarning[];
}

/** A pool over the fake driver; not yet initialized. */
export function fakePool(options: PoolOptions = {}): Harness {
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const warnings: PoolWarning[] = [];
  const pool = new Pool({
    connect: driver.hook,
    clock,
    onWarning: (w) => warnings.push(w),
    ...options,
  });
  return { pool, clock, driver, warnings };
}

/** A pool over the fake driver, initialized. */
export async function readyPool(options: PoolOptions = {}): Promise<Harness> {
  const h = fakePool(options);
  await h.pool.init();
  return h;
}

/** Settles a promise into a tagged result without throwing. */
export function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The pool's invariants: sizes in range and the driver's open count matches the pool's size. */
export function checkInvariants(h: Harness): string | undefined {
  const { pool, driver } = h;
  const size = pool.getSize();
  const idle = pool.getIdleSize();
  if (!(idle >= 0 && idle <= size && size <= pool.getMaxSize())) {
    return `sizes out of range: idle ${idle}, size ${size}, max ${pool.getMaxSize()}`;
  }
  if (driver.open !== size) return `driver has ${driver.open} open connections, pool counts ${size}`;
  if (pool.getWaitingCount() !== 0) return `${pool.getWaitingCount()} waiters left`;
  return undefined;
}

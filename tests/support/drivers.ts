/**
 * The drivers every driver test suite runs on: the postgres.js driver and the native wire engine,
 * behind the same contract, so one suite proves both.
 *
 * @module
 */

import { it, type TestContext } from "node:test";
import type { Driver } from "../../src/core/driver.ts";
import type { Env } from "../../src/drivers/dsn.ts";
import type { PostgresErrorFields } from "../../src/core/errors.ts";
import { createNativeDriver } from "../../src/drivers/native/driver.ts";
import { createPostgresDriver } from "../../src/drivers/postgresjs/driver.ts";
import type { Connector } from "../../src/runtime/transport.ts";

/** The driver options every driver takes. */
export interface DriverTestOptions {
  env?: Env;
  cancelGrace?: number;
  onNotice?: (notice: PostgresErrorFields) => void;
}

/** One driver under test: its name in test titles and its factory. */
export interface DriverUnderTest {
  name: string;
  create(connector: Connector, options?: DriverTestOptions): Driver;
}

export const DRIVERS: readonly DriverUnderTest[] = [
  { name: "PostgresDriver", create: createPostgresDriver },
  { name: "NativeDriver", create: createNativeDriver },
];

/** The driver of the case `itOnEachDriver` runs now. */
let current: DriverUnderTest = DRIVERS[0]!;

/** The driver of the running case defined with {@linkcode itOnEachDriver}. */
export function currentDriver(): DriverUnderTest {
  return current;
}

/**
 * Defines a case once per driver (the title starts with the driver's name); while a case runs,
 * {@linkcode currentDriver} returns its driver (node:test runs the cases of a file one at a time).
 */
export function itOnEachDriver(
  title: string,
  options: { timeout?: number },
  fn: (t: TestContext) => void | Promise<void>,
): void {
  for (const d of DRIVERS) {
    it(`${d.name}: ${title}`, options, (t) => {
      current = d;
      return fn(t);
    });
  }
}

/**
 * Skipping a test so that CI notices. `t.skip()` alone is invisible under
 * `deno test` (the case reports "ok"), so every skip goes through
 * {@linkcode skipTest}, which also prints one `[skip] <test>: <reason>` line.
 * `.ci/run` counts those lines (and Bun's skip count, and Deno's "ignored")
 * and fails on any skip that is not on its allow-list.
 */

/** What `skipTest` needs of a `node:test` test context. */
export interface Skippable {
  readonly name: string;
  readonly fullName?: string;
  skip(message?: string): void;
}

/** The prefix of the line `skipTest` prints; `.ci/run` greps for it. */
export const SKIP_MARKER = "[skip]";

/**
 * Skips the running test and prints `[skip] <full test name>: <reason>`.
 *
 * @example
 * ```ts ignore
 * it("uses a unix socket", (t) => {
 *   if (server.socketDir === undefined) return skipTest(t, "the server comes from DATABASE_URL");
 * });
 * ```
 */
export function skipTest(t: Skippable, reason: string): void {
  console.log(`${SKIP_MARKER} ${t.fullName ?? t.name}: ${reason}`);
  t.skip(reason);
}

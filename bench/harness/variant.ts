/**
 * A variant is one row of a scenario's table: a contender used through one
 * API. The runner opens every variant of a scenario, warms it up, then runs
 * the repetitions round-robin (A B C, B C A, …) so noise spreads evenly.
 *
 * @module
 */

import type { Contender, ContenderKind } from "./contender.ts";
import type { Sample } from "./stats.ts";

/** One row of a scenario: a contender through one API. */
export interface Variant {
  /** Contender key (`ours`, `ours-noreset`, `postgresjs`, `bunsql`, `pg`, `asyncpg`, `pgbench`). */
  key: string;
  /** Row label. */
  label: string;
  /** API used, e.g. "reserve()/release()". */
  api: string;
  /** Opens the pool (before any timing). */
  open(): Promise<void>;
  /** Untimed warm-up: connections opened, statements prepared, code optimized. */
  warm(ms: number): Promise<void>;
  /** One timed repetition of `ms` milliseconds. */
  run(ms: number): Promise<Sample>;
  /** True when the work runs in another process (asyncpg, pgbench): no client CPU figure then. */
  external?: boolean;
  /** Figures measured once per variant (e.g. heap per connection), merged into its record. */
  once?: Record<string, number>;
  /** Closes the pool. */
  close(): Promise<void>;
}

/** Shared by the scenarios: where to connect and which contenders to use. */
export interface Context {
  /** Superuser DSN over TCP. */
  dsn: string;
  /** TCP host, port, user and database (for pgbench and asyncpg). */
  host: string;
  port: number;
  user: string;
  database: string;
  /** Password from DATABASE_URL, if any (passed to pgbench as PGPASSWORD). */
  password?: string;
  /** Short runs for development (`--quick`). */
  quick: boolean;
  /** In-process contenders that can run here and were selected. */
  kinds: ContenderKind[];
  /** Whether the asyncpg and pgbench contenders were selected (and are installed). */
  asyncpg: boolean;
  pgbench: boolean;
}

/**
 * An in-process variant: opens `kind` with `size` connections and times
 * `body(contender, ms)`; the warm-up runs the same body.
 */
export function inProcessVariant(
  ctx: Context,
  kind: ContenderKind,
  api: string,
  size: number,
  body: (c: Contender, ms: number) => Promise<Sample>,
  label = kind.label,
): Variant {
  let contender: Contender | undefined;
  const variant: Variant = {
    key: kind.key,
    label,
    api,
    async open() {
      contender = await kind.open(ctx.dsn, size);
    },
    async warm(ms) {
      await body(contender!, ms);
    },
    run: (ms) => body(contender!, ms),
    async close() {
      await contender?.close();
      contender = undefined;
    },
  };
  return variant;
}

/** One benchmark scenario (one file per scenario under bench/harness/). */
export interface Scenario {
  /** "S1" … "S6". */
  id: string;
  /** Short title, e.g. "checkout". */
  title: string;
  /** One line saying what each operation is and how many tasks run it. */
  description: string;
  /** Milliseconds per timed repetition. */
  durationMs(quick: boolean): number;
  /** Repetitions when not the run's default (S4 and S5 under `--quick`, to stay under a minute). */
  reps?(quick: boolean): number | undefined;
  /** Untimed warm-up per variant, milliseconds. */
  warmMs(quick: boolean): number;
  /** Prepares shared state (tables, an HTTP server) before the variants open. */
  setup?(ctx: Context): Promise<void>;
  /** The rows of this scenario. */
  variants(ctx: Context): Variant[];
  /** Undoes `setup`. */
  teardown?(): Promise<void>;
}

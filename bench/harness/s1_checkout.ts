/**
 * S1 checkout: 100 concurrent tasks share a pool of 10; each loops
 * acquire → `SELECT $1::int` → release.
 *
 * @module
 */

import { asyncpgVariant } from "./contender_asyncpg.ts";
import { pgbenchVariant } from "./contender_pgbench.ts";
import { runLoop } from "./contender.ts";
import type { Scenario, Variant } from "./variant.ts";
import { inProcessVariant } from "./variant.ts";

const TASKS = 100;
const SIZE = 10;
const SQL = "SELECT $1::int";
const RESET_SCRIPT = [
  "\\set i random(1, 1000000)",
  "\\startpipeline",
  "SELECT :i::int;",
  "SELECT pg_advisory_unlock_all();",
  "CLOSE ALL;",
  "UNLISTEN *;",
  "RESET SESSION AUTHORIZATION;",
  "RESET ALL;",
  "\\endpipeline",
  "",
].join("\n");

/** The S1 scenario. */
export const s1Checkout: Scenario = {
  id: "S1",
  title: "checkout",
  description: `${TASKS} tasks, pool size ${SIZE}: acquire → \`${SQL}\` → release`,
  durationMs: (quick) => (quick ? 200 : 3000),
  warmMs: (quick) => (quick ? 100 : 1000),
  variants(ctx) {
    const rows: Variant[] = ctx.kinds.map((kind) =>
      inProcessVariant(
        ctx,
        kind,
        kind.checkoutApi,
        SIZE,
        (c, ms) => runLoop(TASKS, ms, (i) => c.checkout((q) => q.query(SQL, [i]))),
      )
    );
    if (ctx.asyncpg) {
      rows.push(asyncpgVariant(ctx, "async with pool.acquire()", SIZE, "checkout", TASKS, [SQL]));
    }
    if (ctx.pgbench) {
      rows.push(
        pgbenchVariant(
          ctx,
          `-c ${SIZE}, same statement`,
          SIZE,
          "\\set i random(1, 1000000)\nSELECT :i::int;\n",
        ),
      );
      // The server's ceiling for a checkout followed by the default reset, sent in one pipelined batch.
      rows.push(
        pgbenchVariant(
          ctx,
          `-c ${SIZE}, with the reset, pipelined`,
          SIZE,
          RESET_SCRIPT,
          "pgbench-reset",
        ),
      );
    }
    return rows;
  },
};

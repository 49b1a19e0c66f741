/**
 * S2 one-shot: 100 concurrent tasks share a pool of 10; each loops
 * `pool.fetchVal("SELECT $1::int", [i])` (or the library's one-shot query).
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

/** The S2 scenario. */
export const s2OneShot: Scenario = {
  id: "S2",
  title: "one-shot",
  description: `${TASKS} tasks, pool size ${SIZE}: one-shot \`${SQL}\` through the pool`,
  durationMs: (quick) => (quick ? 200 : 3000),
  warmMs: (quick) => (quick ? 100 : 1000),
  variants(ctx) {
    const rows: Variant[] = ctx.kinds.map((kind) =>
      inProcessVariant(
        ctx,
        kind,
        kind.oneShotApi,
        SIZE,
        (c, ms) => runLoop(TASKS, ms, (i) => c.oneShot(SQL, [i])),
      )
    );
    if (ctx.asyncpg) rows.push(asyncpgVariant(ctx, "pool.fetchval()", SIZE, "one_shot", TASKS, [SQL]));
    if (ctx.pgbench) {
      rows.push(
        pgbenchVariant(
          ctx,
          `-c ${SIZE}, same statement`,
          SIZE,
          "\\set i random(1, 1000000)\nSELECT :i::int;\n",
        ),
      );
    }
    return rows;
  },
};

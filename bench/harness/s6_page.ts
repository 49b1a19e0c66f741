/**
 * S6 page: a request that loads a page of 20 rows with 20 one-shots at once
 * (`Promise.all` of 20 `SELECT $1::int AS id, $2::text AS name`), as a handler
 * that fetches a list's items one by one does. 10 such requests run at a time,
 * each starting the next page when its 20 answers are in, on a pool of 10
 * connections; the rate is pages per second. Ours pipelines the one-shots
 * (each still followed by the session reset); postgres.js and Bun.sql queue
 * them on their connections; pg runs one per connection.
 *
 * @module
 */

import { runLoop } from "./contender.ts";
import type { Scenario, Variant } from "./variant.ts";
import { inProcessVariant } from "./variant.ts";

const REQUESTS = 10;
const PAGE = 20;
const SIZE = 10;
const SQL = "SELECT $1::int AS id, $2::text AS name";

/** The S6 scenario. */
export const s6Page: Scenario = {
  id: "S6",
  title: "page of 20",
  description:
    `${REQUESTS} concurrent requests, pool size ${SIZE}: each runs ${PAGE} one-shots \`${SQL}\` at once`,
  durationMs: (quick) => (quick ? 300 : 3000),
  warmMs: (quick) => (quick ? 100 : 1000),
  variants(ctx) {
    const rows: Variant[] = ctx.kinds.map((kind) =>
      inProcessVariant(
        ctx,
        kind,
        `${PAGE} × ${kind.oneShotApi} at once`,
        SIZE,
        (c, ms) =>
          runLoop(REQUESTS, ms, (n) => {
            const page: Promise<unknown>[] = [];
            for (let i = 0; i < PAGE; i++) page.push(c.oneShot(SQL, [n * PAGE + i, "item"]));
            return Promise.all(page);
          }),
      )
    );
    return rows;
  },
};

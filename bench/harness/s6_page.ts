/**
 * S6 page: a request that loads a page of 20 rows with 20 one-shots at once
 * (`Promise.all` of 20 `SELECT $1::int AS id, $2::text AS name`, one row
 * each), as a handler that fetches a list's items one by one does. 10 such
 * requests run at a time on a pool of 10 connections, each starting its next
 * page once all 20 rows of the last one are in: 200 one-shots in flight, 20
 * per connection if they spread evenly. The rate is pages per second (one
 * operation = one page of 20 statements), latency is per page.
 *
 * Ours uses `pool.fetchRow()` (pipelined up to its `pipelineDepth`, each
 * one-shot still followed by the session reset unless `reset: null`),
 * postgres.js and Bun.sql `sql\`...\`` on the shared pool (queued on their
 * connections, no reset), pg `pool.query()` (one statement per connection at
 * a time). Every row is checked against the id asked for, so a library that
 * mixed up answers fails instead of scoring.
 *
 * @module
 */

import { type Contender, oneShotRow, runLoop } from "./contender.ts";
import type { Scenario, Variant } from "./variant.ts";
import { inProcessVariant } from "./variant.ts";

/** Concurrent requests (page loads). */
const REQUESTS = 10;
/** One-shots per page, all started at once. */
const PAGE = 20;
const SIZE = 10;
const SQL = "SELECT $1::int AS id, $2::text AS name";
const NAMES: readonly string[] = Array.from({ length: PAGE }, (_, i) => `item ${i}`);

/** Loads page `n`: `PAGE` one-shots at once; rejects when a row is not the one asked for. */
async function loadPage(c: Contender, n: number): Promise<void> {
  const first = (n % 1_000_000) * PAGE;
  const rows = await Promise.all(NAMES.map((name, i) => oneShotRow(c, SQL, [first + i, name])));
  for (let i = 0; i < PAGE; i++) {
    const row = rows[i] as { id?: unknown; name?: unknown } | undefined;
    if (row?.id !== first + i || row.name !== NAMES[i]) {
      throw new Error(`Page ${n}: row ${i} is ${JSON.stringify(row)}, expected id ${first + i}`);
    }
  }
}

/** The S6 scenario. */
export const s6Page: Scenario = {
  id: "S6",
  title: "page of 20",
  description: `${REQUESTS} concurrent requests, pool size ${SIZE}: each runs ${PAGE} one-shots ` +
    `\`${SQL}\` at once (Promise.all); ops/s = pages/s`,
  durationMs: (quick) => (quick ? 300 : 3000),
  warmMs: (quick) => (quick ? 150 : 1000),
  variants(ctx) {
    const rows: Variant[] = ctx.kinds.map((kind) =>
      inProcessVariant(
        ctx,
        kind,
        `${PAGE} × ${kind.oneShotRowApi ?? kind.oneShotApi} at once`,
        SIZE,
        (c, ms) => runLoop(REQUESTS, ms, (n) => loadPage(c, n)),
      )
    );
    return rows;
  },
};

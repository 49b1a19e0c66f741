/**
 * The combinatorial invariant test: every combination of connect / init /
 * setup / reset / query outcomes {ok, error, slow, never}, crossed with abort
 * points and two pool shapes. After everything settles the pool must hold its
 * invariants, have no waiter left, account for every slot, and still work.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BasePool as Pool } from "../../src/core/pool.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";
import { FakeDriver, type Outcome, play } from "../support/fake_driver.ts";
import { checkInvariants, type Harness } from "../support/core_pool.ts";

const OUTCOMES: Outcome[] = ["ok", "error", "slow", "never"];
type AbortPoint = "none" | "sync" | number;
const ABORT_POINTS: AbortPoint[] = ["none", "sync", 50, 100, 150, 250];
const SHAPES = [1, 2];
const USERS = 3;

interface Plan {
  connect: Outcome;
  init: Outcome;
  setup: Outcome;
  reset: Outcome;
  query: Outcome;
  abortAt: AbortPoint;
  maxSize: number;
}

async function runScenario(plan: Plan): Promise<string | undefined> {
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const o = { ...plan };
  driver.connect.fallback = o.connect;
  driver.query.fallback = o.query;
  driver.reset.fallback = o.reset;
  const pool = new Pool({
    clock,
    connect: driver.hook,
    maxSize: plan.maxSize,
    init: () => play(clock, o.init, "init", 100),
    setup: () => play(clock, o.setup, "setup", 100),
    onWarning: () => {},
  });
  const h: Harness = { pool, clock, driver, warnings: [] };
  await pool.init();
  let settled = 0;
  const ctl = new AbortController();
  for (let u = 0; u < USERS; u++) {
    const signal = u === 0 && plan.abortAt !== "none" ? ctl.signal : undefined;
    void (async () => {
      try {
        const con = await pool.acquire({ timeout: 0.3, signal });
        try {
          await con.fetchVal("SELECT 1", [], { timeout: 0.2 });
        } finally {
          await pool.release(con);
        }
      } catch {
        // outcomes are scripted to fail; what matters is what is left afterwards
      } finally {
        settled++;
      }
    })();
  }
  if (plan.abortAt === "sync") ctl.abort(new Error("aborted"));
  for (let t = 0; t < 1500; t += 50) {
    if (plan.abortAt === t) ctl.abort(new Error("aborted"));
    await clock.tick(50);
  }
  if (settled !== USERS) return `${USERS - settled} user(s) never settled`;
  const broken = checkInvariants(h);
  if (broken !== undefined) return broken;
  // every slot is accounted for: the pool still serves maxSize checkouts at once
  o.init = o.setup = "ok";
  driver.connect.fallback = driver.query.fallback = driver.reset.fallback = "ok";
  const cons = await Promise.all(Array.from({ length: plan.maxSize }, () => pool.acquire({ timeout: 1 })));
  for (const con of cons) await pool.release(con);
  if (pool.getSize() !== plan.maxSize) return `after recovery size is ${pool.getSize()}`;
  await pool.close();
  await flush();
  if (driver.open !== 0) return `${driver.open} connection(s) left open after close`;
  return undefined;
}

describe("Pool invariants", () => {
  it(
    "Pool keeps its invariants across every outcome combination and abort point",
    { timeout: 60_000 },
    async () => {
      let runs = 0;
      const failures: string[] = [];
      for (const maxSize of SHAPES) {
        for (const connect of OUTCOMES) {
          for (const init of OUTCOMES) {
            for (const setup of OUTCOMES) {
              for (const reset of OUTCOMES) {
                for (const query of OUTCOMES) {
                  for (const abortAt of ABORT_POINTS) {
                    const plan = { connect, init, setup, reset, query, abortAt, maxSize };
                    const broken = await runScenario(plan);
                    runs++;
                    if (broken !== undefined && failures.length < 10) {
                      failures.push(`${JSON.stringify(plan)}: ${broken}`);
                    }
                  }
                }
              }
            }
          }
        }
      }
      assert.deepEqual(failures, []);
      assert.ok(runs >= 10_000, `ran ${runs} interleavings`);
    },
  );
});

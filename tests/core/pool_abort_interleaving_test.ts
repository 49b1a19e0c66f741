/**
 * Aborts landing between the internal steps of an acquire. The invariant test
 * aborts on clock ticks, after every pending microtask has run, so an abort
 * never falls between two awaits. Here every step succeeds at once and the
 * abort fires after exactly k microtask turns, for every k from 0 until the
 * acquire has long completed: connect → init, init → setup, setup → busy, and
 * a released connection's hand-off to a waiter are each hit. Whatever k, the
 * acquire either resolves with a working checkout or rejects with
 * `signal.reason`, and the pool keeps its invariants and its full capacity.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BasePool as Pool } from "../../src/core/pool.ts";
import type { PoolConnection } from "../../src/core/pool_connection.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";
import { FakeDriver } from "../support/fake_driver.ts";
import { checkInvariants, type Harness, settle } from "../support/core_pool.ts";

/** Resolves after `n` microtask turns. */
async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

interface Shape {
  name: string;
  init: boolean;
  setup: boolean;
  /** An idle connection is there (no connect), else the acquire connects. */
  idle: boolean;
  /** The acquire waits for a held connection, which is released as the abort clock starts. */
  handOff: boolean;
}

const SHAPES: Shape[] = [];
for (const init of [false, true]) {
  for (const setup of [false, true]) {
    for (const [idle, handOff] of [[false, false], [true, false], [true, true]] as const) {
      SHAPES.push({
        name: `${handOff ? "hand-off" : idle ? "idle" : "connect"}${init ? " + init" : ""}${
          setup ? " + setup" : ""
        }`,
        init,
        setup,
        idle,
        handOff,
      });
    }
  }
}

type Outcome = "resolved" | "rejected";

/** One acquire whose abort fires after `k` microtask turns; returns what happened, or a broken invariant. */
async function runOnce(shape: Shape, k: number): Promise<Outcome | string> {
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const setupSeen: PoolConnection[] = [];
  const pool = new Pool({
    clock,
    connect: driver.hook,
    maxSize: 1,
    onWarning: () => {},
    // each hook takes a few turns, so aborts can land inside and between them
    ...(shape.init ? { init: () => hops(3) } : {}),
    ...(shape.setup ? { setup: (con: PoolConnection) => (setupSeen.push(con), hops(3)) } : {}),
  });
  const h: Harness = { pool, clock, driver, warnings: [] };
  await pool.init();
  if (shape.idle) await pool.release(await pool.acquire());
  let holder: PoolConnection | undefined;
  if (shape.handOff) holder = await pool.acquire();
  const reason = new Error(`abort after ${k} turns`);
  const ctl = new AbortController();
  const pending = settle(pool.acquire({ signal: ctl.signal }));
  if (holder !== undefined) await flush(); // the acquire is queued before the release starts
  const releasing = holder === undefined ? Promise.resolve() : pool.release(holder);
  await hops(k);
  ctl.abort(reason);
  const r = await pending;
  await releasing;
  await flush();
  let outcome: Outcome;
  if (r.ok) {
    outcome = "resolved";
    const con = r.value;
    const token = `k${k}`;
    if ((await con.fetchVal("SELECT $1", [token])) !== token) return "the checkout does not work";
    if (driver.connections.at(-1)!.args.at(-1)?.[0] !== token) {
      return "the checkout ran on another connection";
    }
    await pool.release(con);
  } else {
    if (r.error !== reason) return `rejected with ${String(r.error)}, not signal.reason`;
    outcome = "rejected";
    // a setup that ran for the aborted acquire must not have left a live proxy behind
    for (const proxy of setupSeen) {
      try {
        proxy.getServerPid();
        return "the aborted acquire's setup proxy is still live";
      } catch {
        // released, as it must be
      }
    }
  }
  await flush();
  const broken = checkInvariants(h);
  if (broken !== undefined) return broken;
  if (pool.getIdleSize() !== pool.getSize()) {
    return `idle ${pool.getIdleSize()} of ${pool.getSize()} after all released`;
  }
  // the slot is not leaked: the pool still hands out its one connection, and it works
  const again = await settle(pool.acquire({ timeout: 1 }));
  if (!again.ok) return `no capacity left: ${String(again.error)}`;
  if ((await again.value.fetchVal("SELECT $1", [7])) !== 7) return "the next checkout does not work";
  await pool.release(again.value);
  await pool.close();
  await flush();
  if (driver.open !== 0) return `${driver.open} connection(s) open after close`;
  return outcome;
}

describe("Pool.acquire() aborted between its internal steps", () => {
  for (const shape of SHAPES) {
    it(`Pool.acquire() aborted after any number of microtask turns (${shape.name}) resolves or rejects with signal.reason, leaking nothing`, async () => {
      const seen = new Map<Outcome, number>();
      const failures: string[] = [];
      // Past the point where the acquire completes, aborts change nothing: stop after 20 such turns in a row.
      let resolvedInARow = 0;
      let k = 0;
      for (; resolvedInARow < 20 && k < 2000; k++) {
        const result = await runOnce(shape, k);
        if (result !== "resolved" && result !== "rejected") {
          failures.push(`k=${k}: ${result}`);
          if (failures.length >= 5) break;
          continue;
        }
        seen.set(result, (seen.get(result) ?? 0) + 1);
        resolvedInARow = result === "resolved" ? resolvedInARow + 1 : 0;
      }
      assert.deepEqual(failures, []);
      assert.ok(k < 2000, "the acquire completed within 2000 turns");
      // both sides of every step boundary were hit, unless the checkout is synchronous (idle, no setup)
      const synchronous = shape.idle && !shape.handOff && !shape.setup;
      if (!synchronous) {
        assert.ok((seen.get("rejected") ?? 0) > 0, "some aborts landed before the checkout completed");
      }
      assert.ok((seen.get("resolved") ?? 0) > 0);
    });
  }
});

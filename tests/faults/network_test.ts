/**
 * Fault scenarios on the network path (tests/support/fault_proxy.ts between
 * the pool and the shared test server): a black hole, resets, refused
 * connections, latency, and connections cut after every byte count of a
 * connect + insert (with the write ledger). Every bounded operation (acquire, connect, query, release,
 * close) is shown to hold its bound while the network is black-holed, and each
 * scenario ends with the pool invariant check.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  type Connection,
  ConnectionError,
  createPool,
  InterfaceError,
  type Pool,
  PoolError,
  PoolTimeoutError,
} from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { assertLedgerClean, describeReport, errorParts, Ledger } from "../support/ledger.ts";
import {
  assertPoolInvariants,
  codeOf,
  note,
  recoveryTime,
  rejection,
  startLoad,
  Tally,
  trapUnhandledRejections,
  waitFor,
  within,
} from "./fault_support.ts";

let server: TestServer;
let proxy: FaultProxy;
let admin: Connection;

/** Asserts `err` is a PoolTimeoutError with `code`, raised `elapsed` ms into a `boundMs` deadline. */
function assertDeadline(err: unknown, code: string, elapsed: number, boundMs: number): void {
  assert.ok(err instanceof PoolTimeoutError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.name, "TimeoutError");
  assert.equal(err.code, code);
  assert.ok(elapsed >= boundMs - 20, `${code} fired after ${elapsed} ms, before its ${boundMs} ms deadline`);
  assert.ok(elapsed < boundMs + 400, `${code} fired after ${elapsed} ms for a ${boundMs} ms deadline`);
}

async function timed<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = Date.now();
  try {
    const value = await within(15_000, p);
    return { value, ms: Date.now() - started };
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
}

/** Ends a scenario: drops the pool, clears the faults and waits until the proxy carries nothing. */
async function settle(pool: Pool): Promise<void> {
  pool.terminate();
  proxy.clearFaults();
  await waitFor("the proxy to be empty", () => proxy.connections === 0, 3000);
}

function poolVia(options: ConstructorParameters<typeof Pool>[1] = {}): Promise<Pool> {
  return createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
    onWarning: () => {},
    ...options,
  });
}

describe("Faults: the network path", { timeout: 120_000 }, () => {
  before(async () => {
    server = await getTestServer();
    proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
    admin = await connect(server.dsn);
  });

  after(async () => {
    await admin.close();
    await proxy.close();
  });

  describe("a black-holed network: every deadline fires, nothing waits forever", () => {
    it("acquire({ timeout }) rejects with ACQUIRE_TIMEOUT at its deadline while connecting hangs", async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const pool = await poolVia({ minSize: 0, maxSize: 2, connectTimeout: 30 });
      try {
        proxy.blackHole();
        const r = await timed(pool.acquire({ timeout: 0.3 }));
        assertDeadline(r.error, "ACQUIRE_TIMEOUT", r.ms, 300);
        assert.equal(pool.getSize(), 0, "the half-made connection does not hold a slot");
        await waitFor("the abandoned socket to be closed", () => proxy.connections === 0, 3000);
        proxy.heal();
        await assertPoolInvariants(pool);
      } finally {
        await settle(pool);
        trap.check();
      }
    });

    it("a connect attempt rejects with CONNECT_TIMEOUT at connectTimeout (pool and standalone connect)", {
      timeout: 30_000,
    }, async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const pool = await poolVia({ minSize: 0, maxSize: 2, connectTimeout: 0.3 });
      try {
        proxy.blackHole();
        const viaPool = await timed(pool.acquire());
        assertDeadline(viaPool.error, "CONNECT_TIMEOUT", viaPool.ms, 300);
        const direct = await timed(
          connect(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), { connectTimeout: 0.3 }),
        );
        assertDeadline(direct.error, "CONNECT_TIMEOUT", direct.ms, 300);
        const viaDsn = await timed(
          connect(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })) + "?connect_timeout=0.3"),
        );
        assertDeadline(viaDsn.error, "CONNECT_TIMEOUT", viaDsn.ms, 300);
        await waitFor("every abandoned socket to be closed", () => proxy.connections === 0, 3000);
        proxy.heal();
        await assertPoolInvariants(pool);
      } finally {
        await settle(pool);
        trap.check();
      }
    });

    it("a query timeout fires at its deadline though the cancel cannot get through; the pool recovers", async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const pool = await poolVia({ minSize: 1, maxSize: 2, connectTimeout: 0.5 });
      try {
        const con = await pool.acquire();
        proxy.blackHole();
        const r = await timed(con.fetchVal("SELECT 1", [], { timeout: 0.25 }));
        assertDeadline(r.error, "QUERY_TIMEOUT", r.ms, 250);
        const ac = new AbortController();
        const reason = new Error("caller gave up");
        setTimeout(() => ac.abort(reason), 150);
        const aborted = await timed(pool.fetchVal("SELECT 1", [], { signal: ac.signal }));
        assert.equal(aborted.error, reason, "an abort rejects with the signal's reason");
        assert.ok(aborted.ms < 550, `abort honoured after ${aborted.ms} ms`);
        const rel = await timed(pool.release(con, { timeout: 0.3 }));
        assert.ok(rel.ms < 700, `release settled after ${rel.ms} ms`);
        proxy.heal();
        const since = Date.now();
        const recovered = await recoveryTime(pool, since);
        note("black hole (query)", `pool answered again ${recovered} ms after the network healed`);
        await assertPoolInvariants(pool);
      } finally {
        await settle(pool);
        trap.check();
      }
    });

    it("release() holds its bound (explicit timeout, inherited acquire timeout, releaseTimeout option, a statement still running)", async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const pool = await poolVia({ minSize: 4, maxSize: 4, releaseTimeout: 0.4, connectTimeout: 1 });
      try {
        const explicit = await pool.acquire();
        const inherited = await pool.acquire({ timeout: 0.3 });
        const byOption = await pool.acquire();
        const busy = await pool.acquire();
        proxy.blackHole();
        // A statement still unanswered at release: the release must wait for it, so here its
        // bound is the only way out.
        const unanswered = busy.fetchVal("SELECT 1").catch((e: unknown) => e);
        const [a, b, c, d] = await Promise.all([
          timed(pool.release(explicit, { timeout: 0.25 })),
          timed(pool.release(inherited)),
          timed(pool.release(byOption)),
          timed(pool.release(busy, { timeout: 0.3 })),
        ]);
        assertDeadline(d!.error, "RELEASE_TIMEOUT", d!.ms, 300);
        const dropped = await within(2000, unanswered, "the unanswered statement");
        assert.ok(dropped instanceof PoolError, `the unanswered statement fails typed: ${String(dropped)}`);
        // A release may finish early (a pipelined reset needs no answer) or reject
        // RELEASE_TIMEOUT at its deadline; it never outlives its bound.
        for (const [r, bound] of [[a!, 250], [b!, 300], [c!, 400]] as const) {
          if (r.error === undefined) {
            assert.ok(r.ms < bound + 50, `release resolved after ${r.ms} ms (bound ${bound})`);
          } else assertDeadline(r.error, "RELEASE_TIMEOUT", r.ms, bound);
        }
        for (const con of [explicit, inherited, byOption, busy]) {
          assert.throws(
            () => con.fetchVal("SELECT 1"),
            (e: unknown) => (e as PoolError).code === "CONNECTION_RELEASED",
          );
        }
        // Whatever the release left behind, the next users' bounded calls settle on time: at their
        // own deadline (in the query, or in a connect replacing a dropped connection), or earlier
        // when a reset queued ahead of them outlives the pool's releaseTimeout and takes its
        // connection down.
        const next = await Promise.all(
          [0, 1, 2, 3].map(() => timed(pool.fetchVal("SELECT 1", [], { timeout: 0.3 }))),
        );
        for (const r of next) {
          const code = (r.error as PoolError | undefined)?.code;
          assert.ok(
            (r.error instanceof PoolTimeoutError &&
              (code === "QUERY_TIMEOUT" || code === "ACQUIRE_TIMEOUT")) ||
              (r.error instanceof ConnectionError && code === "CONNECTION_LOST"),
            `a bounded call on a dead network: ${String(r.error)}`,
          );
          assert.ok(r.ms < 700, `settled after ${r.ms} ms`);
        }
        assert.ok(pool.getSize() <= 4);
        proxy.heal();
        await assertPoolInvariants(pool);
      } finally {
        await settle(pool);
        trap.check();
      }
    });

    it("close({ timeout }) holds its bound with a checkout stuck on a dead network, then terminates", async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const pool = await poolVia({ minSize: 2, maxSize: 2 });
      const con = await pool.acquire();
      proxy.blackHole();
      const stuck = con.fetchVal("SELECT 1").catch((e) => e);
      const r = await timed(pool.close({ timeout: 0.4 }));
      assertDeadline(r.error, "CLOSE_TIMEOUT", r.ms, 400);
      assert.equal(pool.isClosing(), true);
      assert.equal(pool.getSize(), 0, "terminated");
      // Used here, so the checkout stays reachable for the whole test: a proxy the test stopped
      // referencing could be collected and reclaimed as a leak, and close() would drain instead.
      assert.equal(con.isClosed(), true, "the checkout's connection went with the pool");
      const late = await within(2000, stuck, "the stuck query");
      assert.ok(late instanceof PoolError, `the stuck query ends with a typed error: ${String(late)}`);
      const after = await rejection(pool.acquire());
      assert.ok(after instanceof InterfaceError);
      assert.equal(after.code, "POOL_CLOSED");
      // Stalled links only see the client's close once traffic flows again.
      proxy.heal();
      await waitFor("every proxied socket to be closed", () => proxy.connections === 0, 3000);
      proxy.clearFaults();
      trap.check();
    });

    it("60 tasks of mixed bounded operations all settle while black-holed; the pool is sound after healing", {
      timeout: 30_000,
    }, async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const ledger = await Ledger.create(admin, "ledger_black_hole");
      const app = `fault-black-hole-${Date.now()}`;
      const pool = await poolVia({
        minSize: 2,
        maxSize: 4,
        connectTimeout: 0.5,
        releaseTimeout: 0.5,
        applicationName: app,
      });
      try {
        assert.equal(await pool.fetchVal("SELECT 1"), 1);
        proxy.blackHole();
        const tally = new Tally();
        const started = Date.now();
        const tasks = Array.from({ length: 60 }, async (_, i) => {
          try {
            switch (i % 4) {
              case 0:
                await ledger.write((sql, args) => pool.execute(sql, args, { timeout: 0.4 }), `task ${i}`);
                break;
              case 1: {
                await using con = await pool.acquire({ timeout: 0.4 });
                await con.execute("SELECT 1", [], { timeout: 0.3 });
                break;
              }
              case 2:
                await pool.execute("SELECT 1", [], { signal: AbortSignal.timeout(300) });
                break;
              default:
                await pool.fetch("SELECT 1", [], { timeout: 0.2 });
            }
            tally.ok++;
          } catch (e) {
            tally.fail(e);
            for (const part of errorParts(e)) {
              const ok = part instanceof PoolError || (part instanceof Error && part.name === "TimeoutError");
              assert.ok(ok, `typed error, got ${String(part)}`);
            }
          }
        });
        await within(5000, Promise.all(tasks), "60 tasks on a black-holed network");
        const settled = Date.now() - started;
        assert.equal(tally.ok, 0);
        assert.equal(tally.failed, 60);
        for (const code of tally.codes()) {
          assert.ok(
            ["ACQUIRE_TIMEOUT", "QUERY_TIMEOUT", "RELEASE_TIMEOUT", "CONNECT_TIMEOUT", "TimeoutError"]
              .includes(code),
            `unexpected code ${code} (${tally})`,
          );
        }
        assert.equal(pool.getWaitingCount(), 0);
        proxy.heal();
        const recovered = await recoveryTime(pool, Date.now());
        await assertPoolInvariants(pool);
        // Bytes stalled in the black hole reach the server after healing, even on connections the
        // pool gave up on: wait until the server has only the pool's sessions, all idle, so the
        // ledger reads the table's final state.
        await waitFor(
          "the server to have only the pool's sessions, all idle",
          async () => {
            const states = await admin.fetch<{ state: string }>(
              "SELECT state FROM pg_stat_activity WHERE application_name = $1",
              [app],
            );
            return states.length === pool.getSize() && states.every((r) => r.state === "idle");
          },
          5000,
        );
        const report = await ledger.verify(admin);
        note(
          "black hole (60 tasks)",
          `all settled in ${settled} ms (${tally}); recovered ${recovered} ms after healing; ` +
            `ledger ${describeReport(report)}`,
        );
        assertLedgerClean(report);
      } finally {
        await settle(pool);
        trap.check();
      }
    });
  });

  describe("resets, refusals, latency and cuts", () => {
    it("connections reset under a 30-task load: typed errors, no lost or duplicated write, recovery", {
      timeout: 30_000,
    }, async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const ledger = await Ledger.create(admin, "ledger_net_reset");
      const pool = await poolVia({ minSize: 4, maxSize: 6, connectTimeout: 2 });
      try {
        const load = startLoad(
          30,
          (w, i) =>
            i % 3 === 0
              ? pool.fetchVal("SELECT $1::int", [w], { timeout: 2 })
              : ledger.write((sql, args) => pool.execute(sql, args, { timeout: 2 })),
        );
        await waitFor("the load to start", () => load.tally.ok > 100, 5000);
        // Each reset comes once the pool has served the load on its new connections since the
        // previous one (the event), not after a fixed pause; each must find connections to reset.
        let resets = 0;
        for (let k = 0; k < 8; k++) {
          const okBefore = load.tally.ok;
          await waitFor(`the load to progress before reset ${k}`, () => load.tally.ok >= okBefore + 10, 5000);
          const n = proxy.resetAll();
          assert.ok(n > 0, `reset ${k} found connections to reset`);
          resets += n;
        }
        const lastReset = Date.now();
        await waitFor("a success after the last reset", () => load.lastOkAt() > lastReset, 5000);
        const recovered = load.lastOkAt() - lastReset;
        const okRecovered = load.tally.ok;
        await waitFor("the load to keep going after recovery", () => load.tally.ok >= okRecovered + 30, 5000);
        await load.stop();
        assert.ok(resets >= 8, `${resets} connections reset`);
        assert.ok(load.tally.failed > 0, `the resets were felt (${load.tally})`);
        for (const code of load.tally.codes()) {
          assert.ok(
            ["CONNECTION_LOST", "ECONNRESET", "CONNECTION_CLOSED", "EPIPE", "ECONNREFUSED"].includes(code),
            `unexpected code ${code} (${load.tally})`,
          );
        }
        await assertPoolInvariants(pool);
        const report = await ledger.verify(admin);
        note(
          "resets under load",
          `${resets} connections reset; first success ${recovered} ms after the last reset; load ${load.tally}; ` +
            `ledger ${describeReport(report)}`,
        );
        assertLedgerClean(report);
      } finally {
        await settle(pool);
        trap.check();
      }
    });

    it("refused connections fail each acquire with a ConnectionError, once per acquire, and the pool recovers", async () => {
      proxy.clearFaults();
      const trap = trapUnhandledRejections();
      const pool = await poolVia({ minSize: 0, maxSize: 3 });
      try {
        proxy.refuseNew(true);
        const before = proxy.stats().accepted;
        for (let i = 0; i < 3; i++) {
          const r = await timed(pool.acquire({ timeout: 2 }));
          assert.ok(r.error instanceof ConnectionError, `got ${String(r.error)}`);
          assert.ok(r.ms < 1000, `failed after ${r.ms} ms`);
        }
        assert.equal(
          proxy.stats().accepted - before,
          3,
          "one connection attempt per acquire, no retry storm",
        );
        assert.equal(pool.getSize(), 0);
        proxy.refuseNew(false);
        await assertPoolInvariants(pool);
      } finally {
        await settle(pool);
        trap.check();
      }
    });

    it(
      "200 ms of latency each way: short deadlines fire on time, longer ones succeed, the pool stays sound",
      { timeout: 30_000 },
      async () => {
        proxy.clearFaults();
        const trap = trapUnhandledRejections();
        const pool = await poolVia({ minSize: 2, maxSize: 2, connectTimeout: 5 });
        try {
          proxy.setLatency(200);
          const slow = await timed(pool.fetchVal("SELECT 7", [], { timeout: 3 }));
          assert.equal(slow.value, 7);
          assert.ok(slow.ms >= 390, `a round trip takes two latencies, took ${slow.ms} ms`);
          const fast = await timed(pool.fetchVal("SELECT 8", [], { timeout: 0.15 }));
          assertDeadline(fast.error, "QUERY_TIMEOUT", fast.ms, 150);
          // Both connections are busy for a 400 ms query: a 150 ms acquire deadline fires on time.
          const busy = [
            pool.fetchVal("SELECT 1", [], { timeout: 3 }),
            pool.fetchVal("SELECT 2", [], { timeout: 3 }),
          ];
          const waiting = await timed(pool.acquire({ timeout: 0.15 }));
          assertDeadline(waiting.error, "ACQUIRE_TIMEOUT", waiting.ms, 150);
          assert.deepEqual(await Promise.all(busy), [1, 2]);
          proxy.setLatency(0);
          await waitFor("the pool to be idle", () => pool.getIdleSize() === pool.getSize(), 5000);
          await assertPoolInvariants(pool);
          note("latency 200 ms", `round trip ${slow.ms} ms; 150 ms deadline fired after ${fast.ms} ms`);
        } finally {
          await settle(pool);
          trap.check();
        }
      },
    );

    it(
      "a connection cut after every byte count of connect + insert fails with a typed error or succeeds; no slot leaks, no lost write",
      { timeout: 30_000 },
      async () => {
        proxy.clearFaults();
        const trap = trapUnhandledRejections();
        const ledger = await Ledger.create(admin, "ledger_cut");
        const insert = (): Promise<void> =>
          ledger.write((sql, args) => within(5000, pool.execute(sql, args, { timeout: 3 }), "an insert"));
        const pool = await poolVia({ minSize: 0, maxSize: 2, connectTimeout: 2 });
        try {
          // How many bytes one connect + insert moves: measured through the proxy.
          const s0 = proxy.stats();
          await insert();
          pool.expireConnections();
          await insert(); // replaced: a full connect + insert + reset
          const s1 = proxy.stats();
          const total = s1.bytesUp + s1.bytesDown - s0.bytesUp - s0.bytesDown;
          const perCycle = Math.ceil(total / 2) + 200;
          const tally = new Tally();
          const cuts: number[] = [];
          for (let n = 0; n < perCycle; n += n < 150 ? 1 : 5) cuts.push(n);
          const started = Date.now();
          for (const n of cuts) {
            pool.expireConnections();
            proxy.cutAfterBytes(n);
            try {
              await insert();
              tally.ok++;
            } catch (e) {
              const code = tally.fail(e);
              for (const part of errorParts(e)) {
                assert.ok(
                  part instanceof PoolError,
                  `cut at ${n}: typed error, got ${String(part)} (${code})`,
                );
              }
            }
            assert.ok(pool.getSize() <= pool.getMaxSize());
          }
          proxy.cutAfterBytes(undefined);
          await assertPoolInvariants(pool);
          const report = await ledger.verify(admin);
          note(
            "cut after N bytes",
            `${cuts.length} cut points (0..${cuts.at(-1)} bytes, cycle ≈ ${total} bytes) in ${
              Date.now() - started
            } ms: ${tally}; ledger ${describeReport(report)}`,
          );
          assert.ok(tally.failed > 0);
          assertLedgerClean(report);
        } finally {
          await settle(pool);
          trap.check();
        }
      },
    );
  });

  it("codeOf covers wrapped errors (self-check of the fault helpers)", () => {
    const inner = new PoolTimeoutError("QUERY_TIMEOUT", "x");
    const wrapped = Object.assign(new Error("wrapped"), {
      name: "SuppressedError",
      error: inner,
      suppressed: new Error("y"),
    });
    assert.equal(codeOf(wrapped), "QUERY_TIMEOUT");
  });
});

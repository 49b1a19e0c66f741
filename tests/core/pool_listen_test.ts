/**
 * The LISTEN service over the fake driver and fake clock: one dedicated
 * connection outside the slots, LISTEN/UNLISTEN bookkeeping, the reconnect
 * schedule (capped, jittered exponential backoff), the gap report, bounded
 * waits, and shutdown.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ConnectOptions } from "../../src/core/driver.ts";
import {
  LISTEN_BACKOFF_CAP_MS,
  LISTEN_HEARTBEAT_MS,
  LISTEN_HEARTBEAT_TIMEOUT_MS,
  listenBackoffMs,
  type ListenGap,
} from "../../src/core/listen_service.ts";
import { PoolTimeoutError } from "../../src/core/errors.ts";
import type { PoolOptions } from "../../src/core/options.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";
import { type Harness, readyPool, settle } from "../support/core_pool.ts";

/** No lifetimes, idle expiry or pings: nothing else arms timers or opens connections. */
const QUIET = { maxLifetime: 0, maxInactiveConnectionLifetime: 0, pingAfterIdle: null } as const;

interface ListenHarness extends Harness {
  /** Clock time of every connect call. */
  connectTimes: number[];
  gaps: ListenGap[];
}

async function listenPool(options: PoolOptions = {}): Promise<ListenHarness> {
  const connectTimes: number[] = [];
  const gaps: ListenGap[] = [];
  const h: Harness = await readyPool({
    ...QUIET,
    connect: (o: ConnectOptions) => {
      connectTimes.push(h.clock.now());
      return h.driver.hook(o);
    },
    onListenGap: (gap) => gaps.push(gap),
    ...options,
  });
  return { ...h, connectTimes, gaps };
}

/** The fake driver connection most recently opened. */
function latest(h: Harness) {
  return h.driver.connections[h.driver.connections.length - 1]!;
}

/** A callback that records `channel:payload`. */
function recorder(): { got: string[]; cb: (payload: string, channel: string) => void } {
  const got: string[] = [];
  return { got, cb: (payload, channel) => got.push(`${channel}:${payload}`) };
}

describe("Pool.listen() (core)", () => {
  it("Pool.listen() opens one connection outside the slots and LISTENs each channel once", async () => {
    const h = await listenPool({ maxSize: 1 });
    const a1 = recorder(), a2 = recorder(), b = recorder();
    const [ua1, ua2, ub] = await Promise.all([
      h.pool.listen("a", a1.cb),
      h.pool.listen("a", a2.cb),
      h.pool.listen("b", b.cb),
    ]);
    assert.equal(h.driver.connects, 1);
    const dc = latest(h);
    assert.deepEqual(dc.queries, ['LISTEN "a"', 'LISTEN "b"']);
    assert.equal(h.pool.getSize(), 0);
    assert.equal(h.pool.stats().size, 0);
    assert.equal(h.pool.stats().connectCount, 0, "not one of the pool's connections");
    // The pool's one slot is still there for acquires.
    const con = await h.pool.acquire();
    assert.equal(h.pool.getSize(), 1);
    assert.notEqual(con.getServerPid(), dc.pid);
    await h.pool.release(con);
    dc.notify("a", "1");
    dc.notify("b", "2");
    assert.deepEqual(a1.got, ["a:1"]);
    assert.deepEqual(a2.got, ["a:1"]);
    assert.deepEqual(b.got, ["b:2"]);
    await ua1();
    assert.deepEqual(dc.queries, ['LISTEN "a"', 'LISTEN "b"'], "a still has a callback");
    dc.notify("a", "3");
    assert.deepEqual(a1.got, ["a:1"]);
    assert.deepEqual(a2.got, ["a:1", "a:3"]);
    await ua2();
    assert.deepEqual(dc.queries, ['LISTEN "a"', 'LISTEN "b"', 'UNLISTEN "a"']);
    assert.equal(dc.isClosed(), false);
    await ub();
    assert.deepEqual(dc.queries, ['LISTEN "a"', 'LISTEN "b"', 'UNLISTEN "a"', 'UNLISTEN "b"']);
    assert.equal(dc.isClosed(), true, "no channel left: the connection is closed");
    assert.equal(h.driver.closes, 1);
    await h.pool.close();
  });

  it("Pool.listen() reports a throwing callback as LISTEN_CALLBACK_FAILED and still calls the others", async () => {
    const h = await listenPool();
    const ok = recorder();
    await h.pool.listen("a", () => {
      throw new Error("boom");
    });
    await h.pool.listen("a", ok.cb);
    latest(h).notify("a", "x");
    assert.deepEqual(ok.got, ["a:x"]);
    assert.deepEqual(h.warnings.map((w) => w.code), ["LISTEN_CALLBACK_FAILED"]);
    assert.match(h.warnings[0]!.message, /boom/);
    await h.pool.close();
  });

  it("Pool.listen() given up while its LISTEN is in flight sends UNLISTEN after it and closes the connection", async () => {
    const h = await listenPool();
    h.driver.query.push("slow"); // the LISTEN takes 100 ms
    const ctl = new AbortController();
    const r = settle(h.pool.listen("a", () => {}, { signal: ctl.signal }));
    await flush();
    assert.deepEqual(latest(h).queries, ['LISTEN "a"']);
    ctl.abort(new Error("changed my mind"));
    assert.equal(((await r) as { error: Error }).error.message, "changed my mind");
    await h.clock.tick(100);
    assert.deepEqual(latest(h).queries, ['LISTEN "a"', 'UNLISTEN "a"']);
    assert.equal(latest(h).isClosed(), true);
    await h.pool.close();
  });

  it("Pool.listen() reconnects after a loss with capped, jittered exponential backoff and re-LISTENs every channel", async () => {
    const h = await listenPool();
    const reference = new FakeClock(); // the same seed: the same jitter draws as the pool's clock
    const a = recorder();
    await h.pool.listen("a", a.cb);
    await h.pool.listen("b", () => {});
    const failures = 9;
    h.driver.connect.push(...Array<"error">(failures).fill("error"));
    const lostAt = h.clock.now();
    latest(h).kill();
    await flush();
    // The first attempt after a loss is at once; then 100 ms doubling up to 5 s, each at 50–100%.
    const drawn: number[] = [];
    for (let k = 1; k <= failures; k++) drawn.push(listenBackoffMs(k, reference.random()));
    await h.clock.tick(60_000);
    const actual = h.connectTimes.slice(1);
    assert.equal(actual.length, failures + 1, `attempts at ${actual}`);
    assert.equal(actual[0], lostAt, "the first attempt at once");
    const pauses = actual.slice(1).map((t, i) => t - actual[i]!);
    pauses.forEach((p, i) => {
      // The watchdog fires on whole milliseconds.
      assert.ok(Math.abs(p - drawn[i]!) <= 1, `pause ${i + 1} is ${p} ms, drawn ${drawn[i]}`);
      const full = Math.min(LISTEN_BACKOFF_CAP_MS, 100 * 2 ** i);
      assert.ok(p >= full / 2 && p <= full + 1, `pause ${i + 1} is ${p} ms, expected ${full / 2}–${full}`);
    });
    assert.ok(pauses.at(-1)! >= LISTEN_BACKOFF_CAP_MS / 2, "capped at 5 s, jittered");
    const dc = latest(h);
    assert.deepEqual(dc.queries.filter((q) => q !== "SELECT 1"), ['LISTEN "a"', 'LISTEN "b"']);
    assert.equal(h.gaps.length, 1);
    assert.deepEqual(h.gaps[0]!.channels, ["a", "b"]);
    assert.equal(h.gaps[0]!.attempts, failures + 1);
    assert.equal(h.gaps[0]!.error?.message, "The server closed the connection");
    assert.equal(h.gaps[0]!.downtime, (actual.at(-1)! - lostAt) / 1000);
    dc.notify("a", "after");
    assert.deepEqual(a.got, ["a:after"]);
    // A healthy connection resets the schedule: the next loss reconnects at once again.
    const again = h.clock.now();
    dc.kill();
    await flush();
    assert.equal(h.connectTimes.at(-1), again);
    assert.equal(h.gaps.length, 2);
    await h.pool.close();
  });

  it("Pool.listen() calls onListenGap only once every channel is LISTENed again", async () => {
    const h = await listenPool();
    await h.pool.listen("a", () => {});
    await h.pool.listen("b", () => {});
    h.driver.query.push("ok", "slow"); // the re-LISTEN of b takes 100 ms
    latest(h).kill();
    await flush();
    assert.deepEqual(latest(h).queries, ['LISTEN "a"', 'LISTEN "b"']);
    assert.equal(h.gaps.length, 0, "not before b is LISTENed again");
    await h.clock.tick(100);
    assert.equal(h.gaps.length, 1);
    await h.pool.close();
  });

  it("Pool.listen() checks an idle connection with a heartbeat and replaces one that does not answer", async () => {
    const h = await listenPool();
    const a = recorder();
    await h.pool.listen("a", a.cb);
    const first = latest(h);
    await h.clock.tick(LISTEN_HEARTBEAT_MS);
    assert.deepEqual(first.queries, ['LISTEN "a"', "SELECT 1"], "a heartbeat after 30 s idle");
    await h.clock.tick(LISTEN_HEARTBEAT_MS);
    assert.deepEqual(first.queries, ['LISTEN "a"', "SELECT 1", "SELECT 1"], "and again");
    h.driver.query.push("never"); // the network is cut: the next heartbeat gets no answer
    await h.clock.tick(LISTEN_HEARTBEAT_MS + LISTEN_HEARTBEAT_TIMEOUT_MS - 1);
    assert.equal(first.isClosed(), false);
    assert.equal(h.gaps.length, 0);
    await h.clock.tick(1);
    assert.equal(first.isClosed(), true, "dropped at the heartbeat's timeout");
    const second = latest(h);
    assert.notEqual(second, first);
    assert.deepEqual(second.queries, ['LISTEN "a"']);
    assert.equal(h.gaps.length, 1);
    assert.equal((h.gaps[0]!.error as { code?: string }).code, "QUERY_TIMEOUT");
    second.notify("a", "back");
    assert.deepEqual(a.got, ["a:back"]);
    await h.pool.close();
  });

  it("Pool.listen() without onListenGap reports a gap as a LISTEN_GAP warning", async () => {
    const h = await listenPool({ onListenGap: undefined });
    await h.pool.listen("a", () => {});
    latest(h).kill();
    await flush();
    assert.deepEqual(h.warnings.map((w) => w.code), ["LISTEN_GAP"]);
    await h.pool.close();
  });

  it("Pool.listen() while reconnecting waits for the connection, and rejects with LISTEN_TIMEOUT past its timeout", async () => {
    const h = await listenPool({ listenTimeout: 2 });
    await h.pool.listen("a", () => {});
    h.driver.connect.fallback = "error";
    latest(h).kill();
    await flush();
    const late = settle(h.pool.listen("b", () => {}));
    const patient = settle(h.pool.listen("c", () => {}, { timeout: 0 }));
    let settled = false;
    void late.then(() => settled = true);
    await h.clock.tick(1999);
    assert.equal(settled, false, "still waiting at 1.999 s");
    await h.clock.tick(1);
    const r = await late;
    assert.equal(r.ok, false);
    const error = (r as { error: unknown }).error;
    assert.ok(error instanceof PoolTimeoutError);
    assert.equal(error.code, "LISTEN_TIMEOUT");
    assert.match(error.message, /scripted connect failure/);
    assert.equal((error.cause as Error).message, "scripted connect failure");
    h.driver.connect.fallback = "ok";
    await h.clock.tick(LISTEN_BACKOFF_CAP_MS);
    assert.equal((await patient).ok, true, "an unbounded listen() waited for the connection");
    assert.deepEqual(latest(h).queries, ['LISTEN "a"', 'LISTEN "c"'], "the timed-out b was not LISTENed");
    await h.pool.close();
  });

  it("Pool.listen() rejects with the connect error when the first connection fails, and does not retry", async () => {
    const h = await listenPool();
    h.driver.connect.push("error");
    const r = await settle(h.pool.listen("a", () => {}));
    assert.equal(r.ok, false);
    assert.equal((r as { error: Error }).error.message, "scripted connect failure");
    await h.clock.tick(60_000);
    assert.equal(h.driver.connects, 1);
    // The next listen() tries again.
    await h.pool.listen("a", () => {});
    assert.equal(h.driver.connects, 2);
    await h.pool.close();
  });

  it("Pool.listen() honours an aborted signal and drops the subscription", async () => {
    const h = await listenPool();
    h.driver.connect.push("slow");
    const ctl = new AbortController();
    const r = settle(h.pool.listen("a", () => {}, { signal: ctl.signal }));
    ctl.abort(new Error("changed my mind"));
    assert.equal(((await r) as { error: Error }).error.message, "changed my mind");
    await h.clock.tick(100); // the connection arrives late
    assert.equal(latest(h).isClosed(), true, "nothing left to listen on: dropped at once");
    assert.deepEqual(latest(h).queries, []);
    assert.equal(h.clock.pending, 0);
    await h.pool.close();
  });

  it("Pool.close() stops reconnecting; waiting and later listen() calls reject with POOL_CLOSED", async () => {
    const h = await listenPool({ listenTimeout: 0 });
    await h.pool.listen("a", () => {});
    h.driver.connect.fallback = "error";
    latest(h).kill();
    await h.clock.tick(1000);
    const waiting = settle(h.pool.listen("b", () => {}));
    const attempts = h.driver.connects;
    await h.pool.close();
    const r = await waiting;
    assert.equal((r as { error: { code: string } }).error.code, "POOL_CLOSED");
    await h.clock.tick(60_000);
    assert.equal(h.driver.connects, attempts, "no attempt after close()");
    assert.equal(h.clock.pending, 0, "no timer left");
    assert.equal(
      (await settle(h.pool.listen("a", () => {})) as { error: { code: string } }).error.code,
      "POOL_CLOSED",
    );
  });

  it("Pool.terminate() drops the listen connection at once", async () => {
    const h = await listenPool();
    const unlisten = await h.pool.listen("a", () => {});
    const dc = latest(h);
    h.pool.terminate();
    assert.equal(dc.isClosed(), true);
    assert.equal(h.driver.terminates, 1);
    await unlisten(); // a no-op now
    assert.equal(
      (await settle(h.pool.listen("a", () => {})) as { error: { code: string } }).error.code,
      "POOL_CLOSED",
    );
  });

  it("Pool.close() closes the listen connection gracefully", async () => {
    const h = await listenPool();
    await h.pool.listen("a", () => {});
    const dc = latest(h);
    await h.pool.close();
    assert.equal(dc.isClosed(), true);
    assert.equal(h.driver.closes, 1);
    assert.equal(h.driver.terminates, 0);
  });

  it("Pool.listen() rejects with UNSUPPORTED in transaction pool mode, without connecting", async () => {
    const h = await listenPool({ poolMode: "transaction" });
    const r = await settle(h.pool.listen("a", () => {}));
    assert.equal((r as { error: { code: string } }).error.code, "UNSUPPORTED");
    assert.match((r as { error: Error }).error.message, /transaction pool mode/);
    assert.equal(h.driver.connects, 0);
    await h.pool.close();
  });

  it("Pool.listen() rejects INVALID_ARGUMENT for a bad channel or callback and a TypeError for a bad timeout", async () => {
    const h = await listenPool();
    const code = async (p: Promise<unknown>): Promise<unknown> => {
      const r = await settle(p);
      return (r as { error: { code?: string; name: string } }).error.code ??
        (r as { error: Error }).error.name;
    };
    assert.equal(await code(h.pool.listen("", () => {})), "INVALID_ARGUMENT");
    assert.equal(await code(h.pool.listen("é".repeat(32), () => {})), "INVALID_ARGUMENT", "64 bytes");
    assert.equal(await code(h.pool.listen("a", "nope" as never)), "INVALID_ARGUMENT");
    assert.equal(await code(h.pool.listen("a", () => {}, { timeout: "1" as never })), "TypeError");
    assert.equal(h.driver.connects, 0);
    await h.pool.close();
  });
});

/**
 * Pipelined one-shots in the core, over the fake driver (with `pipelining`) and the fake clock:
 * where a one-shot is placed, the depth bound, the reset queued behind each, waiting acquires kept
 * first, recycling, bounded one-shots, and connections lost under a pipeline.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { PoolOptions } from "../../src/core/options.ts";
import { flush } from "../support/fake_clock.ts";
import { checkInvariants, fakePool, type Harness, settle } from "../support/core_pool.ts";

/** A ready pool whose fake connections pipeline. */
async function pipelinedPool(options: PoolOptions): Promise<Harness> {
  const h = fakePool(options);
  h.driver.pipelining = true;
  await h.pool.init();
  return h;
}

describe("Pool pipelined one-shots", () => {
  it("Pool.fetchVal() queues one-shots on a connection running one-shots, up to pipelineDepth, each with a reset behind it", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 3 });
    h.driver.query.fallback = "slow";
    const calls = [1, 2, 3, 4, 5].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await flush();
    const con = h.driver.connections[0]!;
    assert.equal(con.inFlight, 3, "three on the wire");
    assert.equal(h.pool.getWaitingCount(), 2, "the rest wait in line");
    assert.equal(con.behindResets, 3, "a reset queued behind each");
    await h.clock.tick(100);
    await flush();
    assert.equal(con.inFlight, 2, "the waiting two took the freed places");
    await h.clock.tick(100);
    assert.deepEqual(await Promise.all(calls), [1, 2, 3, 4, 5]);
    assert.equal(con.maxInFlight, 3);
    assert.equal(con.behindResets, 5);
    assert.equal(h.driver.connects, 1);
    assert.equal(h.pool.getIdleSize(), 1);
    assert.equal(checkInvariants(h), undefined);
    assert.equal(h.pool.stats().acquireCount, 5);
  });

  it("Pool.fetchVal() takes an idle connection first and opens new ones below maxSize before pipelining", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 2, pipelineDepth: 4 });
    h.driver.query.fallback = "slow";
    const calls = [1, 2, 3].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await flush();
    assert.equal(h.driver.connects, 2, "the second one-shot opened a connection of its own");
    await h.clock.tick(300);
    assert.deepEqual(await Promise.all(calls), [1, 2, 3]);
    assert.equal(h.pool.getSize(), 2);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.fetchVal() runs one at a time per connection with pipelineDepth 1, a reset hook, a setup hook or a driver that cannot pipeline", async () => {
    for (
      const [options, pipelining] of [
        [{ pipelineDepth: 1 }, true],
        [{ reset: async () => {} }, true],
        [{ setup: async () => {} }, true],
        [{}, false],
      ] as [PoolOptions, boolean][]
    ) {
      const h = fakePool({ minSize: 1, maxSize: 1, ...options });
      h.driver.pipelining = pipelining;
      await h.pool.init();
      h.driver.query.fallback = "slow";
      const calls = [1, 2].map((n) => h.pool.fetchVal("SELECT $1", [n]));
      await flush();
      assert.equal(h.pool.getWaitingCount(), 1, JSON.stringify(options));
      await h.clock.tick(400);
      assert.deepEqual(await Promise.all(calls), [1, 2]);
      assert.equal(h.driver.connections[0]!.maxInFlight, 1);
      assert.equal(h.driver.connections[0]!.behindResets, 0);
      await h.pool.close();
    }
  });

  it("Pool.acquire() waiting is served before one-shots that came after it, and no one-shot runs on its checkout", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    h.driver.query.fallback = "slow";
    const before = [1, 2].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    const acquired = h.pool.acquire();
    await flush();
    const after = [3, 4].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await flush();
    const con = h.driver.connections[0]!;
    assert.equal(con.inFlight, 2, "the later one-shots do not join while the acquire waits");
    assert.equal(h.pool.getWaitingCount(), 3);
    await h.clock.tick(100);
    const proxy = await acquired;
    assert.deepEqual(await Promise.all(before), [1, 2]);
    await flush();
    assert.equal(con.inFlight, 0, "nothing runs on the checkout but its holder's statements");
    h.driver.query.fallback = "ok";
    assert.equal(await proxy.fetchVal("SELECT $1", [9]), 9);
    await h.pool.release(proxy);
    await h.clock.tick(100);
    assert.deepEqual(await Promise.all(after), [3, 4]);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.acquire() is not starved by a stream of one-shots that keeps the connection busy", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 4 });
    h.driver.query.fallback = "slow";
    let issued = 0;
    let stop = false;
    const stream = async (): Promise<void> => {
      while (!stop) {
        issued++;
        await h.pool.fetchVal("SELECT 1");
      }
    };
    const streams = [stream(), stream(), stream(), stream(), stream(), stream()];
    await flush();
    const acquired = settle(h.pool.acquire());
    let got: Awaited<typeof acquired> | undefined;
    void acquired.then((r) => got = r);
    for (let i = 0; i < 10 && got === undefined; i++) await h.clock.tick(100);
    assert.ok(got?.ok, "the acquire was served");
    const issuedAtGrant = issued;
    stop = true;
    await h.pool.release(got.value);
    for (let i = 0; i < 10; i++) await h.clock.tick(100);
    await Promise.all(streams);
    assert.ok(issuedAtGrant < 30, `served after ${issuedAtGrant} one-shots were issued`);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool one-shots: a connection past maxQueries takes no more and is closed once its one-shots finished", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8, maxQueries: 6 });
    h.driver.query.fallback = "slow";
    const calls = Array.from({ length: 8 }, (_, n) => h.pool.fetchVal("SELECT $1", [n]));
    await flush();
    const first = h.driver.connections[0]!;
    assert.equal(first.inFlight, 3, "3 statements and 3 resets reach maxQueries 6");
    for (let i = 0; i < 6; i++) await h.clock.tick(100);
    assert.deepEqual(await Promise.all(calls), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.ok(first.isClosed());
    assert.ok(h.driver.connects >= 3);
    assert.ok(h.pool.stats().closeCount.maxQueries >= 2);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.expireConnections() with one-shots in flight: they finish, later ones go to a new connection, the old one closes", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    h.driver.query.fallback = "slow";
    const early = [1, 2].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await flush();
    h.pool.expireConnections();
    const late = h.pool.fetchVal("SELECT $1", [3]);
    await flush();
    const old = h.driver.connections[0]!;
    assert.equal(old.inFlight, 2, "the expired connection takes no more");
    await h.clock.tick(100);
    assert.deepEqual(await Promise.all(early), [1, 2]);
    await h.clock.tick(100);
    assert.equal(await late, 3);
    assert.ok(old.isClosed());
    assert.equal(h.driver.connections.length, 2);
    assert.equal(h.pool.stats().closeCount.expired, 1);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool one-shots: a connection past its maxLifetime takes no more and is closed once its one-shots finished", async () => {
    const h = await pipelinedPool({
      minSize: 1,
      maxSize: 1,
      pipelineDepth: 8,
      maxLifetime: 1,
      maxLifetimeJitter: 0,
    });
    h.driver.query.fallback = "slow";
    h.driver.slowMs = 1500;
    const early = [1, 2].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await h.clock.tick(1000);
    const late = h.pool.fetchVal("SELECT $1", [3]);
    await flush();
    const old = h.driver.connections[0]!;
    assert.equal(old.inFlight, 2, "past its lifetime it takes no more");
    assert.equal(h.pool.getWaitingCount(), 1);
    await h.clock.tick(500);
    assert.deepEqual(await Promise.all(early), [1, 2]);
    await h.clock.tick(1500);
    assert.equal(await late, 3);
    assert.ok(old.isClosed());
    assert.ok(h.pool.stats().closeCount.maxLifetime >= 1);
  });

  it("Pool.fetchVal() with a timeout is queued behind others but nothing is queued behind it until its reset is answered", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    h.driver.query.push("slow", "ok");
    h.driver.reset.push("ok", "slow");
    const first = h.pool.fetchVal("SELECT $1", [1]);
    const bounded = h.pool.fetchVal("SELECT $1", [2], { timeout: 5 });
    assert.equal(await bounded, 2);
    const after = h.pool.fetchVal("SELECT $1", [3]);
    await flush();
    const con = h.driver.connections[0]!;
    assert.equal(con.inFlight, 1, "the bounded one joined behind the first and was answered");
    assert.equal(h.pool.getWaitingCount(), 1, "the next waits: the bounded one's reset is not answered yet");
    await h.clock.tick(100);
    assert.equal(await first, 1);
    assert.equal(await after, 3);
    assert.equal(con.behindResets, 3);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.fetchVal() with a timeout rejects at its deadline while its neighbours on the connection still succeed", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    h.driver.query.fallback = "slow";
    h.driver.slowMs = 300;
    const first = h.pool.fetchVal("SELECT $1", [1]);
    const bounded = settle(h.pool.fetchVal("SELECT $1", [2], { timeout: 0.1 }));
    await h.clock.tick(100);
    const r = await bounded;
    assert.equal(r.ok, false);
    assert.equal((r as { error: { code?: string } }).error.code, "QUERY_TIMEOUT");
    await h.clock.tick(300);
    assert.equal(await first, 1);
    h.driver.query.fallback = "ok";
    assert.equal(await h.pool.fetchVal("SELECT $1", [3]), 3);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool one-shots in flight on a connection that is lost each reject; the slot comes back and the next one-shot opens a new connection", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    h.driver.query.fallback = "never";
    const calls = [1, 2, 3].map((n) => settle(h.pool.fetchVal("SELECT $1", [n])));
    await flush();
    h.driver.connections[0]!.kill();
    const results = await Promise.all(calls);
    assert.ok(results.every((r) => !r.ok));
    h.driver.query.fallback = "ok";
    assert.equal(await h.pool.fetchVal("SELECT $1", [4]), 4);
    assert.equal(h.driver.connections.length, 2);
    assert.equal(h.pool.stats().closeCount.broken, 1);
    assert.equal(checkInvariants(h), undefined);
  });

  it("Pool.close() waits for pipelined one-shots; Pool.terminate() fails them and empties the pool", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    h.driver.query.fallback = "slow";
    const calls = [1, 2].map((n) => h.pool.fetchVal("SELECT $1", [n]));
    await flush();
    let closed = false;
    const closing = h.pool.close().then(() => closed = true);
    await flush();
    assert.equal(closed, false);
    await h.clock.tick(100);
    await closing;
    assert.deepEqual(await Promise.all(calls), [1, 2]);
    assert.equal(h.driver.open, 0);

    const t = await pipelinedPool({ minSize: 1, maxSize: 1, pipelineDepth: 8 });
    t.driver.query.fallback = "never";
    const doomed = [1, 2, 3].map((n) => settle(t.pool.fetchVal("SELECT $1", [n])));
    await flush();
    t.pool.terminate();
    assert.ok((await Promise.all(doomed)).every((r) => !r.ok));
    assert.equal(t.pool.getSize(), 0);
    assert.equal(t.driver.open, 0);
  });

  it("Pool.fetchVal() on a pipelining pool rejects a bad timeout with the acquire's TypeError", async () => {
    const h = await pipelinedPool({ minSize: 1, maxSize: 1 });
    await assert.rejects(h.pool.fetchVal("SELECT 1", [], { timeout: "1" as unknown as number }), TypeError);
    await assert.rejects(h.pool.fetchVal("SELECT 1", [], { timeout: 0 }), { code: "ACQUIRE_TIMEOUT" });
    assert.equal(await h.pool.fetchVal("SELECT $1", [5]), 5);
    assert.equal(checkInvariants(h), undefined);
  });
});

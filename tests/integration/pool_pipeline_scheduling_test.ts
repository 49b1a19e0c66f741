/**
 * Where pipelined one-shots go, on a real server: up to `pipelineDepth` on one connection, idle
 * connections first, never on a checked-out connection; only with a driver that pipelines, in
 * session mode, without a `setup` or `reset` hook (`reset: null` keeps it on); a waiting `acquire()`
 * is served before any one-shot issued after it, however many keep coming; a one-shot with a
 * `timeout` or `signal` takes no follower until it and its reset are over, so its cancel never
 * reaches a neighbour; a connection past `maxLifetime` takes no more one-shots.
 *
 * The pools name their driver, so the file proves the same under `PGPOOL_DRIVER=postgres`.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { PoolOptions } from "../../mod.ts";
import { Admin, createTestPool, getTestServer, rejection, type TestServer, within } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** A promise with its resolver, to wait for an event a callback reports. */
function signal<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A one-shot of a stream: its answer comes 0–3 ms after the one before it, so the answers of a
 * pipeline trickle in one by one instead of draining the connection in one read.
 */
const STAGGERED = "SELECT $1::int AS v, pg_backend_pid() AS pid FROM pg_sleep($2)";

/** The abort reason the tests use, recognisable by its class. */
class TestAbort extends Error {
  constructor() {
    super("test abort");
    this.name = "TestAbort";
  }
}

describe("Pool pipelined one-shots: scheduling on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  const fireTwoCases: { name: string; options: PoolOptions; pipelines: boolean }[] = [
    { name: "the native driver by default", options: { driver: "native" }, pipelines: true },
    { name: "reset: null", options: { driver: "native", reset: null }, pipelines: true },
    { name: "pipelineDepth: 1", options: { driver: "native", pipelineDepth: 1 }, pipelines: false },
    {
      name: "a setup hook",
      options: { driver: "native", setup: () => Promise.resolve() },
      pipelines: false,
    },
    {
      name: "a reset hook",
      options: {
        driver: "native",
        reset: async (con) => {
          await con.execute("RESET ALL");
        },
      },
      pipelines: false,
    },
    {
      name: "poolMode: transaction",
      options: { driver: "native", poolMode: "transaction" },
      pipelines: false,
    },
    { name: "the postgres.js driver", options: { driver: "postgres" }, pipelines: false },
  ];
  for (const c of fireTwoCases) {
    it(`Pool one-shots with ${c.name} ${c.pipelines ? "are" : "are not"} pipelined: two fired together on maxSize 1`, async () => {
      await using pool = await createTestPool(server.dsn, { ...c.options, minSize: 1, maxSize: 1 });
      const a = pool.fetchRow<{ pid: number }>("SELECT pg_backend_pid() AS pid, pg_sleep(0.1)");
      const b = pool.fetchRow<{ pid: number; v: number }>("SELECT pg_backend_pid() AS pid, 2 AS v");
      assert.equal(pool.getWaitingCount(), c.pipelines ? 0 : 1, "both on the wire, or the second waits");
      const [ra, rb] = await Promise.all([a, b]);
      assert.equal(rb?.v, 2);
      assert.equal(ra?.pid, rb?.pid, "one backend served both");
      assert.equal(pool.getWaitingCount(), 0);
      assert.equal(pool.getIdleSize(), 1);
    });
  }

  it("Pool one-shots on maxSize 1 go on the wire up to pipelineDepth; the rest wait and then run on the same backend", async () => {
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      pipelineDepth: 3,
    });
    const rows = Array.from(
      { length: 7 },
      (_, i) =>
        pool.fetchRow<{ v: number; pid: number }>("SELECT $1::int AS v, pg_backend_pid() AS pid", [i]),
    );
    assert.equal(pool.getWaitingCount(), 4, "three on the wire, four in line");
    const got = await Promise.all(rows);
    assert.deepEqual(got.map((r) => r?.v), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(new Set(got.map((r) => r?.pid)).size, 1);
  });

  it("Pool one-shots take idle connections first: two fired together on two idle connections run on two backends", async () => {
    await using pool = await createTestPool(server.dsn, { driver: "native", minSize: 2, maxSize: 2 });
    assert.equal(pool.getIdleSize(), 2);
    const q = "SELECT pg_backend_pid() FROM pg_sleep(0.05)";
    const pids = await Promise.all([pool.fetchVal<number>(q), pool.fetchVal<number>(q)]);
    assert.equal(new Set(pids).size, 2, `pids ${pids.join(", ")}`);
  });

  it("Pool one-shots never share a checked-out connection", async () => {
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 2,
      maxSize: 2,
      pipelineDepth: 8,
    });
    const held = await pool.acquire();
    const heldPid = await held.fetchVal<number>("SELECT pg_backend_pid()");
    try {
      const pids = Array.from(
        { length: 12 },
        () => pool.fetchVal<number>("SELECT pg_backend_pid() FROM pg_sleep(0.01)"),
      );
      assert.equal(
        pool.getWaitingCount(),
        4,
        "eight on the other connection, four in line, none on the held one",
      );
      const got = await Promise.all(pids);
      assert.equal(
        got.filter((p) => p === heldPid).length,
        0,
        "no one-shot ran on the checked-out connection",
      );
      assert.equal(new Set(got).size, 1);
      assert.equal(await held.fetchVal("SELECT 1"), 1, "the checkout is still its holder's");
    } finally {
      await pool.release(held);
    }
    // Checked out, with one-shots queued: they wait; released, they run on it.
    const only = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    try {
      const con = await only.acquire();
      const pid = await con.fetchVal<number>("SELECT pg_backend_pid()");
      const waiting = [only.fetchVal<number>("SELECT pg_backend_pid()"), only.fetchVal<number>("SELECT 2")];
      assert.equal(only.getWaitingCount(), 2);
      await only.release(con);
      const [p, two] = await Promise.all(waiting);
      assert.equal(p, pid);
      assert.equal(two, 2);
    } finally {
      await only.close({ timeout: 5 });
    }
  });

  it("Pool.acquire() waiting behind a stream of pipelined one-shots is served before any one-shot issued after it", async () => {
    const DEPTH = 8;
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      pipelineDepth: DEPTH,
    });
    let issued = 0;
    let completed = 0;
    let stop = false;
    const wrong: string[] = [];
    /** Issue index at the acquire() call; undefined before it. */
    let acquireAt: number | undefined;
    let granted = false;
    /** One-shots issued after the acquire() call that completed before it was granted. */
    const overtook: number[] = [];
    const pids = new Set<number>();
    const warm = signal();
    const again = signal();
    let againAt = Infinity;
    const chain = async (): Promise<void> => {
      while (!stop) {
        const n = issued++;
        const row = await pool.fetchRow<{ v: number; pid: number }>(
          STAGGERED,
          [n, (n % 4) / 1000],
        );
        if (row?.v !== n) wrong.push(`one-shot ${n} got ${row?.v}`);
        if (row) pids.add(row.pid);
        if (acquireAt !== undefined && !granted && n >= acquireAt) overtook.push(n);
        completed++;
        if (completed === 200) warm.resolve();
        if (completed === againAt) again.resolve();
      }
    };
    const chains = Array.from({ length: DEPTH }, chain); // keeps DEPTH one-shots in flight
    for (const c of chains) c.catch(() => {}); // awaited below; a failing test closes the pool under them
    let issuedBeforeGrant = Infinity;
    let heldPid: number | null | undefined;
    try {
      await within(10_000, warm.promise, "200 one-shots");
      assert.equal(pool.getWaitingCount(), 0, "the stream is pipelined on the one connection");
      acquireAt = issued;
      const con = await within(5_000, pool.acquire(), "the acquire behind the stream");
      granted = true;
      issuedBeforeGrant = issued - acquireAt;
      const completedAtGrant = completed;
      try {
        heldPid = await con.fetchVal<number>("SELECT pg_backend_pid()");
        assert.equal(await con.fetchVal("SELECT $1::int", [42]), 42);
        assert.equal(
          completed,
          completedAtGrant,
          "no one-shot completed while the connection was checked out",
        );
        assert.ok(pool.getWaitingCount() > 0, "the stream waits in line meanwhile");
      } finally {
        await pool.release(con);
      }
      againAt = completed + 200;
      await within(10_000, again.promise, "the stream after the release");
      stop = true;
      await within(10_000, Promise.all(chains), "the stream's end");
    } finally {
      stop = true;
    }
    assert.deepEqual(wrong, [], "every one-shot got its own value");
    assert.deepEqual(overtook, [], "no one-shot issued after the acquire() completed before it was granted");
    assert.ok(
      issuedBeforeGrant <= DEPTH,
      `the acquire was granted once the ${DEPTH} in flight drained (${issuedBeforeGrant} issued meanwhile)`,
    );
    assert.deepEqual([...pids], [heldPid], "one backend served the stream and the checkout");
    assert.equal(pool.getWaitingCount(), 0);
  });

  it("Pool one-shot with a timeout behind an unbounded one: it times out alone, its neighbour is not cancelled, and no one-shot is queued behind it", async () => {
    await using pool = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    const slow = pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.3)", [1]);
    const bounded = pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.3)", [2], { timeout: 0.05 });
    const later = pool.fetchRow<{ v: number; pid: number }>("SELECT $1::int AS v, pg_backend_pid() AS pid", [
      3,
    ]);
    assert.equal(
      pool.getWaitingCount(),
      1,
      "the bounded one is on the wire behind the slow one; the later one waits",
    );
    const error = await rejection(bounded);
    assert.equal(error.code, "QUERY_TIMEOUT");
    assert.equal(await slow, 1, "the unbounded one-shot ahead finished: the cancel did not reach it");
    assert.deepEqual(await later, { v: 3, pid }, "the later one-shot ran afterwards on the same connection");
    assert.equal(await pool.fetchVal("SELECT $1::int", [4]), 4);
    assert.equal(pool.getSize(), 1);
  });

  it("Pool one-shot with a signal aborted behind an unbounded one: it rejects with the reason, its neighbours succeed", async () => {
    await using pool = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    const ac = new AbortController();
    const slow = pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.2)", [1]);
    const bounded = pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.3)", [2], { signal: ac.signal });
    const later = pool.fetchVal<number>("SELECT $1::int", [3]);
    assert.equal(pool.getWaitingCount(), 1);
    ac.abort(new TestAbort());
    assert.ok((await rejection(bounded)) instanceof TestAbort);
    assert.equal(await slow, 1);
    assert.equal(await later, 3);
    assert.equal(await pool.fetchVal("SELECT $1::int", [4]), 4);
  });

  it("Pool one-shot with a generous timeout succeeds and holds back its followers until its reset is answered", async () => {
    await using pool = await createTestPool(server.dsn, { driver: "native", minSize: 1, maxSize: 1 });
    // txid_current() numbers the statements in the order the server ran them.
    const q = "SELECT $1::int AS v, txid_current()::text AS x";
    type Row = { v: number; x: string };
    const a = pool.fetchRow<Row>(`${q} FROM pg_sleep(0.05)`, [1]);
    const b = pool.fetchRow<Row>(q, [2], { timeout: 5 });
    const c = pool.fetchRow<Row>(q, [3]);
    const d = pool.fetchRow<Row>(q, [4]);
    assert.equal(pool.getWaitingCount(), 2, "c and d wait behind the bounded b");
    const rows = await Promise.all([a, b, c, d]);
    assert.deepEqual(rows.map((r) => r?.v), [1, 2, 3, 4]);
    const xids = rows.map((r) => BigInt(r!.x));
    assert.deepEqual(
      [...xids].sort((p, q) => (p < q ? -1 : 1)),
      xids,
      "the server ran them in the order issued",
    );
  });

  it("Pool one-shots streaming on a connection past maxLifetime: it takes no more, drains and closes; the stream moves to a new backend", async () => {
    const app = `pipe-life-${process.pid}`;
    await using pool = await createTestPool(server.dsn, {
      driver: "native",
      minSize: 1,
      maxSize: 1,
      maxLifetime: 0.3,
      maxLifetimeJitter: 0,
      applicationName: app,
    });
    const first = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    let issued = 0;
    let stop = false;
    /** Issue index from which on no one-shot may run on the first backend. */
    let cutoff = Infinity;
    const late: number[] = [];
    const wrong: string[] = [];
    const moved = signal();
    let target = Infinity;
    const reached = signal();
    const chain = async (): Promise<void> => {
      while (!stop) {
        const n = issued++;
        if (n === target) reached.resolve();
        const row = await pool.fetchRow<{ v: number; pid: number }>(
          STAGGERED,
          [n, (n % 4) / 1000],
        );
        if (row?.v !== n) wrong.push(`one-shot ${n} got ${row?.v}`);
        if (row?.pid === first && n >= cutoff) late.push(n);
        if (row && row.pid !== first && cutoff === Infinity) {
          cutoff = issued; // everything issued from now on comes after a successor served
          moved.resolve();
        }
      }
    };
    const chains = Array.from({ length: 8 }, chain);
    for (const c of chains) c.catch(() => {}); // awaited below; a failing test closes the pool under them
    try {
      await within(5_000, moved.promise, "a one-shot on the successor of the expired connection");
      target = issued + 100;
      await within(5_000, reached.promise, "100 more one-shots");
    } finally {
      stop = true;
    }
    await within(5_000, Promise.all(chains), "the stream's end");
    assert.deepEqual(wrong, []);
    assert.deepEqual(late, [], "the connection past maxLifetime took no more one-shots");
    await admin.waitGone(first!);
  });
});

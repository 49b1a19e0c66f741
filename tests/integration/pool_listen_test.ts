/**
 * `pool.listen()` against a real PostgreSQL, on the driver PGPOOL_DRIVER picks:
 * notifications arrive with payload and channel on the pool's one dedicated
 * connection (outside `maxSize`); unlisten stops delivery; after
 * `pg_terminate_backend` of that connection and after a server restart the
 * pool re-LISTENs, calls `onListenGap`, and no notification sent after that is
 * lost.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ListenGap, Pool } from "../../mod.ts";
import { postgresAvailable, startPostgres } from "../support/pg_server.ts";
import { skipTest } from "../support/skip.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  rejection,
  type TestServer,
  waitFor,
  within,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;
let channelNo = 0;

/** A channel name no other test (or concurrent run) uses. */
function freshChannel(): string {
  return `pgpool_listen_${Date.now().toString(36)}_${channelNo++}`;
}

/** Collects notifications; `next()` waits (bounded) for the next one. */
class Inbox {
  readonly got: string[] = [];
  #waiters: (() => void)[] = [];
  readonly callback = (payload: string, channel: string): void => {
    this.got.push(`${channel}:${payload}`);
    for (const w of this.#waiters.splice(0)) w();
  };
  /** Waits until `count` notifications arrived. */
  async until(count: number, ms = 5000): Promise<string[]> {
    while (this.got.length < count) {
      await within(ms, new Promise<void>((resolve) => this.#waiters.push(resolve)), `notification ${count}`);
    }
    return this.got;
  }
}

/** A unique `applicationName` for one test's pool, so the admin can find its sessions. */
function freshApp(): string {
  return `pgpool_listen_test_${Date.now().toString(36)}_${channelNo++}`;
}

/**
 * The backend pids of the pool's listen connections: the sessions of `app` whose
 * last statement was a LISTEN or UNLISTEN (the pool's own connections never run one).
 */
async function listenerPids(adminOf: Admin, app: string): Promise<number[]> {
  return await adminOf.value<number[]>(
    "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE application_name = $1 AND query ~* '^\\s*(UN)?LISTEN'",
    [app],
  );
}

/** The backend pid of the pool's one listen connection (waits for it to show). */
async function listenerPid(adminOf: Admin, app: string): Promise<number> {
  const pids: number[] = await waitFor(`the listen connection of ${app}`, async () => {
    const found = await listenerPids(adminOf, app);
    return found.length > 0 ? found : false;
  }) || [];
  assert.equal(pids.length, 1, `one listen connection, got ${pids}`);
  return pids[0]!;
}

/** Sends a numbered series of notifications on `channel` through `pool` until stopped; failed sends are not counted. */
function numberedSender(pool: Pool, channel: string): {
  sent: { n: number; startedAt: number }[];
  next: () => number;
  stop: () => Promise<void>;
} {
  const sent: { n: number; startedAt: number }[] = [];
  let n = 0;
  let running = true;
  let tick = 0;
  const loop = (async () => {
    while (running) {
      const mine = ++n;
      const startedAt = ++tick;
      try {
        await pool.execute("SELECT pg_notify($1, $2)", [channel, String(mine)], { timeout: 2 });
        sent.push({ n: mine, startedAt });
      } catch {
        // the server is away: this number was not sent; the next one tries again
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  return {
    sent,
    next: () => tick + 1,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/**
 * Runs an outage of the listen connection while a numbered series is being
 * sent; checks the gap callback came and every notification whose send started
 * after it arrived.
 */
async function survivesOutage(
  pool: Pool,
  channel: string,
  gaps: ListenGap[],
  inbox: Inbox,
  outage: () => Promise<void>,
): Promise<void> {
  const sender = numberedSender(pool, channel);
  try {
    await waitFor("notifications before the outage", () => inbox.got.length >= 5, 5000);
    const gapsBefore = gaps.length;
    await outage();
    await waitFor("the gap callback", () => gaps.length > gapsBefore, 20_000);
    const firstAfterGap = sender.next();
    await waitFor(
      "50 notifications sent after the gap",
      () => sender.sent.filter((s) => s.startedAt >= firstAfterGap).length >= 50,
      10_000,
    );
    await sender.stop();
    const mustArrive = sender.sent.filter((s) => s.startedAt >= firstAfterGap).map((s) =>
      `${channel}:${s.n}`
    );
    await waitFor(
      "every notification sent after the gap",
      () => mustArrive.every((m) => inbox.got.includes(m)),
      5000,
    )
      .catch(() => {
        const missing = mustArrive.filter((m) => !inbox.got.includes(m));
        assert.fail(
          `${missing.length} notification(s) sent after the gap are missing: ${missing.slice(0, 10)}`,
        );
      });
  } finally {
    await sender.stop();
  }
}

describe("Pool.listen() on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool.listen() delivers a notification's payload and channel", async () => {
    await using pool = await createTestPool(server.dsn, { maxSize: 2 });
    const channel = freshChannel();
    const inbox = new Inbox();
    const unlisten = await within(5000, pool.listen(channel, inbox.callback));
    await pool.execute("SELECT pg_notify($1, $2)", [channel, "hello, world"]);
    await pool.execute(`NOTIFY "${channel}", 'it''s quoted'`);
    assert.deepEqual(await inbox.until(2), [`${channel}:hello, world`, `${channel}:it's quoted`]);
    await unlisten();
  });

  it("Pool.listen() keeps two callbacks on each of two channels on one connection", async () => {
    const app = freshApp();
    await using pool = await createTestPool(server.dsn, { maxSize: 2, applicationName: app });
    const [a, b] = [freshChannel(), freshChannel()];
    const [a1, a2, b1, b2] = [new Inbox(), new Inbox(), new Inbox(), new Inbox()];
    const unlistens = await Promise.all([
      pool.listen(a, a1.callback),
      pool.listen(a, a2.callback),
      pool.listen(b, b1.callback),
      pool.listen(b, b2.callback),
    ]);
    await listenerPid(admin, app); // exactly one dedicated connection for every channel
    await pool.execute("SELECT pg_notify($1, 'to a'), pg_notify($2, 'to b')", [a, b]);
    assert.deepEqual(await a1.until(1), [`${a}:to a`]);
    assert.deepEqual(await a2.until(1), [`${a}:to a`]);
    assert.deepEqual(await b1.until(1), [`${b}:to b`]);
    assert.deepEqual(await b2.until(1), [`${b}:to b`]);
    for (const u of unlistens) await u();
  });

  it("Pool.listen()'s unlisten stops delivery to that callback; the last one UNLISTENs and closes the connection", async () => {
    const app = freshApp();
    await using pool = await createTestPool(server.dsn, { maxSize: 2, applicationName: app });
    const [a, sentinel] = [freshChannel(), freshChannel()];
    const [kept, dropped, marks] = [new Inbox(), new Inbox(), new Inbox()];
    const unlistenKept = await pool.listen(a, kept.callback);
    const unlistenDropped = await pool.listen(a, dropped.callback);
    const unlistenMarks = await pool.listen(sentinel, marks.callback);
    const pid = await listenerPid(admin, app);
    await unlistenDropped();
    await unlistenDropped(); // a second call is a no-op
    // Notifications of one transaction arrive in order: once the sentinel is here, the first would be too.
    await pool.execute("SELECT pg_notify($1, '1'), pg_notify($2, 'mark 1')", [a, sentinel]);
    await marks.until(1);
    assert.deepEqual(kept.got, [`${a}:1`]);
    assert.deepEqual(dropped.got, []);
    await unlistenKept(); // the last callback of `a`: UNLISTEN
    await pool.execute("SELECT pg_notify($1, '2'), pg_notify($2, 'mark 2')", [a, sentinel]);
    await marks.until(2);
    assert.deepEqual(kept.got, [`${a}:1`]);
    assert.equal(await admin.backendAlive(pid), true, "the connection stays while a channel is listened");
    await unlistenMarks(); // no channel left: the dedicated connection closes
    await admin.waitGone(pid);
  });

  it("Pool.listen()'s connection is outside maxSize and not counted by getSize() or stats()", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 0, maxSize: 1 });
    const channel = freshChannel();
    const inbox = new Inbox();
    const held = await pool.acquire(); // the pool's only connection is checked out
    try {
      const unlisten = await within(
        5000,
        pool.listen(channel, inbox.callback),
        "listen() with the pool exhausted",
      );
      assert.equal(pool.getSize(), 1);
      const stats = pool.stats();
      assert.equal(stats.size, 1);
      assert.equal(stats.busy, 1);
      assert.equal(stats.connectCount, 1, "the listen connection is not one of the pool's connects");
      assert.equal(stats.maxSize, 1);
      await held.execute("SELECT pg_notify($1, 'from the checkout')", [channel]);
      assert.deepEqual(await inbox.until(1), [`${channel}:from the checkout`]);
      await unlisten();
    } finally {
      await pool.release(held);
    }
    assert.equal(pool.getSize(), 1);
    assert.equal(pool.getIdleSize(), 1);
  });

  it("Pool.listen() rejects with INVALID_ARGUMENT for an empty or too long channel and POOL_CLOSED after close()", async () => {
    const app = freshApp();
    const pool = await createTestPool(server.dsn, { maxSize: 1, applicationName: app });
    assert.equal((await rejection(pool.listen("", () => {}))).code, "INVALID_ARGUMENT");
    assert.equal((await rejection(pool.listen("x".repeat(64), () => {}))).code, "INVALID_ARGUMENT");
    const channel = freshChannel();
    const unlisten = await pool.listen(channel, () => {});
    const pid = await listenerPid(admin, app);
    await within(5000, pool.close(), "close()");
    await admin.waitGone(pid);
    assert.equal((await rejection(pool.listen(channel, () => {}))).code, "POOL_CLOSED");
    await unlisten(); // after close: nothing to do
  });

  it("Pool.listen() in transaction pool mode rejects with UNSUPPORTED, like addListener", async () => {
    await using pool = await createTestPool(server.dsn, { maxSize: 1, poolMode: "transaction" });
    const err = await rejection(pool.listen(freshChannel(), () => {}));
    assert.equal(err.code, "UNSUPPORTED");
    const con = await pool.acquire();
    try {
      assert.equal((await rejection(con.addListener("x", () => {}))).code, err.code);
    } finally {
      await pool.release(con);
    }
    assert.equal(pool.stats().connectCount, 1, "listen() opened no connection");
  });

  it("Pool.listen() after pg_terminate_backend of its connection calls onListenGap and loses no later notification", async () => {
    const gaps: ListenGap[] = [];
    const app = freshApp();
    await using pool = await createTestPool(server.dsn, {
      maxSize: 2,
      applicationName: app,
      onListenGap: (gap) => gaps.push(gap),
    });
    const channel = freshChannel();
    const inbox = new Inbox();
    const unlisten = await pool.listen(channel, inbox.callback);
    const pid = await listenerPid(admin, app);
    await survivesOutage(pool, channel, gaps, inbox, async () => {
      assert.equal(await admin.kill(pid), true);
    });
    assert.equal(gaps.length, 1);
    assert.deepEqual(gaps[0]!.channels, [channel]);
    assert.ok(gaps[0]!.downtime >= 0 && gaps[0]!.downtime < 10, `downtime ${gaps[0]!.downtime}`);
    assert.ok(gaps[0]!.attempts >= 1);
    const now = await listenerPid(admin, app);
    assert.notEqual(now, pid, "a new connection");
    assert.equal(pool.getSize() <= 2, true);
    await unlisten();
  });

  it(
    "Pool.listen() across a server restart calls onListenGap and loses no notification sent after it",
    { timeout: 60_000 },
    async (t) => {
      if (!postgresAvailable()) return skipTest(t, "no PostgreSQL binaries");
      await using pg = await startPostgres();
      const gaps: ListenGap[] = [];
      await using pool = await createTestPool(pg.dsn, {
        maxSize: 2,
        connectTimeout: 2,
        onWarning: () => {},
        onListenGap: (gap) => gaps.push(gap),
      });
      const channel = freshChannel();
      const inbox = new Inbox();
      const unlisten = await pool.listen(channel, inbox.callback);
      await survivesOutage(pool, channel, gaps, inbox, () => pg.restart());
      assert.equal(gaps.length, 1);
      assert.deepEqual(gaps[0]!.channels, [channel]);
      assert.ok(gaps[0]!.error !== undefined, "the loss has a reason");
      await unlisten();
    },
  );
});

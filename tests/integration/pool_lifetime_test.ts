/**
 * How long pooled connections live, against a real PostgreSQL: the idle
 * lifetime, maxQueries recycling, expireConnections() and setConnectArgs().
 * Ported in spirit from asyncpg's tests/test_pool.py (tests 20, 25–29, 38,
 * 39). Lifetimes are short (0.1–0.6 s) and waits poll observable state.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {} from "../../mod.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  sleep,
  type TestServer,
  waitFor,
  within,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** Backend pids of the sessions with this application_name. */
async function pidsNamed(name: string): Promise<number[]> {
  const list = await admin.value<string | null>(
    "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE application_name = $1",
    [name],
  );
  return list === null ? [] : list.split(",").map(Number);
}

describe("Pool connection lifetimes on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("the idle lifetime does not run while a connection is checked out, and reuse re-arms it", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      // A lifetime a loaded machine cannot outlast between two back-to-back calls, and a query
      // longer than it.
      maxInactiveConnectionLifetime: 1,
    });
    const first = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    for (let i = 0; i < 2; i++) {
      // a query longer than the lifetime: the connection is checked out meanwhile
      assert.equal(await pool.fetchVal("SELECT pg_backend_pid() FROM pg_sleep(1.3)"), first);
      assert.equal(await pool.execute("SELECT 1::int"), "SELECT 1");
      assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), first, "back-to-back reuse kept it");
    }
  });

  it("an idle connection is closed once the idle lifetime passes, and the next acquire opens a new one", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      maxInactiveConnectionLifetime: 0.2,
    });
    const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    const releasedAt = Date.now();
    assert.equal(pool.getSize(), 1);
    await waitFor("the idle connection to expire", () => pool.getSize() === 0, 3000);
    assert.ok(Date.now() - releasedAt >= 150, "it lived about its idle lifetime first");
    await admin.waitGone(pid!);
    const next = await pool.fetchVal<number>("SELECT pg_backend_pid()");
    assert.notEqual(next, pid);
  });

  it("the idle clock starts at release, not at acquire", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      maxInactiveConnectionLifetime: 1,
    });
    const pid = await pool.fetchVal<number>("SELECT pg_backend_pid() FROM pg_sleep(0.6)");
    await sleep(500); // 1.1 s since the acquire, 0.5 s idle: below the lifetime
    assert.equal(pool.getSize(), 1);
    assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid);
  });

  it("idle connections above minSize expire; the minSize floor stays open, kept rather than reopened", async () => {
    const name = "lifetime above the floor";
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 3,
      maxInactiveConnectionLifetime: 0.2,
      applicationName: name,
    });
    // Three checkouts at once that outlast the idle lifetime: the one init() opened and two more.
    const all = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    const opened = await pidsNamed(name);
    assert.equal(opened.length, 3);
    await Promise.all(all.map((con) => con.execute("SELECT pg_sleep(0.3)")));
    for (const con of all) await pool.release(con);
    await waitFor("two connections to expire", () => pool.getSize() === 1, 3000);
    const left = await waitFor("two backends to exit", async () => {
      const now = await pidsNamed(name);
      return now.length === 1 ? now : undefined;
    }, 3000);
    assert.ok(opened.includes(left![0]!), "the floor's connection is one of the three, not a new one");
    assert.equal(pool.stats().closeCount.idle, 2);
    assert.equal(pool.stats().connectCount, 3);
  });

  it("maxInactiveConnectionLifetime 0 keeps idle connections open", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      maxInactiveConnectionLifetime: 0,
    });
    const pid = await pool.fetchVal("SELECT pg_backend_pid()");
    await sleep(300);
    assert.equal(await pool.fetchVal("SELECT pg_backend_pid()"), pid);
  });

  it("idle expiry racing with a busy workload causes no errors", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 5,
      maxSize: 15,
      maxInactiveConnectionLifetime: 0.1,
    });
    const until = Date.now() + 1500;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (Date.now() < until) {
        await sleep(Math.random() * 50 + 50);
        await using con = await pool.acquire({ timeout: 5 });
        if (Math.random() < 0.5) await con.execute(`SELECT pg_sleep(${(Math.random() / 20).toFixed(3)})`);
        assert.equal(await con.fetchVal("SELECT 42::int"), 42);
        done++;
      }
    };
    await within(8000, Promise.all(Array.from({ length: 20 }, worker)), "the workload");
    assert.ok(done >= 20, `only ${done} iterations ran`);
    assert.ok(pool.getSize() <= 15);
  });

  it("maxQueries 1 closes each connection at release; a large maxQueries keeps it", async () => {
    {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, maxQueries: 1 });
      const pids = new Set<number>();
      for (let i = 0; i < 4; i++) pids.add((await pool.fetchVal<number>("SELECT pg_backend_pid()"))!);
      assert.equal(pids.size, 4);
      for (const pid of pids) await admin.waitGone(pid);
    }
    {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, maxQueries: 1000 });
      const pids = new Set<number>();
      for (let i = 0; i < 4; i++) pids.add((await pool.fetchVal<number>("SELECT pg_backend_pid()"))!);
      assert.equal(pids.size, 1);
    }
  });

  it("a waiter is served when the only connection is closed at release by maxQueries (no deadlock)", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, maxQueries: 1 });
    let holderPid = 0;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const background = (async () => {
      await using con = await pool.acquire();
      holderPid = con.getServerPid();
      const sleeping = con.execute("SELECT pg_sleep(0.3)");
      started();
      await sleeping;
    })();
    await running;
    const pid = await within(
      3000,
      (async () => {
        await using con = await pool.acquire();
        return await con.fetchVal<number>("SELECT pg_backend_pid()");
      })(),
      "the waiting acquire",
    );
    await background;
    assert.notEqual(pid, holderPid, "the waiter got a fresh connection");
  });

  it("expireConnections() closes a checked-out connection at its release", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    try {
      pool.expireConnections();
      assert.equal(await con.fetchVal("SELECT 1"), 1, "the checkout keeps working until released");
    } finally {
      await pool.release(con);
    }
    assert.equal(pool.getSize(), 0, "closed at release instead of being reset and kept");
    await admin.waitGone(pid);
    await using next = await pool.acquire({ timeout: 1 });
    assert.notEqual(next.getServerPid(), pid);
  });

  it("expireConnections() replaces idle connections at their next acquire", async () => {
    const name = "lifetime expire idle";
    await using pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2, applicationName: name });
    const old = await pidsNamed(name);
    assert.equal(old.length, 2);
    pool.expireConnections();
    await using a = await pool.acquire({ timeout: 1 });
    await using b = await pool.acquire({ timeout: 1 });
    assert.ok(!old.includes(a.getServerPid()) && !old.includes(b.getServerPid()), "both were replaced");
    for (const pid of old) await admin.waitGone(pid);
  });

  it("setConnectArgs() + expireConnections() give new connections the new settings (application_name)", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    // Expired while checked out: closed at release, replaced at the next acquire.
    let con = await pool.acquire();
    pool.setConnectArgs(server.dsn, { applicationName: "set_conn_args_test" });
    pool.expireConnections();
    await pool.release(con);
    con = await pool.acquire();
    assert.equal(await con.fetchVal("SHOW application_name"), "set_conn_args_test");
    assert.equal(
      await admin.value("SELECT application_name FROM pg_stat_activity WHERE pid = $1", [con.getServerPid()]),
      "set_conn_args_test",
    );
    await pool.release(con);
    // Expired while idle: replaced at the next acquire.
    pool.setConnectArgs(undefined, { dsn: server.dsn, applicationName: "set_conn_args_test_2" });
    pool.expireConnections();
    con = await pool.acquire();
    assert.equal(await con.fetchVal("SHOW application_name"), "set_conn_args_test_2");
    await pool.release(con);
  });

  it("setConnectArgs() alone affects new connections only", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 2,
      applicationName: "before",
    });
    pool.setConnectArgs(server.dsn, { applicationName: "after" });
    await using a = await pool.acquire();
    await using b = await pool.acquire();
    const names = [await a.fetchVal("SHOW application_name"), await b.fetchVal("SHOW application_name")];
    assert.deepEqual(
      names,
      ["before", "after"],
      "the idle one kept its settings; the new one got the new ones",
    );
  });
});

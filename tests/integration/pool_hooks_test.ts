/**
 * The pool's hooks (connect, init, setup, reset) against a real PostgreSQL:
 * call counts and arguments, and what a failing hook leaves behind. Ported in
 * spirit from asyncpg's tests/test_pool.py (tests 6, 7, 15) and section 3.4 of
 * the behaviour spec.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  Connection,
  type ConnectOptions,
  createPool,
  InterfaceError,
  PoolConnection,
  PoolTimeoutError,
} from "../../mod.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  hook,
  rejection,
  type TestServer,
  warningLog,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

class HookError extends Error {
  override name = "HookError";
}

describe("Pool hooks on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("setup receives the very object acquire() resolves to", async () => {
    let seen: PoolConnection | undefined;
    await using pool = await createTestPool(server.dsn, {
      minSize: 5,
      maxSize: 5,
      setup: hook((con) => {
        seen = con;
      }),
    });
    await using con = await pool.acquire();
    assert.equal(seen, con);
  });

  it("10 concurrent users on minSize 2 / maxSize 5 make 5 connects, 5 inits, 10 setups and 10 resets", async () => {
    let connects = 0;
    let setups = 0;
    let resets = 0;
    const initialized = new Set<number>(); // backend pids init has seen
    const users = new Set<number>();
    const log = warningLog();
    const pool = await createPool(server.dsn, {
      minSize: 2,
      maxSize: 5,
      onWarning: log.onWarning,
      connect: async (options: ConnectOptions) => {
        connects++;
        return await connect(options);
      },
      init: async (con) => {
        assert.ok(
          con instanceof Connection && !(con instanceof PoolConnection),
          "init gets the raw Connection",
        );
        const pid = con.getServerPid();
        if (initialized.has(pid)) throw new HookError("init ran twice for one connection");
        initialized.add(pid);
        await con.execute("SET application_name = 'initialized'");
      },
      setup: hook((con) => {
        assert.ok(con instanceof PoolConnection, "setup gets the proxy");
        if (!initialized.has(con.getServerPid())) throw new HookError("setup ran before init");
        setups++;
      }),
      reset: hook((con) => {
        assert.ok(
          con instanceof Connection && !(con instanceof PoolConnection),
          "reset gets the raw Connection",
        );
        resets++;
      }),
    });
    try {
      assert.equal(connects, 2, "createPool() opened minSize connections");
      await Promise.all(Array.from({ length: 10 }, async () => {
        await using con = await pool.acquire({ timeout: 5 });
        const pid = con.getServerPid();
        if (!initialized.has(pid)) throw new HookError("a user got a connection init never saw");
        users.add(pid);
        assert.equal(await con.fetchVal("SHOW application_name"), "initialized");
      }));
    } finally {
      await pool.close();
    }
    assert.equal(initialized.size, 5);
    assert.equal(users.size, 5, "all five connections were used");
    assert.equal(connects, 5);
    assert.equal(setups, 10);
    assert.equal(resets, 10);
    assert.deepEqual(log.codes(), []);
  });

  it("a connect hook that returns something other than a Connection fails with BAD_CONNECT_RESULT", async () => {
    const err = await rejection(createPool(server.dsn, {
      minSize: 1,
      connect: (() => Promise.resolve(1)) as unknown as (o: ConnectOptions) => Promise<Connection>,
    }));
    assert.ok(err instanceof InterfaceError);
    assert.equal(err.code, "BAD_CONNECT_RESULT");
  });

  it("the connect hook gets the pool's connect options, DSN included", async () => {
    const seen: ConnectOptions[] = [];
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      applicationName: "hooked",
      connect: (options) => {
        seen.push(options);
        return connect(options);
      },
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.dsn, server.dsn);
    assert.equal(seen[0]!.applicationName, "hooked");
    assert.equal(await pool.fetchVal("SHOW application_name"), "hooked");
  });

  it("a failing setup rejects acquire() with its own error; the connection is dropped and the next acquire gets a new one", async () => {
    let calls = 0;
    let failedWith: PoolConnection | undefined;
    let failedPid = 0;
    const given: PoolConnection[] = [];
    const failure = new HookError("setup failed");
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      setup: hook((con) => {
        calls++;
        if (calls === 1) {
          failedWith = con;
          failedPid = con.getServerPid();
          throw failure;
        }
        given.push(con);
      }),
    });
    assert.equal(await rejection(pool.acquire()), failure, "the hook's error propagates unchanged");
    assert.equal(pool.getSize(), 0, "the connection behind the failed setup was dropped");
    await admin.waitGone(failedPid);
    // asyncpg leaves the proxy handed to the failed setup attached to the dead
    // connection; here it is released, so it can never touch a later checkout.
    assert.throws(() => failedWith!.fetchVal("SELECT 1"), { code: "CONNECTION_RELEASED" });
    await using con = await pool.acquire({ timeout: 1 });
    assert.deepEqual(given, [con], "setup received the returned proxy");
    assert.notEqual(con.getServerPid(), failedPid);
    assert.equal(await con.fetchVal("SELECT 1"), 1);
  });

  it("releasing the stale proxy of a failed setup leaves the current checkout alone", async () => {
    // asyncpg: this releases the other user's checkout (spec section 3.4).
    let calls = 0;
    let stale: PoolConnection | undefined;
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      setup: hook((con) => {
        if (++calls === 1) {
          stale = con;
          throw new HookError("first setup fails");
        }
      }),
    });
    await assert.rejects(pool.acquire(), HookError);
    const current = await pool.acquire({ timeout: 1 });
    await pool.release(stale!);
    assert.equal(pool.getIdleSize(), 0, "the current checkout is still checked out");
    assert.equal(await current.fetchVal("SELECT 5"), 5);
    const err = await rejection(pool.acquire({ timeout: 0.05 }));
    assert.equal(err.code, "ACQUIRE_TIMEOUT", "the slot was not handed to anyone else");
    await pool.release(current);
    assert.equal(pool.getIdleSize(), 1);
  });

  it("a failing init rejects acquire() with its own error, closes that connection, and the next acquire works", async () => {
    let calls = 0;
    let failedCon: Connection | undefined;
    const inited: Connection[] = [];
    const failure = new HookError("init failed");
    await using pool = await createTestPool(server.dsn, {
      minSize: 0,
      maxSize: 1,
      init: hook((con) => {
        if (++calls === 1) {
          failedCon = con;
          throw failure;
        }
        inited.push(con);
      }),
    });
    assert.equal(await rejection(pool.acquire()), failure);
    assert.equal(failedCon!.isClosed(), true, "the connection init failed on is closed");
    assert.equal(pool.getSize(), 0);
    await using con = await pool.acquire({ timeout: 1 });
    assert.equal(await con.fetchVal("SELECT 1::int"), 1);
    assert.equal(inited.length, 1);
    assert.equal(inited[0]!.getServerPid(), con.getServerPid(), "init saw the connection behind the proxy");
  });

  it("a failing init during createPool() rejects createPool() with the hook's error", async () => {
    const failure = new HookError("no init today");
    let pid = 0;
    const err = await rejection(createPool(server.dsn, {
      minSize: 2,
      maxSize: 2,
      init: hook((con) => {
        pid = con.getServerPid();
        throw failure;
      }),
    }));
    assert.equal(err, failure);
    await admin.waitGone(pid);
  });

  it("a failing custom reset rejects release() with its error; the connection is dropped, the slot reused", async () => {
    const failure = new HookError("reset failed");
    let failNext = true;
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      reset: hook(() => {
        if (failNext) {
          failNext = false;
          throw failure;
        }
      }),
    });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    assert.equal(await rejection(pool.release(con)), failure);
    assert.equal(pool.getSize(), 0);
    await admin.waitGone(pid);
    await using next = await pool.acquire({ timeout: 1 });
    assert.notEqual(next.getServerPid(), pid);
    assert.equal(await next.fetchVal("SELECT 1"), 1);
  });

  it("a slow setup counts against the acquire timeout and its connection is dropped", async () => {
    let pid = 0;
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      setup: async (con) => {
        if (pid === 0) {
          pid = con.getServerPid();
          await con.execute("SELECT pg_sleep(1)");
        }
      },
    });
    const started = Date.now();
    const err = await rejection(pool.acquire({ timeout: 0.2 }));
    assert.ok(err instanceof PoolTimeoutError);
    assert.equal(err.code, "ACQUIRE_TIMEOUT");
    assert.ok(Date.now() - started < 900, "rejected at the deadline, not after the setup");
    assert.equal(pool.getSize(), 0, "the connection behind the timed-out setup was dropped");
    // (its backend lingers until pg_sleep ends: the server does not watch the socket meanwhile)
    await using con = await pool.acquire({ timeout: 1 });
    assert.notEqual(con.getServerPid(), pid);
  });
});

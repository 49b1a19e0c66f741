/**
 * What release leaves behind, against a real PostgreSQL: the session reset
 * (settings, advisory locks, LISTENs, held cursors, transactions), a custom
 * reset, PoolConnection.reset(), notification listeners on pooled
 * connections and use after close. Ported in spirit from section 2 and 5.5 of
 * the behaviour spec and from asyncpg's test_listeners.py,
 * test_transaction.py and test_connect.py pool/reset tests.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Connection, InterfaceError, type PoolConnection } from "../../mod.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  outsideTransaction,
  rejection,
  type TestServer,
  waitFor,
  warningLog,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

type Note = [payload: string, channel: string, pid: number];

/** A listener that records what it receives. */
function recorder(): { notes: Note[]; fn: (payload: string, channel: string, pid: number) => void } {
  const notes: Note[] = [];
  return { notes, fn: (payload, channel, pid) => notes.push([payload, channel, pid]) };
}

/** Leaves one session with a SET, an advisory lock, a LISTEN and a WITH HOLD cursor. */
async function dirty(con: PoolConnection): Promise<void> {
  await con.execute("SET work_mem = '7777kB'");
  await con.execute("SELECT pg_advisory_lock(4242)");
  await con.execute(`LISTEN "reset proof"`);
  await con.execute("BEGIN");
  await con.execute("DECLARE held_cursor CURSOR WITH HOLD FOR SELECT generate_series(1, 3)");
  await con.execute("COMMIT");
}

interface SessionState {
  workMem: unknown;
  advisoryLocks: unknown;
  channels: unknown;
  cursors: unknown;
}

async function sessionState(con: PoolConnection): Promise<SessionState> {
  return {
    workMem: await con.fetchVal("SHOW work_mem"),
    advisoryLocks: await admin.value(
      "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = $1",
      [con.getServerPid()],
    ),
    channels: await con.fetchVal("SELECT coalesce(string_agg(c, ','), '') FROM pg_listening_channels() c"),
    cursors: await con.fetchVal("SELECT coalesce(string_agg(name, ','), '') FROM pg_cursors"),
  };
}

/**
 * Proves that `con`'s session does not deliver `channel` to `old`: a NOTIFY on
 * `channel` and then on a sentinel channel are sent together; notifications
 * keep their order, so once the sentinel arrived the first one never will.
 */
async function assertNotDelivered(
  con: PoolConnection,
  channel: string,
  old: { notes: Note[] },
): Promise<void> {
  const before = old.notes.length;
  const sentinel = recorder();
  await con.addListener("sentinel", sentinel.fn);
  await admin.execute("SELECT pg_notify($1, 'late'), pg_notify('sentinel', 'x')", [channel]);
  await waitFor("the sentinel notification", () => sentinel.notes.length === 1);
  assert.equal(old.notes.length, before, `nothing on "${channel}" reached the old listener`);
  await con.removeListener("sentinel", sentinel.fn);
}

describe("Session reset on release (real server)", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("RESET ALL on release wipes a SET done in init, while a startup parameter (params) survives it", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      params: { statement_timeout: "4321" }, // sent in the startup message: the session's own default
      init: async (con) => {
        await con.execute("SET work_mem = '7777kB'"); // a session setting: the first reset wipes it
      },
    });
    const settings =
      "SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS st";
    const first = await pool.acquire();
    const pid = first.getServerPid();
    assert.deepEqual(
      await first.fetchRow(settings),
      { work_mem: "7777kB", st: "4321ms" },
      "both apply at first",
    );
    await pool.release(first);
    await using again = await pool.acquire();
    assert.equal(again.getServerPid(), pid, "the same connection");
    const startupWorkMem = await again.fetchVal("SELECT reset_val FROM pg_settings WHERE name = 'work_mem'");
    const row = await again.fetchRow<{ work_mem: string; st: string }>(settings);
    assert.notEqual(row!.work_mem, "7777kB", "the SET from init is gone after release");
    assert.equal(
      await again.fetchVal("SELECT setting FROM pg_settings WHERE name = 'work_mem'"),
      startupWorkMem,
      "work_mem is back at the server's default",
    );
    assert.equal(row!.st, "4321ms", "the startup parameter survived RESET ALL");
  });

  it("a SET, an advisory lock, a LISTEN and a WITH HOLD cursor do not survive into the next checkout", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const a = await pool.acquire();
    const pid = a.getServerPid();
    const clean = await sessionState(a);
    assert.deepEqual({ ...clean, workMem: "x" }, {
      workMem: "x",
      advisoryLocks: 0,
      channels: "",
      cursors: "",
    });
    await dirty(a);
    assert.deepEqual(await sessionState(a), {
      workMem: "7777kB",
      advisoryLocks: 1,
      channels: "reset proof",
      cursors: "held_cursor",
    }, "the session really holds all four");
    await pool.release(a);
    const b = await pool.acquire();
    try {
      assert.equal(b.getServerPid(), pid, "the same backend");
      assert.deepEqual(await sessionState(b), clean);
    } finally {
      await pool.release(b);
    }
    assert.deepEqual(log.codes(), [], "raw LISTEN/SET are not client listeners or transactions");
  });

  it("with a custom reset only the rollback and the custom effects apply", async () => {
    const log = warningLog();
    const seenByReset: unknown[] = [];
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      onWarning: log.onWarning,
      reset: async (con: Connection) => {
        seenByReset.push(await con.fetchVal("SELECT to_regclass('pg_temp.open_tx_table')"));
        await con.execute("SELECT pg_advisory_unlock_all()");
      },
    });
    const a = await pool.acquire();
    const pid = a.getServerPid();
    await dirty(a);
    await a.execute("BEGIN");
    await a.execute("CREATE TEMP TABLE open_tx_table (x int)");
    await pool.release(a);
    assert.deepEqual(log.codes(), ["RELEASED_IN_TRANSACTION"]);
    assert.deepEqual(seenByReset, [null], "the rollback ran before the custom reset");
    const b = await pool.acquire();
    try {
      assert.equal(b.getServerPid(), pid);
      assert.equal(await outsideTransaction(b), true);
      assert.deepEqual(await sessionState(b), {
        workMem: "7777kB", // no RESET ALL
        advisoryLocks: 0, // the custom effect
        channels: "reset proof", // no UNLISTEN *
        cursors: "held_cursor", // no CLOSE ALL
      });
    } finally {
      await pool.release(b);
    }
  });

  it("PoolConnection.reset() ends a manual transaction, resets the session and drops listeners", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    await using con = await pool.acquire();
    const listener = recorder();
    await con.addListener("test", listener.fn);
    await con.execute("SET work_mem = '5MB'");
    await con.execute("BEGIN");
    await con.reset();
    assert.equal(await outsideTransaction(con), true);
    assert.notEqual(await con.fetchVal("SHOW work_mem"), "5MB");
    assert.equal(await con.fetchVal("SELECT count(*)::int FROM pg_listening_channels()"), 0);
    await con.removeListener("test", listener.fn); // already gone: a silent no-op
    await assertNotDelivered(con, "test", listener);
    assert.equal(await con.transaction(async (tx) => await tx.fetchVal("SELECT 1")), 1);
    assert.deepEqual(log.codes(), []);
  });

  it("a closed connection rejects every operation with CONNECTION_CLOSED", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const proxy = await pool.acquire();
    await proxy.close();
    const raw = await connect(server.dsn);
    await raw.close();
    for (const con of [proxy, raw] as (PoolConnection | Connection)[]) {
      const attempts: [string, () => Promise<unknown>][] = [
        ["reset", () => con.reset()],
        ["addListener", () => con.addListener("c", () => {})],
        ["transaction", () => (con as Connection).transaction(async () => {})],
        ["executeMany", () => con.executeMany("SELECT $1::int", [[1]])],
        ["execute", () => con.execute("SELECT 1")],
        ["fetch", () => con.fetch("SELECT 1")],
        ["fetchVal", () => con.fetchVal("SELECT 1")],
      ];
      for (const [name, attempt] of attempts) {
        const err = await rejection(attempt());
        assert.ok(err instanceof InterfaceError, `${name} on a closed ${String(con)}`);
        assert.equal(err.code, "CONNECTION_CLOSED", name);
      }
      assert.equal(con.isClosed(), true);
    }
    await pool.release(proxy);
    assert.equal(await pool.fetchVal("SELECT 1"), 1, "the pool opened a new connection");
  });
});

describe("Notification listeners on pooled connections (real server)", () => {
  before(async () => {
    server = await getTestServer();
    admin ??= new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("listeners on one pooled connection receive its notifications; a removed one stops", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await using con = await pool.acquire();
    const pid = con.getServerPid();
    const l1 = recorder();
    const l2 = recorder();
    await con.addListener("test", l1.fn);
    await con.addListener("test", l2.fn);
    await con.execute("NOTIFY test, 'aaaa'");
    await waitFor("both listeners", () => l1.notes.length === 1 && l2.notes.length === 1);
    assert.deepEqual(l1.notes, [["aaaa", "test", pid]]);
    assert.deepEqual(l2.notes, [["aaaa", "test", pid]]);
    await con.removeListener("test", l2.fn);
    await con.execute("NOTIFY test, 'bbbb'");
    await waitFor("listener 1", () => l1.notes.length === 2);
    assert.deepEqual(l1.notes[1], ["bbbb", "test", pid]);
    assert.equal(l2.notes.length, 1, "the removed listener got nothing");
    await con.removeListener("test", l1.fn);
    assert.equal(await con.fetchVal("SELECT count(*)::int FROM pg_listening_channels()"), 0);
  });

  it("addListener on a pooled connection receives NOTIFY from other connections", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2, onWarning: log.onWarning });
    await using con1 = await pool.acquire();
    await using con2 = await pool.acquire();
    const got = recorder();
    await con1.addListener("ipc", got.fn);
    await con2.execute("NOTIFY ipc, 'hello'");
    await waitFor("the notification from con2", () => got.notes.length === 1);
    assert.deepEqual(got.notes[0], ["hello", "ipc", con2.getServerPid()]);
    const adminPid = await admin.value<number>("SELECT pg_backend_pid()");
    await admin.execute("SELECT pg_notify('ipc', 'from outside')");
    await waitFor("the notification from a standalone connection", () => got.notes.length === 2);
    assert.deepEqual(got.notes[1], ["from outside", "ipc", adminPid]);
    await con1.removeListener("ipc", got.fn);
    assert.deepEqual(log.codes(), []);
  });

  it("a channel name with quotes and symbols is quoted properly", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 2, maxSize: 2, onWarning: log.onWarning });
    await using con1 = await pool.acquire();
    await using con2 = await pool.acquire();
    const got = recorder();
    const channel = `12+"34 ü`;
    await con1.addListener(channel, got.fn);
    assert.equal(await con1.fetchVal("SELECT string_agg(c, ',') FROM pg_listening_channels() c"), channel);
    await con2.execute(`NOTIFY "12+""34 ü", 'hello'`);
    await waitFor("the notification", () => got.notes.length === 1);
    assert.deepEqual(got.notes[0], ["hello", channel, con2.getServerPid()]);
    await con1.removeListener(channel, got.fn);
    assert.equal(await con1.fetchVal("SELECT count(*)::int FROM pg_listening_channels()"), 0);
    assert.deepEqual(log.codes(), []);
  });

  it("releasing with listeners warns RELEASED_WITH_LISTENERS once and the next checkout is not listening", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const a = await pool.acquire();
    const pid = a.getServerPid();
    const first = recorder();
    const second = recorder();
    const third = recorder();
    await a.addListener("chan a", first.fn);
    await a.addListener("chan a", second.fn);
    await a.addListener("chan b", third.fn);
    await pool.release(a);
    assert.deepEqual(log.codes(), ["RELEASED_WITH_LISTENERS"]);
    assert.equal(log.list[0]!.connection, a);
    assert.match(log.list[0]!.message, /\b3\b/, "the message counts the listeners");
    await using b = await pool.acquire();
    assert.equal(b.getServerPid(), pid);
    assert.equal(await b.fetchVal("SELECT count(*)::int FROM pg_listening_channels()"), 0);
    await assertNotDelivered(b, "chan a", first);
    await assertNotDelivered(b, "chan b", third);
    assert.equal(second.notes.length, 0);
  });

  it("with a custom reset, listeners of a released checkout still never hear the next checkout's notifications", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      onWarning: log.onWarning,
      reset: async (con: Connection) => {
        await con.execute("SELECT 1");
      },
    });
    const a = await pool.acquire();
    const pid = a.getServerPid();
    const old = recorder();
    await a.addListener("kept", old.fn);
    await pool.release(a);
    assert.deepEqual(log.codes(), ["RELEASED_WITH_LISTENERS"]);
    await using b = await pool.acquire();
    assert.equal(b.getServerPid(), pid);
    assert.equal(
      await b.fetchVal("SELECT string_agg(c, ',') FROM pg_listening_channels() c"),
      "kept",
      "a custom reset leaves the server-side LISTEN in place",
    );
    await assertNotDelivered(b, "kept", old);
    // The next user can listen on the same channel afresh.
    const fresh = recorder();
    await b.addListener("kept", fresh.fn);
    await admin.execute("SELECT pg_notify('kept', 'for b')");
    await waitFor("the new listener", () => fresh.notes.length === 1);
    assert.equal(old.notes.length, 0);
  });
});

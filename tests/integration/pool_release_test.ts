/**
 * Releasing connections against a real PostgreSQL: foreign and repeated
 * releases, use after release, release inside a transaction, releases racing
 * with queries and cancellations, and release timeouts. Ported in spirit from
 * asyncpg's tests/test_pool.py (tests 8–11, 18, 19, 22, 33–35) and sections
 * 2 and 3.4 of the behaviour spec.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { connect, InterfaceError, type PoolConnection, PoolTimeoutError, PostgresError } from "../../mod.ts";
import {
  Admin,
  createTestPool,
  getTestServer,
  hook,
  outsideTransaction,
  rejection,
  type TestServer,
  waitFor,
  warningLog,
  within,
} from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

class UserError extends Error {
  override name = "UserError";
}

describe("Pool.release() on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool.release() rejects a raw Connection with FOREIGN_CONNECTION and does not touch it", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await using raw = await connect(server.dsn);
    const err = await rejection(pool.release(raw as unknown as PoolConnection));
    assert.ok(err instanceof InterfaceError);
    assert.equal(err.code, "FOREIGN_CONNECTION");
    assert.equal(await raw.fetchVal("SELECT 1"), 1);
    for (const junk of ["a string", {}, null, undefined, 42]) {
      const e = await rejection(pool.release(junk as unknown as PoolConnection));
      assert.equal(e.code, "FOREIGN_CONNECTION", `release(${String(junk)})`);
    }
    assert.equal(pool.getIdleSize(), 1);
  });

  it("Pool.release() rejects another pool's connection with FOREIGN_CONNECTION; its own pool still takes it", async () => {
    await using pool1 = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    await using pool2 = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool1.acquire({ timeout: 0.5 });
    try {
      const err = await rejection(pool2.release(con));
      assert.ok(err instanceof InterfaceError);
      assert.equal(err.code, "FOREIGN_CONNECTION");
      assert.equal(await con.fetchVal("SELECT 7"), 7, "the connection is undisturbed");
      assert.equal(pool2.getIdleSize(), 1);
    } finally {
      await pool1.release(con);
    }
    assert.equal(pool1.getIdleSize(), 1);
  });

  it("two concurrent release() calls of one checkout both resolve and the connection is kept", async () => {
    // asyncpg: both calls fail and the connection is terminated (spec 3.4).
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    await con.execute("SET work_mem = '5MB'");
    await Promise.all([pool.release(con), pool.release(con)]);
    assert.equal(pool.getIdleSize(), 1);
    await using again = await pool.acquire({ timeout: 0.5 });
    assert.equal(again.getServerPid(), pid);
    assert.notEqual(await again.fetchVal("SHOW work_mem"), "5MB", "the session was reset once");
    assert.deepEqual(log.codes(), []);
  });

  it("every method of a released PoolConnection throws CONNECTION_RELEASED synchronously", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    let con!: PoolConnection;
    {
      await using c = await pool.acquire();
      con = c;
      assert.ok(!String(c).includes("released"));
      assert.ok(String(c).includes(String(c.getServerPid())));
    }
    assert.match(String(con), /released/);
    assert.match(inspect(con), /released/);
    const noop = (): void => {};
    const calls: [string, () => unknown][] = [
      ["execute", () => con.execute("SELECT 1")],
      ["executeMany", () => con.executeMany("SELECT $1::int", [[1]])],
      ["fetch", () => con.fetch("SELECT 1")],
      ["fetchRow", () => con.fetchRow("SELECT 1")],
      ["fetchVal", () => con.fetchVal("SELECT 1")],
      ["fetchMany", () => con.fetchMany("SELECT $1::int", [[1]])],
      ["transaction", () => con.transaction(async () => {})],
      ["addListener", () => con.addListener("c", noop)],
      ["removeListener", () => con.removeListener("c", noop)],
      ["copyFromTable", () => con.copyFromTable("t", { output: noop })],
      ["copyFromQuery", () => con.copyFromQuery("SELECT 1", undefined, { output: noop })],
      ["copyToTable", () => con.copyToTable("t", { source: "" })],
      ["copyRecordsToTable", () => con.copyRecordsToTable("t", { records: [] })],
      ["getServerPid", () => con.getServerPid()],
      ["getServerVersion", () => con.getServerVersion()],
      ["reset", () => con.reset()],
      ["close", () => con.close()],
      ["terminate", () => con.terminate()],
      ["isClosed", () => con.isClosed()],
    ];
    for (const [name, call] of calls) {
      assert.throws(call, (e: unknown) => {
        assert.ok(e instanceof InterfaceError, `${name} throws an InterfaceError`);
        assert.equal(e.code, "CONNECTION_RELEASED");
        assert.match(e.message, new RegExp(`${name}\\(\\).*released`));
        return true;
      }, `${name}() throws at call time`);
    }
    assert.equal(pool.getIdleSize(), 1, "none of this touched the idle connection");
    await pool.release(con);
  });

  it("release inside a transaction rolls it back, warns RELEASED_IN_TRANSACTION and keeps the backend", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    const id1 = await con.fetchVal("SELECT txid_current()");
    await con.execute("BEGIN");
    const id2 = await con.fetchVal("SELECT txid_current()");
    assert.notEqual(id1, id2);
    await con.execute("CREATE TEMP TABLE released_in_tx (x int)");
    await pool.release(con);
    assert.deepEqual(log.codes(), ["RELEASED_IN_TRANSACTION"]);
    assert.equal(log.list[0]!.connection, con, "the warning names the checkout");
    await using next = await pool.acquire();
    assert.equal(next.getServerPid(), pid, "the same backend was reused, not discarded");
    assert.equal(await outsideTransaction(next), true, "the transaction is gone");
    assert.equal(
      await next.fetchVal("SELECT to_regclass('pg_temp.released_in_tx')"),
      null,
      "it was rolled back",
    );
    assert.notEqual(await next.fetchVal("SELECT txid_current()"), id2);
  });

  it("a transaction() that finished before release emits no warning", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    {
      await using con = await pool.acquire();
      await con.transaction(async (tx) => {
        await tx.execute("CREATE TEMP TABLE committed_tx (x int)");
      });
    }
    await using next = await pool.acquire();
    assert.notEqual(
      await next.fetchVal("SELECT to_regclass('pg_temp.committed_tx')"),
      null,
      "it was committed",
    );
    assert.deepEqual(log.codes(), []);
  });

  it("transaction() works on the next checkout after a release in the middle of a transaction() callback", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const a = await pool.acquire();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const stale = a.transaction(async () => {
      await gate;
    });
    stale.catch(() => {});
    await waitFor("the transaction to begin", async () => {
      return (await admin.value<string>("SELECT state FROM pg_stat_activity WHERE pid = $1", [
        a.getServerPid(),
      ])) === "idle in transaction";
    });
    await pool.release(a);
    assert.deepEqual(log.codes(), ["RELEASED_IN_TRANSACTION"]);
    try {
      await using b = await pool.acquire({ timeout: 1 });
      const made = await b.transaction(async (tx) => {
        await tx.execute("CREATE TEMP TABLE next_checkout_tx (x int)");
        return "committed";
      });
      assert.equal(made, "committed");
      assert.equal(await outsideTransaction(b), true);
    } finally {
      open();
      await stale.catch(() => {});
    }
  });

  for (const outcome of ["resolves", "throws"] as const) {
    it(`a transaction() callback that ${outcome} after its release cannot end the next checkout's transaction`, async () => {
      // The stale transaction() must not send COMMIT/ROLLBACK on a connection
      // that now belongs to someone else.
      const log = warningLog();
      await using pool = await createTestPool(server.dsn, {
        minSize: 1,
        maxSize: 1,
        onWarning: log.onWarning,
      });
      {
        const a = await pool.acquire();
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        const stale = a.transaction(async () => {
          await gate;
          if (outcome === "throws") throw new UserError("late failure");
          return "late";
        });
        stale.catch(() => {});
        await waitFor("the transaction to begin", async () => {
          return (await admin.value<string>("SELECT state FROM pg_stat_activity WHERE pid = $1", [
            a.getServerPid(),
          ])) === "idle in transaction";
        });
        const pid = a.getServerPid();
        await pool.release(a);
        const b = await pool.acquire({ timeout: 1 });
        try {
          assert.equal(b.getServerPid(), pid, "B got the same backend");
          await b.execute("BEGIN");
          await b.execute(`CREATE TEMP TABLE other_users_work_${outcome} (x int)`);
          open();
          const err = await rejection(stale);
          if (outcome === "throws") assert.ok(err instanceof UserError, "the callback's own error comes out");
          else {
            assert.ok(err instanceof InterfaceError, "a late transaction() cannot commit after release");
            assert.equal(err.code, "CONNECTION_RELEASED");
          }
          assert.equal(
            await outsideTransaction(b),
            false,
            `B is still inside its own transaction (${outcome})`,
          );
          await b.execute("ROLLBACK");
          assert.equal(
            await b.fetchVal(`SELECT to_regclass('pg_temp.other_users_work_${outcome}')`),
            null,
            "B's own rollback undid B's work",
          );
        } finally {
          open();
          await pool.release(b);
        }
      }
    });
  }

  it("a user error thrown inside for await over a generator that opened a transaction propagates alone", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    async function* rowsInTransaction(con: PoolConnection): AsyncGenerator<unknown> {
      await con.execute("BEGIN");
      try {
        for (const row of await con.fetch("SELECT 1 AS x")) yield row;
      } finally {
        await con.execute("ROLLBACK");
      }
    }
    await assert.rejects(async () => {
      await using con = await pool.acquire();
      for await (const _ of rowsInTransaction(con)) throw new UserError("stop");
    }, UserError);
    assert.deepEqual(log.codes(), [], "for await finalized the generator before the release");
    await using next = await pool.acquire();
    assert.equal(await outsideTransaction(next), true);
  });

  it("a generator left open past the release cannot touch the connection when it is finalized later", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    async function* rowsInTransaction(con: PoolConnection): AsyncGenerator<unknown> {
      await con.execute("BEGIN");
      try {
        for (const row of await con.fetch("SELECT 1 AS x UNION ALL SELECT 2")) yield row;
      } finally {
        await con.execute("ROLLBACK");
      }
    }
    let iterator: AsyncGenerator<unknown> | undefined;
    await assert.rejects(async () => {
      await using con = await pool.acquire();
      iterator = rowsInTransaction(con);
      await iterator.next();
      throw new UserError("stop while the generator is suspended");
    }, UserError);
    assert.deepEqual(log.codes(), ["RELEASED_IN_TRANSACTION"], "the release rolled the transaction back");
    await using next = await pool.acquire();
    const err = await rejection(iterator!.return(undefined));
    assert.equal(err.code, "CONNECTION_RELEASED", "the late ROLLBACK was refused");
    assert.equal(await outsideTransaction(next), true);
  });

  it("an error inside transaction() around a generator loop propagates alone and the transaction is rolled back", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    async function* rows(con: PoolConnection): AsyncGenerator<unknown> {
      for (const row of await con.fetch("SELECT 1 AS x")) yield row;
    }
    await assert.rejects(async () => {
      await using con = await pool.acquire();
      await con.transaction(async (tx) => {
        await tx.execute("CREATE TEMP TABLE gen_tx (x int)");
        for await (const _ of rows(tx)) throw new UserError("stop");
      });
    }, UserError);
    assert.deepEqual(log.codes(), []);
    await using next = await pool.acquire();
    assert.equal(await next.fetchVal("SELECT to_regclass('pg_temp.gen_tx')"), null);
    assert.equal(await outsideTransaction(next), true);
  });

  it("release() while an un-awaited query still runs settles cleanly and keeps the connection", async () => {
    // asyncpg #537/#784: the reset collides with the running query and release throws.
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, onWarning: log.onWarning });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    const running = con.fetchVal("SELECT 1 FROM pg_sleep(0.2)");
    running.catch(() => {});
    await within(3000, pool.release(con), "release()");
    const outcome = await running.then((v) => ({ v }), (e: Error & { code?: string }) => ({ e }));
    if ("e" in outcome) assert.equal(outcome.e.code, "57014", "if the query was stopped, it was cancelled");
    else assert.equal(outcome.v, 1);
    await using next = await pool.acquire({ timeout: 1 });
    assert.equal(next.getServerPid(), pid);
    assert.equal(await next.fetchVal("SELECT 2"), 2);
    assert.deepEqual(log.codes(), []);
  });

  it("release() right after a query was aborted waits for the cancellation, then returns the connection", async () => {
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    const controller = new AbortController();
    const sleeping = con.execute("SELECT pg_sleep(10)", [], { signal: controller.signal });
    await waitFor(
      "pg_sleep to run",
      async () =>
        (await admin.value<string>("SELECT query FROM pg_stat_activity WHERE pid = $1", [pid])) ===
          "SELECT pg_sleep(10)" &&
        (await admin.value<string>("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid])) === "active",
    );
    const reason = new UserError("stop sleeping");
    controller.abort(reason);
    assert.equal(await rejection(sleeping), reason);
    const started = Date.now();
    await within(3000, pool.release(con), "release()");
    assert.ok(Date.now() - started < 2000);
    assert.equal(pool.getIdleSize(), 1);
    await using next = await pool.acquire({ timeout: 0.5 });
    assert.equal(next.getServerPid(), pid, "the cancelled query did not cost the connection");
    assert.equal(await next.fetchVal("SELECT 43"), 43);
    assert.equal(await admin.value("SELECT state FROM pg_stat_activity WHERE pid = $1", [pid]), "idle");
  });

  it("a release the caller stops waiting for still completes and returns the connection", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      reset: async (con) => {
        await con.execute("SELECT pg_sleep(0.2)");
      },
    });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    void pool.release(con); // the caller walks away
    assert.equal(pool.getIdleSize(), 0, "the reset is still running");
    await waitFor("the release to finish", () => pool.getIdleSize() === 1, 3000);
    await using next = await pool.acquire({ timeout: 0.5 });
    assert.equal(next.getServerPid(), pid);
  });

  it("release({ timeout }) rejects with RELEASE_TIMEOUT when the reset is too slow; the connection is dropped", async () => {
    let slow = true;
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      reset: async (con) => {
        if (slow) await con.execute("SELECT pg_sleep(1)");
      },
    });
    const con = await pool.acquire();
    const pid = con.getServerPid();
    const started = Date.now();
    const err = await rejection(pool.release(con, { timeout: 0.1 }));
    assert.ok(err instanceof PoolTimeoutError);
    assert.equal(err.code, "RELEASE_TIMEOUT");
    assert.ok(Date.now() - started < 800, "rejected at the deadline");
    assert.equal(pool.getSize(), 0);
    slow = false;
    await using next = await pool.acquire({ timeout: 1 });
    assert.notEqual(next.getServerPid(), pid);
  });

  it("without a release timeout, release() is bounded by the acquire's timeout", async () => {
    let slow = true;
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      reset: async (con) => {
        if (slow) await con.execute("SELECT pg_sleep(1)");
      },
    });
    const con = await pool.acquire({ timeout: 0.2 });
    const started = Date.now();
    const err = await rejection(pool.release(con));
    assert.equal(err.code, "RELEASE_TIMEOUT");
    assert.ok(Date.now() - started < 900);
    slow = false;
    await using next = await pool.acquire({ timeout: 1 });
    assert.equal(await next.fetchVal("SELECT 1"), 1);
  });

  it("release() after a timed-out release of the same slot settles; the old reset finishing late touches nothing (regression)", async () => {
    // The old reset finishing late once freed the slot under the next release and left that
    // release never settling. Each reset here waits for the test to let it finish.
    const resets: PromiseWithResolvers<void>[] = [];
    await using pool = await createTestPool(server.dsn, {
      minSize: 0, // no kept floor reopening the dropped connection beside the next one
      maxSize: 2,
      reset: () => {
        if (resets.length === 2) return Promise.resolve(); // later releases reset at once
        const gate = Promise.withResolvers<void>();
        resets.push(gate);
        return gate.promise;
      },
    });
    const con = await pool.acquire({ timeout: 0.2 });
    const oldPid = con.getServerPid();
    const err = await within(3000, rejection(pool.release(con)), "the first release");
    assert.equal(err.code, "RELEASE_TIMEOUT");
    const next = await pool.acquire({ timeout: 2 });
    const pid = next.getServerPid();
    assert.notEqual(pid, oldPid, "a new connection");
    let second = "pending";
    const releasing = pool.release(next, { timeout: 5 }).then(() => second = "resolved", (e) => {
      second = `rejected: ${e}`;
    });
    await waitFor("the second reset to start", () => resets.length === 2);
    resets[0]!.resolve(); // the timed-out reset finishes late
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(second, "pending", "the old reset must not settle the new release");
    assert.equal(pool.getIdleSize(), 0, "nor free the slot while the new reset runs");
    resets[1]!.resolve();
    await within(2000, releasing, "the second release");
    assert.equal(second, "resolved");
    assert.equal(pool.getIdleSize(), 1);
    await using again = await pool.acquire({ timeout: 1 });
    assert.equal(again.getServerPid(), pid, "the connection was kept");
  });

  it("a one-shot helper reports the query's error, not a failing release after it", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      reset: hook(() => {
        throw new UserError("reset broke");
      }),
    });
    const err = await rejection(pool.fetchVal("SELECT no_such_column"));
    assert.ok(err instanceof PostgresError);
    assert.equal(err.code, "42703");
    // The helper settles after its release: the failed reset dropped the connection and freed its
    // slot, so the next call gets a new connection (and again reports its own error).
    assert.equal(pool.getSize(), 0, "the connection whose reset failed was dropped");
    assert.equal(pool.getWaitingCount(), 0);
    const again = await rejection(pool.fetchVal("SELECT no_such_column", [], { timeout: 2 }));
    assert.equal(again.code, "42703", `the slot was free for the next call, got ${String(again)}`);
  });
});

/**
 * The core rules of asyncpg's connection surface on the fake driver: what
 * `getResetQuery()` returns per pool mode, how log listeners attach to and
 * detach from the driver (and are counted at release), that a row factory asks
 * the driver for array rows while the default path passes the caller's options
 * through untouched, and that type codecs reach the driver. The real-server
 * behaviour is in tests/integration/pool_connection_surface_test.ts.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readyPool } from "../support/core_pool.ts";
import type { Notice } from "../../src/core/log_listeners.ts";

describe("Connection surface on the fake driver", () => {
  it("PoolConnection.getResetQuery() is the driver's reset query in session mode and empty in transaction mode", async () => {
    const session = await readyPool({ maxSize: 1 });
    const a = await session.pool.acquire();
    assert.equal(a.getResetQuery(), session.driver.connections[0]!.resetQuery());
    assert.match(a.getResetQuery(), /RESET ALL/);
    await session.pool.release(a);
    await session.pool.close();
    const tx = await readyPool({ maxSize: 1, poolMode: "transaction" });
    const b = await tx.pool.acquire();
    assert.equal(b.getResetQuery(), "");
    await tx.pool.release(b);
    await tx.pool.close();
  });

  it("Pool.release() counts log and notification listeners together in RELEASED_WITH_LISTENERS and detaches the notice receiver", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    const dc = h.driver.connections[0]!;
    assert.equal(dc.noticeListener, undefined, "no receiver before a log listener");
    const heard: string[] = [];
    con.addLogListener((n: Notice) => heard.push(n.message));
    await con.addListener("jobs", () => {});
    dc.noticeListener!({ code: "00000", message: "hello", severity: "NOTICE" });
    assert.deepEqual(heard, ["hello"]);
    await h.pool.release(con);
    assert.deepEqual(h.warnings.map((w) => w.code), ["RELEASED_WITH_LISTENERS"]);
    assert.match(h.warnings[0]!.message, /with 2 active listeners/);
    assert.equal(dc.noticeListener, undefined, "the receiver is detached at release");
    await h.pool.close();
  });

  it("Connection.removeLogListener() of the last listener detaches the notice receiver", async () => {
    const h = await readyPool({ maxSize: 1 });
    await using con = await h.pool.acquire();
    const dc = h.driver.connections[0]!;
    const a = (): void => {};
    const b = (): void => {};
    con.addLogListener(a);
    con.addLogListener(b);
    con.removeLogListener(a);
    assert.equal(typeof dc.noticeListener, "function", "one listener left");
    con.removeLogListener(b);
    con.removeLogListener(b); // not registered any more: ignored
    assert.equal(dc.noticeListener, undefined);
  });

  it("Connection.fetch() passes the caller's options through untouched without a row factory, and asks for array rows with one", async () => {
    const plain = await readyPool({ maxSize: 1 });
    const opts = { timeout: 5 };
    const con = await plain.pool.acquire();
    const rows = await con.fetch("SELECT 1", [], opts);
    assert.deepEqual(rows, [{ n: 1, pid: plain.driver.connections[0]!.pid, sql: "SELECT 1" }]);
    assert.equal(plain.driver.connections[0]!.options.at(-1), opts, "the very same object");
    await plain.pool.release(con);
    await plain.pool.close();

    const calls: [readonly string[], unknown[]][] = [];
    const h = await readyPool({
      maxSize: 1,
      rowFactory: (columns, values) => {
        calls.push([columns, values]);
        return values.length;
      },
    });
    assert.deepEqual(await h.pool.fetch("SELECT 1", [], opts), [3]);
    const pid = h.driver.connections[0]!.pid;
    assert.deepEqual(calls, [[["n", "pid", "sql"], [1, pid, "SELECT 1"]]]);
    assert.deepEqual(h.driver.connections[0]!.options.at(-1), {
      timeout: 5,
      signal: undefined,
      arrayRows: true,
    });
    assert.equal(await h.pool.fetchRow("SELECT 2", [2]), 3);
    assert.equal(await h.pool.fetchVal("SELECT 3", [9]), 9, "fetchVal is unaffected");
    assert.equal(h.driver.connections[0]!.options.at(-1)?.arrayRows, undefined);
    await h.pool.close();
  });
});

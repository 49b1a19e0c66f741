/**
 * The pool's `poolMode` (issue 13): in transaction mode (behind PgBouncer / Supavisor transaction
 * pooling) there is no session reset at release, statements are unnamed unless the pooler keeps
 * prepared statements, and listeners and COPY reject with UNSUPPORTED. Core rules on the fake
 * driver; tests/integration/pgbouncer_test.ts runs them through a real PgBouncer.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BasePool as Pool } from "../../src/core/pool.ts";
import type { Connection } from "../../src/core/connection.ts";
import type { PoolOptions } from "../../src/core/options.ts";
import { InterfaceError } from "../../src/core/errors.ts";
import { type Harness, readyPool as ready } from "../support/core_pool.ts";
import { withDsnPoolMode } from "../../src/_bind.ts";

/** A harness whose pool `await using` closes. */
async function readyPool(options: PoolOptions): Promise<Harness & AsyncDisposable> {
  const h = await ready(options);
  return { ...h, [Symbol.asyncDispose]: () => h.pool.close() };
}

const connect = (): Promise<Connection> => Promise.reject(new Error("not used"));
const make = (o: Record<string, unknown>) => () => new Pool({ connect, ...o } as PoolOptions);

function isUnsupported(method: string): (e: unknown) => boolean {
  return (e) =>
    e instanceof InterfaceError && e.code === "UNSUPPORTED" &&
    e.message.includes(`${method}()`) && e.message.includes("transaction pool mode");
}

describe("Pool poolMode option", () => {
  it("new Pool() throws TypeError for a poolMode other than session or transaction", () => {
    for (const bad of ["Transaction", "statement", "", 1, null, true]) {
      assert.throws(
        make({ poolMode: bad }),
        (e: unknown) => e instanceof TypeError && /'poolMode' must be session or transaction/.test(e.message),
        String(bad),
      );
    }
    assert.throws(make({ poolerPreparedStatements: "yes" }), /'poolerPreparedStatements' must be a boolean/);
  });

  it("new Pool() refuses a reset hook and prepare: true without poolerPreparedStatements in transaction mode", () => {
    const reset = (): Promise<void> => Promise.resolve();
    assert.throws(
      make({ poolMode: "transaction", reset }),
      /'reset' cannot be used in transaction pool mode/,
    );
    assert.throws(make({ poolMode: "transaction", prepare: true }), /needs 'poolerPreparedStatements: true'/);
    make({ poolMode: "transaction", prepare: true, poolerPreparedStatements: true })();
    make({ poolMode: "session", reset })();
  });

  it("Pool in transaction mode connects with prepare: false unless poolerPreparedStatements is set", async () => {
    {
      await using h = await readyPool({ poolMode: "transaction", minSize: 1, statementCacheSize: 50 });
      assert.equal(h.driver.connectOptions[0]!.prepare, false);
    }
    {
      await using h = await readyPool({
        poolMode: "transaction",
        poolerPreparedStatements: true,
        minSize: 1,
      });
      assert.equal(h.driver.connectOptions[0]!.prepare, undefined);
    }
    {
      await using h = await readyPool({ minSize: 1 });
      assert.equal(h.driver.connectOptions[0]!.prepare, undefined);
    }
  });

  it("Pool.release() in transaction mode sends no session reset; in session mode it does", async () => {
    for (const [poolMode, expected] of [["transaction", false], ["session", true]] as const) {
      await using h = await readyPool({ poolMode, maxSize: 1 });
      const con = await h.pool.acquire();
      await con.fetchVal("SELECT 1");
      await h.pool.release(con);
      assert.deepEqual(h.driver.connections[0]!.resetQueries, [expected], poolMode);
    }
  });

  it("Pool.release() in transaction mode rolls back an open transaction and warns RELEASED_IN_TRANSACTION", async () => {
    await using h = await readyPool({ poolMode: "transaction", maxSize: 1 });
    const con = await h.pool.acquire();
    await con.execute("BEGIN");
    const dc = h.driver.connections[0]!;
    assert.equal(dc.transactionStatus, "transaction");
    await h.pool.release(con);
    assert.equal(dc.transactionStatus, "idle");
    assert.deepEqual(dc.resetQueries, [false]);
    assert.deepEqual(h.warnings.map((w) => w.code), ["RELEASED_IN_TRANSACTION"]);
    assert.equal(h.pool.getIdleSize(), 1);
  });

  it("PoolConnection.addListener() and the copy methods reject with UNSUPPORTED in transaction mode", async () => {
    await using h = await readyPool({ poolMode: "transaction", maxSize: 1 });
    await using con = await h.pool.acquire();
    const before = h.driver.connections[0]!.queries.length;
    await assert.rejects(con.addListener("jobs", () => {}), isUnsupported("addListener"));
    const output = (): void => {};
    await assert.rejects(con.copyFromTable("t", { output }), isUnsupported("copyFromTable"));
    await assert.rejects(con.copyFromQuery("SELECT $1", [1], { output }), isUnsupported("copyFromQuery"));
    await assert.rejects(con.copyToTable("t", { source: "1\n" }), isUnsupported("copyToTable"));
    await assert.rejects(
      con.copyRecordsToTable("t", { records: [[1]] }),
      isUnsupported("copyRecordsToTable"),
    );
    assert.equal(h.driver.connections[0]!.queries.length, before, "nothing reached the server");
    assert.equal(await con.fetchVal("SELECT 1"), 1, "the connection stays usable");
  });

  it("Pool one-shot copy methods reject with UNSUPPORTED in transaction mode and give the connection back", async () => {
    await using h = await readyPool({ poolMode: "transaction", maxSize: 1 });
    await assert.rejects(h.pool.copyToTable("t", { source: "1\n" }), isUnsupported("copyToTable"));
    await assert.rejects(h.pool.copyFromTable("t", { output: () => {} }), isUnsupported("copyFromTable"));
    assert.equal(h.pool.getIdleSize(), h.pool.getSize());
  });

  it("Pool in transaction mode refuses listeners in the init hook too", async () => {
    let error: unknown;
    await using h = await readyPool({
      poolMode: "transaction",
      minSize: 1,
      init: async (con) => {
        error = await con.addListener("jobs", () => {}).then(() => undefined, (e: unknown) => e);
      },
    });
    assert.ok(isUnsupported("addListener")(error), String(error));
    assert.equal(h.pool.getSize(), 1);
  });

  it("Pool in session mode still offers listeners and COPY", async () => {
    await using h = await readyPool({ maxSize: 1 });
    await using con = await h.pool.acquire();
    await con.addListener("jobs", () => {});
    assert.equal(await con.copyToTable("t", { source: "1\n2\n" }), "COPY 2");
    await con.removeListener("jobs", () => {});
  });

  it("withDsnPoolMode() takes poolMode from the DSN's pool_mode unless the options set it", () => {
    const env = (): Record<string, string> => ({});
    const dsn = "postgres://app@pgbouncer:6432/app?pool_mode=transaction";
    assert.deepEqual(withDsnPoolMode(dsn, { maxSize: 2 }, env), [dsn, {
      maxSize: 2,
      poolMode: "transaction",
    }]);
    assert.deepEqual(withDsnPoolMode({ dsn }, undefined, env), [{ dsn, poolMode: "transaction" }, undefined]);
    assert.deepEqual(withDsnPoolMode(dsn, { poolMode: "session" }, env), [dsn, { poolMode: "session" }]);
    assert.deepEqual(
      withDsnPoolMode(undefined, undefined, () => ({ DATABASE_URL: "host=b pool_mode=transaction" })),
      [{ poolMode: "transaction" }, undefined],
    );
    assert.deepEqual(withDsnPoolMode("postgres://db/app", undefined, env), ["postgres://db/app", undefined]);
    assert.throws(
      () => withDsnPoolMode("postgres://db/app?pool_mode=statement", undefined, env),
      (e: unknown) =>
        e instanceof InterfaceError && e.code === "INVALID_DSN" && /pool_mode "statement"/.test(e.message),
    );
  });
});

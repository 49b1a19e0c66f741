/**
 * The query API written once (src/core/query_api.ts): the PoolConnection
 * forwarders and the pool's one-shots are generated from one list, so these
 * tests walk that list instead of naming methods one by one.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../../src/core/connection.ts";
import { InterfaceError, PoolTimeoutError } from "../../src/core/errors.ts";
import { PoolConnection } from "../../src/core/pool_connection.ts";
import { METHODS, PROXY_METHODS, QUERY_METHODS, type QueryMethod } from "../../src/core/query_api.ts";
import { readyPool, settle } from "../support/core_pool.ts";

type Loose = (a?: unknown, b?: unknown, c?: unknown) => Promise<unknown>;

/** Arguments for one call of each query method (a missing entry is a type error: new methods get tested). */
function sampleArgs(): Record<QueryMethod, unknown[]> {
  const output = (_chunk: Uint8Array): void => {};
  return {
    execute: ["INSERT INTO t VALUES ($1)", [1]],
    executeMany: ["INSERT INTO t VALUES ($1)", [[1], [2]]],
    fetch: ["SELECT $1::int AS n", [1]],
    fetchRow: ["SELECT $1::int AS n", [1]],
    fetchVal: ["SELECT $1::int AS n", [1], { column: 0 }],
    fetchMany: ["SELECT $1::int AS n", [[1], [2]]],
    copyFromTable: ["t", { output }],
    copyFromQuery: ["SELECT 1", undefined, { output }],
    copyToTable: ["t", { source: "1\n2\n" }],
    copyRecordsToTable: ["t", { records: [[1], [2]] }],
  };
}

function method(target: object, name: string): Loose {
  return (target as Record<string, Loose>)[name]!.bind(target);
}

describe("The query API list", () => {
  it("PoolConnection has every listed method, with Connection's name and arity", () => {
    for (const name of PROXY_METHODS) {
      const mine = (PoolConnection.prototype as unknown as Record<string, Loose>)[name];
      const theirs = (Connection.prototype as unknown as Record<string, Loose>)[name];
      assert.equal(typeof mine, "function", `PoolConnection.${name}`);
      assert.equal(mine!.name, name);
      assert.equal(mine!.length, theirs!.length, `PoolConnection.${name}.length`);
      assert.ok(!Object.keys(PoolConnection.prototype).includes(name), "not enumerable, like a class method");
    }
  });

  it("PoolConnection's listed methods throw CONNECTION_RELEASED synchronously after release", async () => {
    const h = await readyPool({ maxSize: 1 });
    const con = await h.pool.acquire();
    await h.pool.release(con);
    for (const name of PROXY_METHODS) {
      assert.throws(
        () => (con as unknown as Record<string, Loose>)[name]!(),
        (e: unknown) =>
          e instanceof InterfaceError && e.code === "CONNECTION_RELEASED" &&
          e.message.includes(`PoolConnection.${name}()`),
        name,
      );
    }
  });

  it("the pool has a one-shot for each query method and none for the session methods", () => {
    for (const name of PROXY_METHODS) {
      const oneShot = METHODS[name] !== null;
      assert.equal(QUERY_METHODS.includes(name as QueryMethod), oneShot, name);
    }
  });

  it("Pool one-shots resolve to what the method resolves to on a checked-out connection, and release it", async () => {
    const h = await readyPool({ maxSize: 1 });
    for (const name of QUERY_METHODS) {
      const con = await h.pool.acquire();
      const expected = await method(con, name)(...sampleArgs()[name]);
      await h.pool.release(con);
      const got = await method(h.pool, name)(...sampleArgs()[name]);
      assert.deepEqual(got, expected, `Pool.${name}()`);
      assert.equal(h.pool.getIdleSize(), 1, `Pool.${name}() released its connection`);
    }
    assert.equal(h.warnings.length, 0);
  });

  for (const name of ["copyToTable", "fetchVal"] as const) {
    it(`Pool.${name}() takes its bound from the options at the listed position (${METHODS[name]})`, async () => {
      const h = await readyPool({ maxSize: 1, onWarning: () => {} });
      h.driver.query.push("never");
      const args = sampleArgs()[name];
      const at = METHODS[name];
      args[at] = { ...args[at] as object, timeout: 0.2 };
      const call = settle(method(h.pool, name)(...args));
      await h.clock.tick(199);
      assert.equal(h.pool.getIdleSize(), 0, "still running at 199 ms");
      await h.clock.tick(1);
      const r = await call;
      assert.ok(!r.ok && r.error instanceof PoolTimeoutError && r.error.code === "QUERY_TIMEOUT");
    });
  }

  it("a one-shot whose query fails waits for its hanging release only until its deadline", async () => {
    const h = await readyPool({ maxSize: 1, onWarning: () => {} });
    h.driver.query.push("error");
    h.driver.reset.push("never");
    let settled = false;
    const call = settle(h.pool.fetch("SELECT 1", [], { timeout: 0.3 })).finally(() => settled = true);
    await h.clock.tick(299);
    assert.equal(settled, false, "waits for the release while the budget lasts");
    await h.clock.tick(1);
    const r = await call;
    assert.ok(!r.ok && (r.error as Error).message === "scripted query failure", "the query's error wins");
  });

  it("a one-shot whose query fails and has no timeout waits for its release to finish", async () => {
    const h = await readyPool({ maxSize: 1, releaseTimeout: 5, onWarning: () => {} });
    h.driver.query.push("error");
    h.driver.reset.push("never");
    let settled = false;
    const call = settle(h.pool.fetch("SELECT 1")).finally(() => settled = true);
    await h.clock.tick(4999);
    assert.equal(settled, false);
    await h.clock.tick(1); // the release hits the pool's releaseTimeout: the connection is dropped
    const r = await call;
    assert.ok(!r.ok && (r.error as Error).message === "scripted query failure");
    assert.equal(h.pool.getSize(), 0);
  });

  it("copy helpers called without their options object reject INVALID_ARGUMENT, on the pool and on a connection", async () => {
    const h = await readyPool({ maxSize: 2 });
    const con = await h.pool.acquire();
    for (const target of [h.pool, con]) {
      for (
        const [name, args] of [["copyFromTable", ["t"]], ["copyFromQuery", ["SELECT 1", undefined]]] as const
      ) {
        await assert.rejects(
          Promise.resolve().then(() => method(target, name)(...args)),
          (e: unknown) =>
            e instanceof InterfaceError && e.code === "INVALID_ARGUMENT" && /'output'/.test(e.message),
          name,
        );
      }
    }
    await h.pool.release(con);
  });
});

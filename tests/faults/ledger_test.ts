/**
 * No lost writes: the write ledger's own checks and the sharpest case it
 * found. The scenario files (restart, network, terminate_backend, failover)
 * each run a ledger under their faults; this file pins down, deterministically,
 * the one-shot helper whose statement committed but whose release failed.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  type Connection,
  createPool,
  InterfaceError,
  PoolTimeoutError,
  PostgresError,
} from "../../mod.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { Ledger, provesNotWritten } from "../support/ledger.ts";
import { trapUnhandledRejections, waitFor, within } from "./fault_support.ts";

let server: TestServer;
let admin: Connection;

describe("Faults: no lost writes", { timeout: 60_000 }, () => {
  before(async () => {
    server = await getTestServer();
    admin = await connect(server.dsn);
  });

  after(async () => {
    await admin.close();
  });

  it("the ledger reports lost, duplicated and phantom rows (self-check)", async () => {
    const ledger = await Ledger.create(admin, "ledger_selfcheck");
    await ledger.insert((sql, args) => admin.execute(sql, args)); // 1: acked, present
    await ledger.insert(() => Promise.resolve("INSERT 0 1")); // 2: acked, missing → lost
    await ledger.insert(async (sql, args) => { // 3: failed for sure, present → phantom
      await admin.execute(sql, args);
      throw new InterfaceError("CONNECTION_CLOSED", "x");
    });
    await ledger.insert(async (sql, args) => { // 4: ambiguous, present twice → duplicate
      await admin.execute(sql, args);
      await admin.execute(sql, args);
      throw new PoolTimeoutError("QUERY_TIMEOUT", "x");
    });
    const r = await ledger.verify(admin);
    assert.deepEqual(r.lost, [2]);
    assert.deepEqual(r.phantoms, [{ id: 3, code: "CONNECTION_CLOSED" }]);
    assert.deepEqual(r.duplicates, [4]);
    assert.equal(r.ambiguousCommitted, 1);
    assert.equal(
      provesNotWritten(new PostgresError({ code: "57014", message: "canceled", severity: "ERROR" })),
      true,
    );
    assert.equal(provesNotWritten(new Error("abort reason")), false);
  });

  it("a one-shot write whose statement committed resolves even when the release after it fails", {
    timeout: 30_000,
  }, async () => {
    const trap = trapUnhandledRejections();
    const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
    const ledger = await Ledger.create(admin, "ledger_oneshot_release");
    // One at a time: the byte count below assumes the reset rides with the next statement (the
    // pipelined one-shot's case is in tests/faults/pipeline_faults_test.ts).
    const pool = await createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
      minSize: 1,
      maxSize: 1,
      pipelineDepth: 1,
      onWarning: () => {},
    });
    try {
      // Measure the bytes one steady-state one-shot insert exchanges (whatever reset
      // traffic rides along with it), after a warm-up that prepares the statement.
      await pool.execute(ledger.insertSql, [-1, "warm-up"]);
      await pool.execute(ledger.insertSql, [-2, "warm-up"]);
      const s0 = proxy.stats();
      // same-sized arguments as the write below, so the cut falls right after its reply
      await pool.execute(ledger.insertSql, [2, "the write"]);
      const s1 = proxy.stats();
      const statementBytes = s1.bytesUp + s1.bytesDown - s0.bytesUp - s0.bytesDown;
      // The next insert's reply arrives in full; the connection is then cut, so the reset fails.
      const pidBefore = await pool.fetchVal<number>("SELECT pg_backend_pid()");
      const resetsBefore = proxy.stats().reset;
      const closes = (): number => Object.values(pool.stats().closeCount).reduce((a, b) => a + b, 0);
      const closesBefore = closes();
      proxy.cutAfterBytes(statementBytes);
      let outcome: string;
      try {
        outcome = await within(5000, pool.execute(ledger.insertSql, [1, "the write"]));
      } catch (e) {
        outcome = `rejected with ${(e as { code?: string }).code ?? String(e)}`;
      }
      proxy.cutAfterBytes(undefined);
      const rows = Number(await admin.fetchVal(`SELECT count(*) FROM ${ledger.table} WHERE id = 1`));
      assert.equal(rows, 1, "the insert committed");
      assert.equal(
        outcome,
        "INSERT 0 1",
        `a committed statement is reported as a success, not as the release's failure (${outcome})`,
      );
      // The cut did happen, and the pool dropped the cut connection (it had one until then) ...
      assert.equal(proxy.stats().reset, resetsBefore + 1, "the proxy cut the connection");
      // (Counted, not seen as size 0: the minSize floor may reopen a connection before a poll looks.)
      await waitFor("the cut connection to be dropped", () => closes() === closesBefore + 1);
      assert.equal(pool.getWaitingCount(), 0);
      // ... and serves the next call on a new one.
      assert.equal(await pool.fetchVal("SELECT $1::int", [5]), 5);
      assert.notEqual(await pool.fetchVal("SELECT pg_backend_pid()"), pidBefore);
      assert.equal(pool.getSize(), 1);
    } finally {
      pool.terminate();
      await proxy.close();
      trap.check();
    }
  });
});

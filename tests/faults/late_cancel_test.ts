/**
 * A cancel request that reaches the server after its statement finished must
 * never cancel the next caller's statement. The race is forced, not hoped for:
 * the fault proxy holds the `CancelRequest` in flight until the next caller's
 * statement is running on the same backend's connection slot, then delivers it.
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createPool } from "../../mod.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { LazyAdmin, rejection, trapUnhandledRejections, waitFor, within } from "./fault_support.ts";

const admin = new LazyAdmin("late-cancel-admin");

describe("Faults: a late cancel request", { timeout: 60_000 }, () => {
  after(async () => {
    await admin.close();
  });

  it(
    "a cancel delivered after its statement finished, while the next caller's statement runs, does not cancel it",
    {
      timeout: 30_000,
    },
    async () => {
      await admin.connection();
      const server = await admin.server();
      const trap = trapUnhandledRejections();
      const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
      const app = `late-cancel-${process.pid}-${Date.now()}`;
      const pool = await createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
        minSize: 1,
        maxSize: 1,
        applicationName: app,
        onWarning: () => {},
      });
      try {
        proxy.holdCancelRequests(true);
        // A times out at 0.1 s; its cancel leaves the client and is held in flight.
        const a = rejection(pool.fetchVal("SELECT pg_sleep(0.4)", [], { timeout: 0.1 }));
        await waitFor("A's cancel to be in flight", () => proxy.heldCancels === 1);
        assert.equal((await within(5000, a, "A")).code, "QUERY_TIMEOUT");
        // A ends by itself on the server: its cancel has not arrived.
        await waitFor("A to finish on the server", async () => {
          const s = await admin.sessions(app);
          return s.length === 1 && s[0]!.state === "idle";
        });
        // B, the next caller, runs (2 s, long enough for a cancel to land); the late cancel is delivered meanwhile.
        const b = pool.fetchVal<string>("SELECT $1::text FROM pg_sleep(2)", ["B"]);
        b.catch(() => {});
        await waitFor("B to run on the server", async () => {
          const s = await admin.sessions(app);
          return s.some((r) => r.state === "active" && r.query.includes("pg_sleep(2)"));
        }, 10_000);
        assert.equal(proxy.releaseCancelRequests(), 1);
        assert.equal(await within(10_000, b, "B"), "B", "the late cancel did not cancel B");
        // and the pool carries on
        assert.equal(await pool.fetchVal("SELECT $1::int", [3], { timeout: 5 }), 3);
      } finally {
        proxy.holdCancelRequests(false);
        proxy.releaseCancelRequests();
        pool.terminate();
        await proxy.close();
        trap.check();
      }
    },
  );
});

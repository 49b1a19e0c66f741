/**
 * A late cancel request under pipelined one-shots: a bounded one-shot queued behind an unbounded
 * one times out, its `CancelRequest` is held in flight by the fault proxy until its statement has
 * finished by itself, and is delivered while the next one-shot runs. Neither the unbounded one-shot
 * ahead of it nor the one after it may be cancelled.
 */

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createPool } from "../../mod.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { LazyAdmin, rejection, trapUnhandledRejections, waitFor, within } from "./fault_support.ts";

const admin = new LazyAdmin("pipe-late-cancel-admin");

describe("Faults: a late cancel request under pipelined one-shots", { timeout: 60_000 }, () => {
  after(async () => {
    await admin.close();
  });

  it(
    "Pool one-shot timed out behind an unbounded one: its cancel, delivered late, reaches neither neighbour",
    {
      timeout: 30_000,
    },
    async () => {
      await admin.connection();
      const server = await admin.server();
      const trap = trapUnhandledRejections();
      const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
      const app = `pipe-late-cancel-${process.pid}`;
      const pool = await createPool(proxy.dsnFrom(server.dsnFor({ host: "127.0.0.1" })), {
        driver: "native",
        minSize: 1,
        maxSize: 1,
        applicationName: app,
        onWarning: () => {},
      });
      try {
        proxy.holdCancelRequests(true);
        const ahead = pool.fetchVal<number>("SELECT $1::int FROM pg_sleep(0.3)", [1]);
        // Times out at 0.1 s behind `ahead`; its cancel goes out once it runs, and is held in flight.
        const bounded = rejection(pool.fetchVal("SELECT $1::int FROM pg_sleep(0.4)", [2], { timeout: 0.1 }));
        assert.equal(pool.getWaitingCount(), 0, "both on the connection");
        assert.equal(
          await within(5000, ahead, "the one-shot ahead"),
          1,
          "the cancel did not reach the one ahead",
        );
        assert.equal((await within(5000, bounded, "the bounded one-shot")).code, "QUERY_TIMEOUT");
        await waitFor("its cancel to be in flight", () => proxy.heldCancels === 1);
        await waitFor("the bounded statement to finish on the server by itself", async () => {
          const s = await admin.sessions(app);
          return s.length >= 1 && s.every((r) => r.state === "idle");
        });
        // The next one-shot runs long enough for a cancel to land; the late cancel is delivered meanwhile.
        const next = pool.fetchVal<string>("SELECT $1::text FROM pg_sleep(2)", ["next"]);
        next.catch(() => {});
        await waitFor("the next one-shot to run on the server", async () => {
          const s = await admin.sessions(app);
          return s.some((r) => r.state === "active" && r.query.includes("pg_sleep(2)"));
        }, 10_000);
        assert.equal(proxy.releaseCancelRequests(), 1);
        assert.equal(
          await within(10_000, next, "the next one-shot"),
          "next",
          "the late cancel did not cancel it",
        );
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

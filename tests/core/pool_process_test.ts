import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { flush } from "../support/fake_clock.ts";
import { readyPool } from "../support/core_pool.ts";

describe("Pool and the process's lifetime", () => {
  it("Pool unrefs a connection when it goes idle and refs it while it is checked out or released", async () => {
    const h = await readyPool({ minSize: 1, maxSize: 1 });
    const dc = h.driver.connections[0]!;
    assert.equal(dc.refd, false, "an idle connection never keeps the process alive");
    const con = await h.pool.acquire();
    assert.equal(dc.refd, true, "a checked-out connection does");
    h.driver.reset.push("slow");
    const releasing = h.pool.release(con);
    await flush();
    assert.equal(dc.refd, true, "and so does one being reset");
    await h.clock.tick(h.driver.slowMs);
    await releasing;
    assert.equal(dc.refd, false);
  });

  it("Pool's own timers are unref'd on its clock: an idle pool with an idle-lifetime timer does not hold the process", async () => {
    // Only the idle-lifetime timer: no kept floor (it stops idle expiry), no lifetime or ping sweep.
    const h = await readyPool({
      minSize: 0,
      maxInactiveConnectionLifetime: 300,
      maxLifetime: 0,
      pingAfterIdle: null,
    });
    const unrefd: unknown[] = [];
    (h.clock as unknown as { unref(handle: unknown): void }).unref = (handle) => unrefd.push(handle);
    const con = await h.pool.acquire();
    await h.pool.release(con); // re-arms the idle-lifetime timer
    assert.equal(h.clock.pending, 1);
    // every timer the pool armed meanwhile (the watchdog re-arms as its earliest alarm moves) was unref'd
    assert.ok(unrefd.length >= 1, `unref'd ${unrefd.length}`);
  });
});

/**
 * The kept floor against a real PostgreSQL, on the driver PGPOOL_DRIVER picks:
 * `minSize` connections come back in the background after the server
 * terminates every idle one.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Admin, createTestPool, getTestServer, type TestServer, waitFor } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** Backend pids of the sessions with this application_name. */
async function pidsNamed(name: string): Promise<number[]> {
  const list = await admin.value<string | null>(
    "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE application_name = $1",
    [name],
  );
  return list === null ? [] : list.split(",").map(Number);
}

describe("Pool kept floor on a real server", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  it("Pool reopens its minSize floor after pg_terminate_backend of every idle connection", async () => {
    const name = `pool-floor-${Math.random().toString(36).slice(2)}`;
    await using pool = await createTestPool(server.dsn, { minSize: 3, maxSize: 5, applicationName: name });
    const first = await pidsNamed(name);
    assert.equal(first.length, 3);
    for (const pid of first) assert.equal(await admin.kill(pid), true);
    for (const pid of first) await admin.waitGone(pid);
    const back = await waitFor("the floor to come back", async () => {
      const now = await pidsNamed(name);
      return pool.getSize() === 3 && now.length === 3 ? now : undefined;
    }, 5000);
    for (const pid of back!) assert.equal(first.includes(pid), false, "new backends");
    const stats = pool.stats();
    assert.equal(stats.closeCount.broken, 3);
    assert.equal(stats.connectCount, 6);
    assert.equal(stats.idle, 3);
    assert.equal(await pool.fetchVal("SELECT 1"), 1);
  });
});

/**
 * The session reset undoes a role change. `RESET ALL` leaves `role` and `session_authorization`
 * alone, so before the reset ran `RESET SESSION AUTHORIZATION; RESET ROLE` a checkout that ran
 * `SET ROLE tenant_a` (or `set_config('role', …)` in a function, or `SET SESSION AUTHORIZATION`)
 * handed the next checkout a session acting as tenant_a: its privileges, and the rows row-level
 * security shows tenant_a. A role given at connect time (`params.role`) is the session's own
 * default and stays. On both drivers (`test:other` runs this file on postgres.js).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Pool } from "../../mod.ts";
import { Admin, createTestPool, getTestServer, type TestServer } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** Who the session acts as. */
const WHO = "SELECT current_user::text AS current, session_user::text AS session";

/** The server's DSN with another user name (the test server trusts every local user). */
function dsnAs(user: string): string {
  const url = new URL(server.dsn);
  url.username = user;
  url.password = "";
  return url.toString();
}

/** Ways one checkout changes who the session acts as. */
const WAYS: readonly { how: string; sql: string; superuserOnly?: boolean }[] = [
  { how: "SET ROLE", sql: "SET ROLE rp_tenant" },
  { how: "set_config('role') in a SELECT", sql: "SELECT set_config('role', 'rp_tenant', false)" },
  { how: "a DO block's EXECUTE 'SET ROLE'", sql: "DO $$ BEGIN EXECUTE 'SET ROLE rp_tenant'; END $$" },
  { how: "SET SESSION AUTHORIZATION", sql: "SET SESSION AUTHORIZATION rp_tenant", superuserOnly: true },
];

describe("Session reset of roles (real server)", () => {
  let login: string;

  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
    login = await admin.value<string>("SELECT current_user::text");
    await admin.execute(`DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rp_tenant') THEN CREATE ROLE rp_tenant NOLOGIN; END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rp_default') THEN CREATE ROLE rp_default NOLOGIN; END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rp_app') THEN CREATE ROLE rp_app LOGIN; END IF;
    END $$`);
    await admin.execute("GRANT rp_tenant TO rp_app");
  });

  after(async () => {
    await admin.close();
  });

  /** Runs `way` in one checkout and reads who the next checkout on the same backend acts as. */
  async function nextCheckout(pool: Pool, sql: string): Promise<{ current: string; session: string }> {
    const a = await pool.acquire();
    const pid = a.getServerPid();
    await a.execute(sql);
    assert.equal(await a.fetchVal("SELECT current_user::text"), "rp_tenant", "the change took");
    await pool.release(a);
    await using b = await pool.acquire();
    assert.equal(b.getServerPid(), pid, "the same backend");
    return (await b.fetchRow<{ current: string; session: string }>(WHO))!;
  }

  for (const way of WAYS) {
    it(`Pool.release() undoes ${way.how}: the next checkout acts as the user that logged in`, async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      assert.deepEqual(await nextCheckout(pool, way.sql), { current: login, session: login });
    });

    it(`Pool one-shots on one backend: ${way.how} never reaches the next one-shot`, async () => {
      await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1 });
      // Issued together: where the driver pipelines, they share the backend, each behind its own reset.
      const [, after] = await Promise.all([
        pool.execute(way.sql),
        pool.fetchRow<{ current: string; session: string }>(WHO),
      ]);
      assert.deepEqual(after, { current: login, session: login });
    });
  }

  it("Pool.release() keeps a role sent at connect time (params.role): the session's own default", async () => {
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      params: { role: "rp_default" },
    });
    {
      await using first = await pool.acquire();
      assert.equal(
        await first.fetchVal("SELECT current_user::text"),
        "rp_default",
        "the startup role applies",
      );
    }
    await admin.execute("GRANT rp_tenant TO rp_default");
    assert.deepEqual(await nextCheckout(pool, "SET ROLE rp_tenant"), {
      current: "rp_default",
      session: login,
    });
  });

  for (const way of WAYS.filter((w) => w.superuserOnly !== true)) {
    it(`a login that is no superuser: Pool.release() undoes ${way.how} and keeps the connection`, async () => {
      await using pool = await createTestPool(dsnAs("rp_app"), { minSize: 1, maxSize: 1 });
      assert.deepEqual(await nextCheckout(pool, way.sql), { current: "rp_app", session: "rp_app" });
      assert.equal(pool.stats().closeCount.resetFailed, 0, "the reset ran without error");
      assert.equal(pool.stats().connectCount, 1, "one connection all along");
    });
  }
});

/**
 * Password authentication through the pool against a real PostgreSQL (the
 * harness's md5 and scram-sha-256 roles), and that no password ever shows up
 * in an error, a description or a log line. Ported in spirit from asyncpg's
 * test_pool_auth (test 16).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { createPool, type PoolWarning, PostgresError } from "../../mod.ts";
import { Admin, createTestPool, getTestServer, rejection, type TestServer } from "./pool_support.ts";
import { skipTest } from "../support/skip.ts";

let server: TestServer;
let admin: Admin;

function assertNoSecret(value: unknown, secret: string, what: string): void {
  const texts = [String(value), inspect(value, { depth: 10, showHidden: true })];
  if (value instanceof Error) texts.push(value.message, value.stack ?? "");
  for (const text of texts) assert.ok(!text.includes(secret), `the password appears in ${what}: ${text}`);
}

describe("Pool password authentication (real server)", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
  });

  after(async () => {
    await admin.close();
  });

  for (const method of ["md5", "scram"] as const) {
    it(`a pool logs every connection in with ${method} and reuses the credentials for new ones`, async (t) => {
      const role = server[method];
      if (role === undefined) return skipTest(t, `the server has no ${method} role (DATABASE_URL in use)`);
      const stored = await admin.value<string>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [
        role.user,
      ]);
      assert.ok(
        stored.startsWith(method === "md5" ? "md5" : "SCRAM-SHA-256$"),
        "the role really uses " + method,
      );
      const warnings: PoolWarning[] = [];
      const pool = await createPool(server.dsnFor({ user: role.user, password: role.password }), {
        minSize: 5,
        maxSize: 10,
        maxQueries: 2,
        onWarning: (w) => warnings.push(w),
      });
      try {
        await Promise.all(Array.from({ length: 20 }, async () => {
          await using con = await pool.acquire({ timeout: 5 });
          assert.equal(await con.fetchVal("SELECT current_user"), role.user);
          assertNoSecret(con, role.password, "String(con)");
        }));
        assertNoSecret(pool, role.password, "String(pool)");
      } finally {
        await pool.close();
      }
      for (const w of warnings) assertNoSecret(w.message, role.password, "a warning");
    });

    it(`${method}: the password can come from the options instead of the DSN`, async (t) => {
      const role = server[method];
      if (role === undefined) return skipTest(t, `the server has no ${method} role`);
      await using pool = await createTestPool({
        host: server.host,
        port: server.port,
        database: server.database,
        user: role.user,
        password: role.password,
        minSize: 1,
        maxSize: 1,
      });
      assert.equal(await pool.fetchVal("SELECT current_user"), role.user);
    });

    it(`${method}: a wrong password fails with 28P01 and the password appears nowhere`, async (t) => {
      const role = server[method];
      if (role === undefined) return skipTest(t, `the server has no ${method} role`);
      const wrong = `Wrong-${method}-Pa55word!`;
      const err = await rejection(
        createPool(server.dsnFor({ user: role.user, password: wrong }), { minSize: 1, maxSize: 1 }),
      );
      assert.ok(err instanceof PostgresError, String(err));
      assert.equal(err.code, "28P01");
      assertNoSecret(err, wrong, "the error");
      assertNoSecret(err, encodeURIComponent(wrong), "the error (encoded)");
      // The same through a lazily connecting pool's acquire, with the password in the options.
      await using pool = await createTestPool({
        host: server.host,
        port: server.port,
        database: server.database,
        user: role.user,
        password: wrong,
        minSize: 0,
        maxSize: 1,
      });
      const late = await rejection(pool.acquire({ timeout: 5 }));
      assert.equal(late.code, "28P01");
      assertNoSecret(late, wrong, "the acquire error");
      assertNoSecret(pool, wrong, "String(pool)");
      assert.equal(pool.getSize(), 0);
    });
  }
});

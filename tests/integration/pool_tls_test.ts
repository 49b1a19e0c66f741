/**
 * A pool over TLS against a PostgreSQL of its own with a throwaway CA: every
 * connection is encrypted, and a query timeout cancels the query and leaves
 * the checkout usable. Ported in spirit from asyncpg's
 * test_connect.py::test_ssl_connection_pool.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createPool, PoolTimeoutError } from "../../mod.ts";
import { type PostgresInstance, startPostgres } from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";
import { createTestPool, rejection, warningLog } from "./pool_support.ts";

let certs: TestCerts;
let server: PostgresInstance;

describe("Pool over TLS (own server)", () => {
  before(async () => {
    certs = await makeTestCerts();
    server = await startPostgres({ ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
  });

  after(async () => {
    await server?.destroy();
    await certs?.remove();
  });

  it("20 workers on a verify-full pool: encrypted sessions, a timed-out query, then reuse", async () => {
    const log = warningLog();
    await using pool = await createTestPool(server.dsn, {
      minSize: 5,
      maxSize: 10,
      sslmode: "verify-full",
      sslrootcert: certs.ca.pem,
      onWarning: log.onWarning,
    });
    await Promise.all(Array.from({ length: 20 }, async () => {
      await using con = await pool.acquire({ timeout: 10 });
      assert.equal(await con.fetchVal("SELECT 42"), 42);
      assert.equal(await con.fetchVal("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), true);
      const err = await rejection(con.execute("SELECT pg_sleep(5)", [], { timeout: 0.2 }));
      assert.ok(err instanceof PoolTimeoutError);
      assert.equal(err.code, "QUERY_TIMEOUT");
      assert.equal(await con.fetchVal("SELECT 43"), 43, "the same connection works after the cancel");
    }));
    assert.equal(pool.getIdleSize(), pool.getSize());
    assert.deepEqual(log.codes(), []);
  });

  it("a pool that requires verification rejects a server signed by another CA", async () => {
    const err = await rejection(createPool(server.dsn, {
      minSize: 1,
      sslmode: "verify-full",
      sslrootcert: certs.otherCa.pem,
    }));
    assert.ok(typeof err.code === "string", String(err));
    assert.equal(err.code, "TLS_FAILED");
  });
});

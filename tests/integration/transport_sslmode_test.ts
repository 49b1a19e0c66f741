/**
 * libpq's `sslmode` values end to end: each driver over the running
 * runtime's adapter, against a server with `ssl = on` (throwaway CA) and one
 * without TLS.
 */

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import {
  getTestServer,
  type PostgresInstance,
  startPostgres,
  type TestServer,
} from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";
import { type RuntimeConnector, runtimeConnector } from "../support/tls_wire.ts";
import { currentDriver, itOnEachDriver } from "../support/drivers.ts";
import type { ConnectOptions, DriverConnection } from "../../src/core/driver.ts";
import { skipTest } from "../support/skip.ts";

let certs: TestCerts;
let tlsServer: PostgresInstance;
let plainServer: TestServer;
let adapter: RuntimeConnector;

function connect(server: TestServer, options: Partial<ConnectOptions>): Promise<DriverConnection> {
  const driver = currentDriver().create(adapter.connector, { env: {} });
  return driver.connect({
    host: server.host,
    port: server.port,
    user: server.user,
    database: server.database,
    connectTimeout: 10,
    ...options,
  });
}

async function encrypted(con: DriverConnection): Promise<boolean> {
  const { rows } = await con.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()", []);
  return rows[0]?.ssl === true;
}

async function assertConnects(
  server: TestServer,
  options: Partial<ConnectOptions>,
  tls: boolean,
): Promise<void> {
  const con = await connect(server, options);
  try {
    assert.equal(
      await encrypted(con),
      tls,
      tls ? "the session is encrypted" : "the session is in plain text",
    );
  } finally {
    await con.close();
  }
}

async function assertFails(
  server: TestServer,
  options: Partial<ConnectOptions>,
  code: string,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(connect(server, options), (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("runtime transport adapter: sslmode through the driver", () => {
  before(async () => {
    adapter = await runtimeConnector();
    certs = await makeTestCerts();
    tlsServer = await startPostgres({
      ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    });
    plainServer = await getTestServer();
  });

  after(async () => {
    await tlsServer?.destroy();
    await certs?.remove();
  });

  itOnEachDriver("disable uses plain text even when the server offers TLS", {}, async () => {
    await assertConnects(tlsServer, { sslmode: "disable" }, false);
  });

  itOnEachDriver("prefer falls back to plain text when the server has no TLS", {}, async () => {
    await assertConnects(plainServer, { sslmode: "prefer" }, false);
  });

  itOnEachDriver("require fails clearly when the server has no TLS", {}, async () => {
    await assertFails(plainServer, { sslmode: "require" }, "TLS_UNAVAILABLE", /does not accept TLS/);
  });

  itOnEachDriver("require with sslrootcert checks the chain and encrypts", {}, async () => {
    await assertConnects(tlsServer, { sslmode: "require", sslrootcert: certs.ca.pem }, true);
  });

  itOnEachDriver(
    "verify-ca with the right CA encrypts; with an unrelated CA it fails with TLS_FAILED",
    {},
    async () => {
      await assertConnects(tlsServer, { sslmode: "verify-ca", sslrootcert: certs.ca.pem }, true);
      await assertFails(
        tlsServer,
        { sslmode: "verify-ca", sslrootcert: certs.otherCa.pem },
        "TLS_FAILED",
        /TLS handshake with 127\.0\.0\.1 failed/,
      );
    },
  );

  itOnEachDriver(
    "verify-full with the right CA and host name encrypts; an unrelated CA fails with TLS_FAILED",
    {},
    async () => {
      await assertConnects(tlsServer, { sslmode: "verify-full", sslrootcert: certs.ca.pem }, true);
      await assertFails(
        tlsServer,
        { sslmode: "verify-full", sslrootcert: certs.otherCa.pem },
        "TLS_FAILED",
        /TLS handshake with 127\.0\.0\.1 failed: .*(certificate|issuer|verify)/i,
      );
    },
  );

  itOnEachDriver(
    "prefer and require without a root certificate encrypt without verifying the certificate",
    {},
    async () => {
      await assertConnects(tlsServer, { sslmode: "require" }, true);
      await assertConnects(tlsServer, { sslmode: "prefer" }, true);
    },
  );

  itOnEachDriver("a unix socket never negotiates TLS, whatever sslmode says", {}, async (t) => {
    if (plainServer.socketDir === undefined) return skipTest(t, "the server comes from DATABASE_URL");
    await assertConnects({ ...plainServer, host: plainServer.socketDir }, { sslmode: "require" }, false);
  });
});

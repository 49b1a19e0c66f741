import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  getTestServer,
  type PostgresInstance,
  startPostgres,
  type TestServer,
} from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";
import { DRIVERS, type DriverUnderTest } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { runtimeConnector } from "../support/tls_wire.ts";
import type { Driver } from "../../src/core/driver.ts";
import { ConnectionError, PoolTimeoutError } from "../../src/core/errors.ts";
import type { ConnectOptions, DriverConnection } from "../../src/core/driver.ts";

async function sslInUse(con: DriverConnection): Promise<boolean> {
  const { rows } = await con.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", []);
  return rows[0]!.ssl as boolean;
}

function suite(under: DriverUnderTest, adapter: string, driver: Driver): void {
  describe(`${under.name} TLS (SSLRequest in the neutral layer) (${adapter} adapter)`, () => {
    let certs: TestCerts;
    let tlsServer: PostgresInstance;
    let plainServer: TestServer;

    before(async () => {
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

    async function withConnection(
      options: ConnectOptions,
      fn: (con: DriverConnection) => Promise<void>,
    ): Promise<void> {
      const con = await driver.connect(options);
      try {
        await fn(con);
      } finally {
        await con.close();
      }
    }

    // Every adapter encrypts without verifying (the Deno adapter runs node:tls over its stream for that).
    it("sslmode=prefer encrypts the session when the server accepts TLS", async () => {
      await withConnection({ dsn: tlsServer.dsn, sslmode: "prefer" }, async (con) => {
        assert.equal(await sslInUse(con), true);
      });
    });

    it("sslmode=require encrypts the session when the server accepts TLS", async () => {
      await withConnection({ dsn: tlsServer.dsn, sslmode: "require" }, async (con) => {
        assert.equal(await sslInUse(con), true);
      });
    });

    it("sslmode=disable never asks for TLS", async () => {
      await withConnection({ dsn: tlsServer.dsn, sslmode: "disable" }, async (con) => {
        assert.equal(await sslInUse(con), false);
      });
    });

    it("sslmode=prefer falls back to plain text when the server declines TLS", async () => {
      await withConnection({ dsn: plainServer.dsn, sslmode: "prefer" }, async (con) => {
        assert.equal(await sslInUse(con), false);
      });
    });

    it("sslmode=require rejects with TLS_UNAVAILABLE when the server declines TLS", async () => {
      const error = await driver.connect({ dsn: plainServer.dsn, sslmode: "require" }).catch((e) => e);
      assert.ok(error instanceof ConnectionError, `got ${error}`);
      assert.equal(error.code, "TLS_UNAVAILABLE");
    });

    for (const host of ["localhost", "127.0.0.1"]) {
      it(`sslmode=verify-full accepts the server certificate for ${host} signed by the given CA`, async () => {
        await withConnection(
          { dsn: tlsServer.dsnFor({ host }), sslmode: "verify-full", sslrootcert: certs.ca.pem },
          async (con) => assert.equal(await sslInUse(con), true),
        );
      });
    }

    for (const sslmode of ["verify-ca", "verify-full"] as const) {
      it(`sslmode=${sslmode} rejects a server certificate from another CA`, async () => {
        const error = await driver.connect({ dsn: tlsServer.dsn, sslmode, sslrootcert: certs.otherCa.pem })
          .catch((
            e,
          ) => e);
        assert.ok(error instanceof ConnectionError, `got ${error}`);
        assert.equal(typeof error.code, "string");
        assert.notEqual(error.code, "TLS_UNAVAILABLE");
      });
    }

    it("a query timeout on a TLS session cancels it and the session stays usable", async () => {
      const options = { dsn: tlsServer.dsn, sslmode: "verify-full", sslrootcert: certs.ca.pem } as const;
      await withConnection(options, async (con) => {
        const error = await con.query("SELECT pg_sleep(20)", [], { timeout: 0.2 }).catch((e) => e);
        assert.ok(error instanceof PoolTimeoutError && error.code === "QUERY_TIMEOUT", `got ${error}`);
        const started = performance.now();
        assert.equal((await con.query("SELECT 1 AS one", [])).rows[0]!.one, 1);
        assert.ok(performance.now() - started < 5000);
        assert.equal(await sslInUse(con), true);
      });
    });
  });
}

const runtime = await runtimeConnector();
for (const under of DRIVERS) {
  suite(under, "node", under.create(nodeConnector));
  if (runtime.name !== "node") suite(under, runtime.name, under.create(runtime.connector));
}

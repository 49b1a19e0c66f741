/**
 * TLS through the running runtime's adapter: the `SSLRequest` exchange done by
 * hand, then `startTls()` against a PostgreSQL with `ssl = on` and a
 * throwaway CA, and against one without TLS.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  getTestServer,
  type PostgresInstance,
  startPostgres,
  type TestServer,
} from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";
import {
  dataRow,
  queryMessage,
  RawSession,
  Recorder,
  type RuntimeConnector,
  runtimeConnector,
  SSL_REQUEST,
} from "../support/tls_wire.ts";
import type { TlsOptions, TransportTarget } from "../../src/runtime/transport.ts";

let certs: TestCerts;
let tlsServer: PostgresInstance;
let plainServer: TestServer;
let adapter: RuntimeConnector;

/** Opens a transport, sends `SSLRequest`, and returns the session with the one-byte answer. */
async function requestSsl(target: TransportTarget): Promise<{ session: RawSession; answer: string }> {
  const session = new RawSession();
  session.transport = await adapter.connector(target, session.recorder, {});
  session.transport.write(SSL_REQUEST);
  await session.recorder.until(() => session.recorder.bytes >= 1);
  assert.equal(session.recorder.bytes, 1, "the server answers SSLRequest with exactly one byte");
  const answer = String.fromCharCode(session.recorder.chunks[0]![0]!);
  // The answer is not a protocol message: start the splitter from a clean slate.
  session.discardReceived();
  return { session, answer };
}

/** `SSLRequest`, `startTls(options)`, startup; resolves with the session. */
async function openTls(options: TlsOptions, hostname = "127.0.0.1"): Promise<RawSession> {
  const { session, answer } = await requestSsl({ kind: "tcp", hostname, port: tlsServer.port });
  assert.equal(answer, "S");
  await session.transport.startTls(options);
  await session.startup(tlsServer);
  return session;
}

/** Asserts that `startTls(options)` rejects with `code` and that the transport reports the close once. */
async function assertTlsRejects(options: TlsOptions, code: string, pattern: RegExp): Promise<void> {
  const { session, answer } = await requestSsl({ kind: "tcp", hostname: "127.0.0.1", port: tlsServer.port });
  assert.equal(answer, "S");
  let caught: (Error & { code?: string }) | undefined;
  await session.transport.startTls(options).catch((e) => caught = e);
  assert.ok(caught, "startTls rejected");
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  const closeError = await session.recorder.closed;
  assert.ok(closeError instanceof Error, "close carries the failure");
  assert.equal(session.recorder.closes, 1);
}

async function sslInUse(session: RawSession): Promise<string | null | undefined> {
  const rows = await session.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
  return rows[0]?.[0];
}

describe("runtime transport adapter: TLS", () => {
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

  it("verify full with the right CA and host name works, and the session is encrypted", async () => {
    const session = await openTls({ servername: "localhost", ca: [certs.ca.pem], verify: "full" });
    assert.equal(await sslInUse(session), "t");
    assert.deepEqual(await session.query("select 40 + 2"), [["42"]]);
    assert.equal(await session.close(), undefined);
  });

  it("verify full accepts the IP address the certificate names", async () => {
    const session = await openTls({ servername: "127.0.0.1", ca: [certs.ca.pem], verify: "full" });
    assert.equal(await sslInUse(session), "t");
    assert.equal(await session.close(), undefined);
  });

  it("verify full with an unrelated CA fails with TLS_FAILED naming the server", async () => {
    await assertTlsRejects(
      { servername: "localhost", ca: [certs.otherCa.pem], verify: "full" },
      "TLS_FAILED",
      /TLS handshake with localhost failed: .*(certificate|issuer|verify)/i,
    );
  });

  it("verify full with a host name the certificate does not name fails with TLS_FAILED", async () => {
    await assertTlsRejects(
      { servername: "db.wrong.example", ca: [certs.ca.pem], verify: "full" },
      "TLS_FAILED",
      /TLS handshake with db\.wrong\.example failed: .*(name|altname|NotValidFor)/i,
    );
  });

  it("verify ca accepts a host name the certificate does not name", async () => {
    const session = await openTls({ servername: "db.wrong.example", ca: [certs.ca.pem], verify: "ca" });
    assert.equal(await sslInUse(session), "t");
    assert.equal(await session.close(), undefined);
  });

  it("verify ca still rejects an unrelated CA", async () => {
    await assertTlsRejects(
      { servername: "localhost", ca: [certs.otherCa.pem], verify: "ca" },
      "TLS_FAILED",
      /TLS handshake with localhost failed/,
    );
  });

  it("verify none encrypts without checking the certificate", async () => {
    // On Deno this is node:tls over the adapter's own stream, as Deno.startTls always verifies.
    const session = await openTls({ servername: "localhost", verify: "none" });
    assert.equal(await sslInUse(session), "t");
    assert.deepEqual(await session.query("select 'over tls'"), [["over tls"]]);
    assert.equal(await session.close(), undefined, "a local end() closes without error");
    assert.equal(session.recorder.closes, 1);
  });

  it("verify none with an IP address as server name and an unrelated CA still encrypts", async () => {
    const session = await openTls({ servername: "127.0.0.1", ca: [certs.otherCa.pem], verify: "none" });
    assert.equal(await sslInUse(session), "t");
    assert.equal(await session.close(), undefined);
  });

  it("over TLS, a large result arrives whole, pause() holds it back and a 32 MB write drains", async () => {
    const watcher = await RawSession.open(
      adapter.connector,
      { kind: "tcp", hostname: "127.0.0.1", port: tlsServer.port },
      tlsServer,
    );
    for (const verify of ["full", "none"] as const) {
      const session = await openTls({ servername: "localhost", ca: [certs.ca.pem], verify });
      session.transport.pause();
      const before = session.recorder.bytes;
      session.transport.write(queryMessage("select repeat('z', 1000) from generate_series(1, 20000)"));
      // The server fills the socket buffers and then waits to write: seen from another session.
      for (;;) {
        const rows = await watcher.query(
          `select wait_event from pg_stat_activity where pid = ${session.pid}`,
        );
        if (rows[0]?.[0] === "ClientWrite") break;
      }
      assert.equal(session.recorder.bytes, before, `${verify}: no data while paused`);
      session.transport.resume();
      const messages = await session.untilReady();
      assert.equal(messages.filter((m) => m.type === "D").length, 20000, verify);
      const text = "q".repeat(32 * 1024 * 1024);
      session.transport.write(queryMessage("select pg_sleep(0.1)"));
      assert.equal(session.transport.write(queryMessage(`select length('${text}')`)), false, verify);
      await session.recorder.nextDrain();
      await session.untilReady();
      const [row] = (await session.untilReady()).filter((m) => m.type === "D");
      assert.deepEqual(dataRow(row!.body), [String(text.length)], verify);
      assert.equal(await session.close(), undefined);
    }
    assert.equal(await watcher.close(), undefined);
  });

  it("a server without TLS answers N and the same transport continues in plain text", async () => {
    const { session, answer } = await requestSsl({
      kind: "tcp",
      hostname: plainServer.host,
      port: plainServer.port,
    });
    assert.equal(answer, "N");
    await session.startup(plainServer);
    assert.deepEqual(await session.query("select 1"), [["1"]]);
    assert.equal(await session.close(), undefined);
  });

  it("startTls on a closed transport rejects with CONNECTION_CLOSED", async () => {
    const recorder = new Recorder();
    const transport = await adapter.connector(
      { kind: "tcp", hostname: "127.0.0.1", port: tlsServer.port },
      recorder,
      {},
    );
    transport.destroy();
    await recorder.closed;
    await assert.rejects(
      transport.startTls({ servername: "localhost", ca: [certs.ca.pem], verify: "full" }),
      (e: Error & { code?: string }) => e.code === "CONNECTION_CLOSED" || adapter.name === "node",
    );
  });
});

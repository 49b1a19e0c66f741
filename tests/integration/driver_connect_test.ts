import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { inspect } from "node:util";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { DRIVERS, type DriverUnderTest } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { runtimeConnector } from "../support/tls_wire.ts";
import type { Driver } from "../../src/core/driver.ts";
import { ConnectionError, InterfaceError, PoolTimeoutError, PostgresError } from "../../src/core/errors.ts";
import type { DriverConnection } from "../../src/core/driver.ts";
import { skipTest } from "../support/skip.ts";

/** A TCP server that accepts connections and never says a word. */
async function blackHole(): Promise<{ port: number; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.on("data", () => {}); // read, so the peer's close is seen
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves once the black hole has no open socket left. */
async function drained(sockets: Set<net.Socket>): Promise<void> {
  await Promise.all([...sockets].map((s) => new Promise((resolve) => s.once("close", resolve))));
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function assertNoSecret(error: unknown, secret: string): void {
  const err = error as Error;
  assert.ok(!err.message.includes(secret), "password in message");
  assert.ok(!String(err).includes(secret), "password in String(error)");
  assert.ok(!inspect(err, { depth: 10, showHidden: true }).includes(secret), "password in inspect output");
}

function suite(under: DriverUnderTest, adapter: string, driver: Driver): void {
  describe(`${under.name}.connect() (${adapter} adapter)`, () => {
    let server: TestServer;
    const open: DriverConnection[] = [];

    before(async () => {
      server = await getTestServer();
    });

    after(() => {
      for (const con of open) con.terminate();
    });

    it("connect() resolves an open connection whose pid matches pg_backend_pid()", async () => {
      const con = await driver.connect({ dsn: server.dsn });
      open.push(con);
      const { rows } = await con.query("SELECT pg_backend_pid() AS pid, current_user AS who", []);
      assert.equal(rows[0]!.pid, con.pid);
      assert.equal(rows[0]!.who, server.user);
      assert.ok(con.serverVersion.major >= 9);
      assert.equal(con.transactionStatus, "idle");
      assert.equal(con.isClosed(), false);
      const { rows: v } = await con.query("SELECT current_setting('server_version_num')::int AS n", []);
      assert.equal(Math.floor((v[0]!.n as number) / 10000), con.serverVersion.major);
    });

    it("connect() reaches the server over its unix socket when host is a directory", async (t) => {
      if (server.socketDir === undefined) return skipTest(t, "no unix socket for DATABASE_URL servers");
      const con = await driver.connect({ dsn: server.dsnFor({ host: server.socketDir }) });
      open.push(con);
      const { rows } = await con.query("SELECT inet_server_addr() IS NULL AS local", []);
      assert.equal(rows[0]!.local, true);
      // The cancel request goes through the same unix socket.
      const error = await con.query("SELECT pg_sleep(20)", [], { timeout: 0.1 }).catch((e) => e);
      assert.ok(error instanceof PoolTimeoutError && error.code === "QUERY_TIMEOUT", `got ${error}`);
      assert.equal((await con.query("SELECT 3 AS three", [])).rows[0]!.three, 3);
      con.terminate();
    });

    it("connect() passes application_name and extra startup parameters to the server", async () => {
      const con = await driver.connect({
        dsn: `${server.dsn}${
          server.dsn.includes("?") ? "&" : "?"
        }application_name=drv-test&search_path=pg_catalog`,
        params: { statement_timeout: "4321" },
      });
      open.push(con);
      const { rows } = await con.query(
        "SELECT current_setting('application_name') AS a, current_setting('search_path') AS s, current_setting('statement_timeout') AS t",
        [],
      );
      assert.deepEqual(rows[0], { a: "drv-test", s: "pg_catalog", t: "4321ms" });
      con.terminate();
    });

    for (const kind of ["md5", "scram"] as const) {
      it(`connect() authenticates with ${kind} and rejects a wrong password with 28P01, never showing it`, async (t) => {
        const role = server[kind];
        if (role === undefined) return skipTest(t, `no ${kind} role on this server`);
        const con = await driver.connect({
          dsn: server.dsnFor({ user: role.user, password: role.password }),
        });
        const { rows } = await con.query("SELECT current_user AS who", []);
        assert.equal(rows[0]!.who, role.user);
        assert.ok(!String(con).includes(role.password));
        assert.ok(!inspect(con, { depth: 10, showHidden: true }).includes(role.password));
        await con.close();

        const wrong = `Wr0ng-${kind}-pw-91731`;
        const error = await driver.connect({ dsn: server.dsnFor({ user: role.user, password: wrong }) }).then(
          () => assert.fail("connected with a wrong password"),
          (e: unknown) => e,
        );
        assert.ok(error instanceof PostgresError, `got ${error}`);
        assert.equal(error.code, "28P01");
        assert.match(error.message, /password authentication failed/);
        assertNoSecret(error, wrong);
      });
    }

    it("connect() reads no setting from the process environment, only from the env it is given", async () => {
      const env = (globalThis as { process: { env: Record<string, string | undefined> } }).process.env;
      const saved = env.PGAPPNAME;
      env.PGAPPNAME = "leaked-from-process-env";
      try {
        const con = await driver.connect({ dsn: server.dsn });
        open.push(con);
        const { rows } = await con.query("SELECT current_setting('application_name') AS a", []);
        assert.notEqual(rows[0]!.a, "leaked-from-process-env");
        con.terminate();
      } finally {
        if (saved === undefined) delete env.PGAPPNAME;
        else env.PGAPPNAME = saved;
      }
      const given = under.create(nodeConnector, { env: { PGAPPNAME: "from-injected-env" } });
      const con = await given.connect({ dsn: server.dsn });
      open.push(con);
      const { rows } = await con.query("SELECT current_setting('application_name') AS a", []);
      assert.equal(rows[0]!.a, "from-injected-env");
      con.terminate();
    });

    it("connect() rejects with ECONNREFUSED when nothing listens", async () => {
      const port = await closedPort();
      const error = await driver.connect({ host: "127.0.0.1", port, user: "x", sslmode: "disable" }).catch((
        e,
      ) => e);
      assert.ok(error instanceof ConnectionError, `got ${error}`);
      assert.equal(error.code, "ECONNREFUSED");
    });

    for (const sslmode of ["prefer", "disable"] as const) {
      it(`connect() rejects with CONNECT_TIMEOUT at connectTimeout when the server never answers (sslmode=${sslmode})`, async () => {
        const hole = await blackHole();
        try {
          const started = performance.now();
          const error = await driver.connect({
            host: "127.0.0.1",
            port: hole.port,
            user: "x",
            password: "black-hole-secret",
            sslmode,
            connectTimeout: 0.3,
          }).catch((e) => e);
          const elapsed = performance.now() - started;
          assert.ok(error instanceof PoolTimeoutError, `got ${error}`);
          assert.equal(error.code, "CONNECT_TIMEOUT");
          assert.equal(error.name, "TimeoutError");
          assert.ok(elapsed >= 250 && elapsed < 2000, `took ${elapsed}ms`);
          assertNoSecret(error, "black-hole-secret");
          await drained(hole.sockets);
          assert.equal(hole.sockets.size, 0);
        } finally {
          await hole.close();
        }
      });
    }

    it("connect() rejects with signal.reason when aborted and leaves no socket open", async () => {
      const hole = await blackHole();
      try {
        const controller = new AbortController();
        const reason = new Error("stop connecting");
        const pending = driver.connect({
          host: "127.0.0.1",
          port: hole.port,
          user: "x",
          signal: controller.signal,
        });
        while (hole.sockets.size === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        controller.abort(reason);
        await assert.rejects(pending, (e) => e === reason);
        await drained(hole.sockets);
        assert.equal(hole.sockets.size, 0);
      } finally {
        await hole.close();
      }
    });

    it("connect() rejects a bad DSN with INVALID_DSN and no password in the message", async () => {
      const error = await driver.connect({ dsn: "postgres://u:Sup3rSecret@localhost:port/db" }).catch((e) =>
        e
      );
      assert.ok(error instanceof InterfaceError, `got ${error}`);
      assert.equal(error.code, "INVALID_DSN");
      assertNoSecret(error, "Sup3rSecret");
    });

    it("connect() tries the hosts of a multi-host DSN in order", async () => {
      const port = await closedPort();
      const url = new URL(server.dsn);
      const dsn = `postgres://${url.username}@127.0.0.1:${port},${url.hostname}:${url.port}${url.pathname}`;
      const con = await driver.connect({ dsn, sslmode: "disable" });
      open.push(con);
      const { rows } = await con.query("SELECT 1 AS one", []);
      assert.equal(rows[0]!.one, 1);
      con.terminate();
    });

    it("connect() with target_session_attrs=read-only rejects a primary", async () => {
      const error = await driver.connect({ dsn: server.dsn, targetSessionAttrs: "read-only" }).catch((e) =>
        e
      );
      assert.ok(error instanceof ConnectionError, `got ${error}`);
      assert.equal(error.code, "SESSION_ATTRS_MISMATCH");
    });
  });
}

const runtime = await runtimeConnector();
for (const under of DRIVERS) {
  suite(under, "node", under.create(nodeConnector));
  if (runtime.name !== "node") suite(under, runtime.name, under.create(runtime.connector));
}

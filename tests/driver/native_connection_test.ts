import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { createNativeDriver } from "../../src/drivers/native/driver.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import type { DriverConnection } from "../../src/core/driver.ts";
import { ConnectionError, InterfaceError, PoolTimeoutError, PostgresError } from "../../src/core/errors.ts";

const driver = createNativeDriver(nodeConnector);

describe("NativeConnection", () => {
  let server: TestServer;
  const open: DriverConnection[] = [];
  const connect = async (extra: Record<string, unknown> = {}): Promise<DriverConnection> => {
    const con = await driver.connect({ dsn: server.dsn, ...extra });
    open.push(con);
    return con;
  };

  before(async () => {
    server = await getTestServer();
  });
  after(() => {
    for (const con of open) con.terminate();
  });

  it("connect() opens a connection whose pid, version and status come from the stream", async () => {
    const con = await connect();
    const { rows } = await con.query(
      "SELECT pg_backend_pid() AS pid, current_setting('server_version_num')::int AS n",
      [],
    );
    assert.equal(rows[0]!.pid, con.pid);
    assert.equal(Math.floor((rows[0]!.n as number) / 10000), con.serverVersion.major);
    assert.equal(con.transactionStatus, "idle");
  });

  for (const kind of ["md5", "scram"] as const) {
    it(`connect() authenticates with ${kind} and rejects a wrong password with 28P01`, async (t) => {
      const role =
        (server as unknown as Record<string, { user: string; password: string } | undefined>)[kind];
      if (role === undefined) return t.skip(`no ${kind} role`);
      const con = await driver.connect({ dsn: server.dsnFor({ user: role.user, password: role.password }) });
      assert.equal((await con.query("SELECT current_user AS who", [])).rows[0]!.who, role.user);
      await con.close();
      const error = await driver.connect({ dsn: server.dsnFor({ user: role.user, password: "wrong" }) })
        .catch((e) => e);
      assert.ok(error instanceof PostgresError && error.code === "28P01", `got ${error}`);
    });
  }

  it("query() decodes values by type oid as postgres.js does", async () => {
    const con = await connect();
    const { rows, columns, command } = await con.query(
      "SELECT $1::int AS i, $2::int8 AS big, $3::text AS t, $4::jsonb AS j, ARRAY[1,2] AS a, NULL::int AS n, true AS b",
      [5, "9007199254740993", "héllo", { x: 1 }],
    );
    assert.deepEqual(rows, [{
      i: 5,
      big: "9007199254740993",
      t: "héllo",
      j: { x: 1 },
      a: [1, 2],
      n: null,
      b: true,
    }]);
    assert.deepEqual(columns, ["i", "big", "t", "j", "a", "n", "b"]);
    assert.equal(command, "SELECT 1");
  });

  it("query() prepares a text run twice as a named statement, at most statementCacheSize of them", async () => {
    const con = await connect({ statementCacheSize: 1 });
    const count = async (): Promise<number> =>
      Number((await con.query("SELECT count(*)::int AS n FROM pg_prepared_statements", [])).rows[0]!.n);
    for (let i = 0; i < 3; i++) {
      assert.equal((await con.query("SELECT $1::int + 1 AS v", [i])).rows[0]!.v, i + 1);
    }
    assert.equal(await count(), 1);
    for (let i = 0; i < 3; i++) await con.query("SELECT $1::int + 2 AS v", [i]);
    assert.equal(await count(), 1);
  });

  it("query() never prepares with prepare: false", async () => {
    const con = await connect({ prepare: false });
    for (let i = 0; i < 3; i++) await con.query("SELECT $1::int AS v", [i]);
    const { rows } = await con.query("SELECT count(*)::int AS n FROM pg_prepared_statements", []);
    assert.equal(rows[0]!.n, 0);
  });

  it("query() runs multi-statement text as a simple query", async () => {
    const con = await connect();
    const r = await con.query(
      "CREATE TEMP TABLE m(x int); INSERT INTO m VALUES (1),(2); SELECT sum(x)::int AS s FROM m",
      [],
    );
    assert.deepEqual(r.rows, [{ s: 3 }]);
  });

  it("query() rejects with every error field and leaves the connection usable", async () => {
    const con = await connect();
    await con.query("CREATE TEMP TABLE u(id int CONSTRAINT u_pk PRIMARY KEY)", []);
    await con.query("INSERT INTO u VALUES (1)", []);
    const error = await con.query("INSERT INTO u VALUES ($1)", [1]).catch((e) => e);
    assert.ok(error instanceof PostgresError);
    assert.equal(error.code, "23505");
    assert.equal(error.constraint, "u_pk");
    assert.equal(error.table, "u");
    assert.equal(error.severity, "ERROR");
    assert.ok(error.detail?.includes("(id)=(1)"));
    assert.equal((await con.query("SELECT 1 AS one", [])).rows[0]!.one, 1);
  });

  it("transactionStatus follows BEGIN, a failed statement and ROLLBACK", async () => {
    const con = await connect();
    await con.query("BEGIN", []);
    assert.equal(con.transactionStatus, "transaction");
    await con.query("SELECT 1/0", []).catch(() => {});
    assert.equal(con.transactionStatus, "failed");
    await con.query("ROLLBACK", []);
    assert.equal(con.transactionStatus, "idle");
  });

  it("pipelined queries resolve in order", async () => {
    const con = await connect();
    const all = await Promise.all(
      Array.from({ length: 50 }, (_, i) => con.query("SELECT $1::int AS i", [i])),
    );
    assert.deepEqual(all.map((r) => r.rows[0]!.i), Array.from({ length: 50 }, (_, i) => i));
  });

  it("queryMany() runs all or nothing", async () => {
    const con = await connect();
    await con.query("CREATE TEMP TABLE q(x int PRIMARY KEY)", []);
    const error = await con.queryMany("INSERT INTO q VALUES ($1)", [[1], [2], [1]]).catch((e) => e);
    assert.ok(error instanceof PostgresError && error.code === "23505");
    assert.equal((await con.query("SELECT count(*)::int AS n FROM q", [])).rows[0]!.n, 0);
    const ok = await con.queryMany("INSERT INTO q VALUES ($1)", [[1], [2]]);
    assert.deepEqual(ok.map((r) => r.command), ["INSERT 0 1", "INSERT 0 1"]);
  });

  it("query() past its timeout is cancelled with QUERY_TIMEOUT and the connection stays usable", async () => {
    const con = await connect();
    const error = await con.query("SELECT pg_sleep(20)", [], { timeout: 0.1 }).catch((e) => e);
    assert.ok(error instanceof PoolTimeoutError && error.code === "QUERY_TIMEOUT", `got ${error}`);
    assert.equal((await con.query("SELECT 2 AS two", [])).rows[0]!.two, 2);
  });

  it("listen() delivers notifications with channel and sender pid", async () => {
    const con = await connect();
    const other = await connect();
    const got = new Promise<[string, string, number]>((resolve) =>
      con.listen("native chan", (payload, channel, pid) => resolve([payload, channel, pid]))
    );
    await new Promise((r) => setTimeout(r, 0));
    await con.query("SELECT 1", []);
    await other.query("SELECT pg_notify('native chan', 'hi')", []);
    assert.deepEqual(await got, ["hi", "native chan", other.pid]);
  });

  it("copyIn() and copyOut() move rows both ways", async () => {
    const con = await connect();
    await con.query("CREATE TEMP TABLE c(x int, y text)", []);
    async function* source(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < 100; i++) yield new TextEncoder().encode(`${i}\trow ${i}\n`);
    }
    assert.equal(await con.copyIn("COPY c FROM STDIN", source()), "COPY 100");
    const chunks: Uint8Array[] = [];
    const tag = await con.copyOut("COPY c TO STDOUT", async (chunk) => {
      await Promise.resolve();
      chunks.push(chunk);
    });
    assert.equal(tag, "COPY 100");
    const text = chunks.map((c) => new TextDecoder().decode(c)).join("");
    assert.equal(text.split("\n").length, 101);
    assert.ok(text.startsWith("0\trow 0\n"));
  });

  it("reset() clears SET, advisory locks, LISTEN and rolls back; a committed temp table stays, as with asyncpg's reset", async () => {
    const con = await connect();
    await con.query("SET search_path = pg_catalog", []);
    await con.query("CREATE TEMP TABLE r(x int)", []);
    await con.query("SELECT pg_advisory_lock(4242)", []);
    await con.listen("reset_chan", () => {});
    await con.query("BEGIN", []);
    await con.reset({ query: true });
    assert.equal(con.transactionStatus, "idle");
    const { rows } = await con.query(
      "SELECT current_setting('search_path') AS sp, to_regclass('pg_temp.r') IS NULL AS gone," +
        " (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks," +
        " (SELECT count(*)::int FROM pg_listening_channels()) AS chans",
      [],
    );
    assert.deepEqual(rows[0], { sp: '"$user", public', gone: false, locks: 0, chans: 0 });
  });

  it("reset({ pipeline: true }) resolves at once and later statements run after it", async () => {
    const con = await connect();
    await con.query("SET application_name = 'x'", []);
    await con.reset({ query: true, pipeline: true, timeout: 5 });
    const { rows } = await con.query("SELECT current_setting('application_name') AS a", []);
    assert.equal(rows[0]!.a, "");
  });

  it("a backend killed with pg_terminate_backend closes the connection with an error, never reconnecting", async () => {
    const con = await connect();
    const other = await connect();
    const closed = new Promise<Error | undefined>((resolve) => con.onClose(resolve));
    await other.query("SELECT pg_terminate_backend($1)", [con.pid]);
    const error = await closed;
    assert.ok(error instanceof PostgresError || error instanceof ConnectionError, `got ${error}`);
    assert.equal(con.isClosed(), true);
    const later = await con.query("SELECT 1", []).catch((e) => e);
    assert.ok(later instanceof InterfaceError && later.code === "CONNECTION_CLOSED");
  });

  it("close() ends the session and onClose gets no error", async () => {
    const con = await connect();
    const closed = new Promise<Error | undefined>((resolve) => con.onClose(resolve));
    await con.close({ timeout: 5 });
    assert.equal(await closed, undefined);
    assert.equal(con.isClosed(), true);
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { DRIVERS, type DriverUnderTest } from "../support/drivers.ts";
import { nodeConnector } from "../../src/runtime/node.ts";
import { runtimeConnector } from "../support/tls_wire.ts";
import type { Connector } from "../../src/runtime/transport.ts";
import type { PostgresErrorFields } from "../../src/core/errors.ts";
import { InterfaceError, PoolError, PoolTimeoutError, PostgresError } from "../../src/core/errors.ts";
import type { DriverConnection } from "../../src/core/driver.ts";

function closedOnce(con: DriverConnection): { fired: Promise<Error | undefined>; count: () => number } {
  let count = 0;
  let resolve!: (e: Error | undefined) => void;
  const fired = new Promise<Error | undefined>((r) => (resolve = r));
  con.onClose((error) => {
    count++;
    resolve(error);
  });
  return { fired, count: () => count };
}

async function rejectsWith(
  promise: Promise<unknown>,
  check: (e: unknown) => boolean,
  what: string,
): Promise<void> {
  const error = await promise.then(() => assert.fail(`expected ${what}`), (e: unknown) => e);
  assert.ok(check(error), `expected ${what}, got ${error}`);
}

function suite(adapter: string, connector: Connector, under: DriverUnderTest): void {
  const driver = under.create(connector);
  describe(`${under.name}: a connection (${adapter} adapter)`, () => {
    let server: TestServer;
    let admin: DriverConnection;
    const open: DriverConnection[] = [];

    async function connect(applicationName?: string): Promise<DriverConnection> {
      const con = await driver.connect({ dsn: server.dsn, applicationName });
      open.push(con);
      return con;
    }

    async function backendsNamed(name: string): Promise<number> {
      const { rows } = await admin.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
        [name],
      );
      return rows[0]!.n as number;
    }

    /** Waits (bounded) until no backend is named `name`: a terminated backend exits just after it said so. */
    async function gone(name: string): Promise<void> {
      const until = Date.now() + 5000;
      while (await backendsNamed(name) !== 0) {
        assert.ok(Date.now() < until, `a backend named ${name} is still there after 5 s`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }

    before(async () => {
      server = await getTestServer();
      admin = await driver.connect({ dsn: server.dsn });
    });

    after(() => {
      for (const con of open) con.terminate();
      admin.terminate();
    });

    it("transactionStatus follows BEGIN, a failed statement, ROLLBACK and COMMIT", async () => {
      const con = await connect();
      assert.equal(con.transactionStatus, "idle");
      await con.query("BEGIN", []);
      assert.equal(con.transactionStatus, "transaction");
      await assert.rejects(
        con.query("SELECT 1/0", []),
        (e) => e instanceof PostgresError && e.code === "22012",
      );
      assert.equal(con.transactionStatus, "failed");
      await con.query("ROLLBACK", []);
      assert.equal(con.transactionStatus, "idle");
      await con.query("BEGIN", []);
      await con.query("SELECT 1", []);
      assert.equal(con.transactionStatus, "transaction");
      await con.query("COMMIT", []);
      assert.equal(con.transactionStatus, "idle");
    });

    it("query() returns rows, columns and the exact command tag", async () => {
      const con = await connect();
      await con.query("CREATE TEMP TABLE tags (a int PRIMARY KEY, b text)", []);
      const insert = await con.query("INSERT INTO tags VALUES ($1, $2), ($3, $4)", [1, "x", 2, "y"]);
      assert.equal(insert.command, "INSERT 0 2");
      const update = await con.query("UPDATE tags SET b = 'z'", []);
      assert.equal(update.command, "UPDATE 2");
      const select = await con.query("SELECT a, b FROM tags ORDER BY a", []);
      assert.deepEqual(select, {
        rows: [{ a: 1, b: "z" }, { a: 2, b: "z" }],
        columns: ["a", "b"],
        command: "SELECT 2",
      });
      const create = await con.query("CREATE TEMP TABLE other (x int)", []);
      assert.deepEqual(create, { rows: [], columns: [], command: "CREATE TABLE" });
      const many = await con.queryMany("INSERT INTO tags VALUES ($1, $2)", [[3, "a"], [4, "b"], [5, "c"]]);
      assert.deepEqual(many.map((r) => r.command), ["INSERT 0 1", "INSERT 0 1", "INSERT 0 1"]);
      const del = await con.query("DELETE FROM tags WHERE a > $1", [2]);
      assert.equal(del.command, "DELETE 3");
    });

    it("query() parses built-in arrays and sends JavaScript arrays as array parameters", async () => {
      const con = await connect();
      const { rows } = await con.query(
        "SELECT $1::int[] AS ints, ARRAY['a b', NULL, 'c\"d']::text[] AS texts, ARRAY[[true,false]] AS bools, $2::text[] AS echo",
        [[1, 2, 3], ["x", null, 'y"z']],
      );
      assert.deepEqual(rows[0], {
        ints: [1, 2, 3],
        texts: ["a b", null, 'c"d'],
        bools: [[true, false]],
        echo: ["x", null, 'y"z'],
      });
    });

    it("queryCount counts every statement round, the reset and rollback included", async () => {
      const con = await connect();
      const start = con.queryCount;
      await con.query("SELECT 1", []);
      await con.queryMany("SELECT $1::int", [[1], [2], [3]]);
      assert.equal(con.queryCount, start + 4);
      await con.query("BEGIN", []);
      await con.reset({ query: true });
      assert.equal(con.queryCount, start + 7);
    });

    it("server errors keep SQLSTATE, detail, hint, position, table and constraint", async () => {
      const con = await connect();
      await con.query("CREATE TEMP TABLE uniq (id int CONSTRAINT uniq_pk PRIMARY KEY)", []);
      await con.query("INSERT INTO uniq VALUES (1)", []);
      const dup = await con.query("INSERT INTO uniq VALUES ($1)", [1]).catch((e) => e);
      assert.ok(dup instanceof PostgresError && dup instanceof PoolError);
      assert.equal(dup.code, "23505");
      assert.equal(dup.constraint, "uniq_pk");
      assert.equal(dup.table, "uniq");
      assert.match(dup.detail ?? "", /Key \(id\)=\(1\) already exists/);
      assert.equal(dup.severity, "ERROR");

      const syntax = await con.query("SELECT * FROM", []).catch((e) => e);
      assert.equal(syntax.code, "42601");
      assert.equal(syntax.position, 14);

      const raised = await con.query(
        "DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'P0001', DETAIL = 'the detail', HINT = 'the hint'; END $$",
        [],
      ).catch((e) => e);
      assert.ok(raised instanceof PostgresError);
      assert.deepEqual([raised.code, raised.message, raised.detail, raised.hint], [
        "P0001",
        "boom",
        "the detail",
        "the hint",
      ]);
      assert.equal((await con.query("SELECT 1 AS ok", [])).rows[0]!.ok, 1);
    });

    it("a server-side kill closes the connection for good: onClose fires once, later calls reject CONNECTION_CLOSED, nothing reconnects", async () => {
      const name = `drv-kill-${Date.now()}`;
      const con = await connect(name);
      const closed = closedOnce(con);
      await con.query("SET application_name = 'still-" + name + "'", []);
      await admin.query("SELECT pg_terminate_backend($1)", [con.pid]);
      const error = await closed.fired;
      assert.ok(error instanceof PostgresError, `onClose gets the server's error, got ${error}`);
      assert.equal(error.code, "57P01");
      assert.equal(con.isClosed(), true);
      await rejectsWith(
        con.query("SELECT 1", []),
        (e) => e instanceof InterfaceError && e.code === "CONNECTION_CLOSED",
        "CONNECTION_CLOSED",
      );
      await rejectsWith(
        con.reset({ query: true }),
        (e) => e instanceof InterfaceError && e.code === "CONNECTION_CLOSED",
        "CONNECTION_CLOSED from reset",
      );
      // The backend sends its FATAL error before it exits: pg_stat_activity may list it a moment longer.
      await gone(name);
      await gone(`still-${name}`);
      assert.equal(closed.count(), 1);
    });

    it("a kill during a query rejects that query, closes the connection and never reuses the instance", async () => {
      const name = `drv-midkill-${Date.now()}`;
      const con = await connect(name);
      const closed = closedOnce(con);
      const running = con.query("SELECT pg_sleep(30)", []);
      running.catch(() => {});
      while (true) {
        const { rows } = await admin.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
          [con.pid],
        );
        if (rows[0]!.n === 1) break;
      }
      await admin.query("SELECT pg_terminate_backend($1)", [con.pid]);
      const error = await running.catch((e) => e);
      assert.ok(error instanceof PoolError, `got ${error}`);
      assert.ok(error instanceof PostgresError, `got ${error}`);
      assert.equal(error.code, "57P01");
      await closed.fired;
      await rejectsWith(
        con.query("SELECT 1", []),
        (e) => e instanceof InterfaceError && e.code === "CONNECTION_CLOSED",
        "CONNECTION_CLOSED",
      );
      await gone(name);
    });

    it("a query timeout rejects at the deadline with QUERY_TIMEOUT, cancels on the server and leaves the connection usable", async () => {
      const con = await connect();
      const pid = con.pid;
      const started = performance.now();
      await rejectsWith(
        con.query("SELECT pg_sleep(20)", [], { timeout: 0.2 }),
        (e) => e instanceof PoolTimeoutError && e.code === "QUERY_TIMEOUT" && e.name === "TimeoutError",
        "QUERY_TIMEOUT",
      );
      const rejectedAfter = performance.now() - started;
      assert.ok(rejectedAfter >= 190 && rejectedAfter < 1500, `rejected after ${rejectedAfter}ms`);
      const { rows } = await con.query("SELECT pg_backend_pid() AS pid", []);
      assert.equal(rows[0]!.pid, pid);
      assert.ok(performance.now() - started < 5000, "the sleeping query was cancelled on the server");
      assert.equal(con.isClosed(), false);
      assert.equal(con.transactionStatus, "idle");
    });

    it("a cancelled query that does not finish within cancelGrace closes the connection with QUERY_TIMEOUT", async () => {
      const impatient = under.create(connector, { cancelGrace: 0.3 });
      const con = await impatient.connect({ dsn: server.dsn });
      open.push(con);
      const closed = closedOnce(con);
      // Every cancel is caught and the statement sleeps on: it does not end (a single handler was not
      // enough: a cancel could escape it).
      const stubborn =
        "DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(20); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$";
      // 1 s, not less: the deadline must find the statement running (on a loaded machine a shorter one
      // can pass before it is even sent, and then there is nothing to cancel)
      await rejectsWith(
        con.query(stubborn, [], { timeout: 1 }),
        (e) => e instanceof PoolTimeoutError && e.code === "QUERY_TIMEOUT",
        "QUERY_TIMEOUT",
      );
      const error = await closed.fired;
      assert.ok(error instanceof PoolTimeoutError && error.code === "QUERY_TIMEOUT", `got ${error}`);
      assert.equal(con.isClosed(), true);
      await rejectsWith(
        con.query("SELECT 1", []),
        (e) => e instanceof InterfaceError && e.code === "CONNECTION_CLOSED",
        "CONNECTION_CLOSED",
      );
    });

    it("server notices go to the onNotice setting", async () => {
      const notices: PostgresErrorFields[] = [];
      const con = await under.create(connector, { onNotice: (n) => notices.push(n) }).connect({
        dsn: server.dsn,
      });
      open.push(con);
      await con.query("DO $$ BEGIN RAISE NOTICE 'heads up' USING HINT = 'just a hint'; END $$", []);
      assert.equal(notices.length, 1);
      assert.equal(notices[0]!.message, "heads up");
      assert.equal(notices[0]!.hint, "just a hint");
      assert.equal(notices[0]!.severity, "NOTICE");
    });

    it("an aborted signal rejects the query with signal.reason and cancels it", async () => {
      const con = await connect();
      const controller = new AbortController();
      const reason = new Error("user gave up");
      const pending = con.query("SELECT pg_sleep(20)", [], { signal: controller.signal });
      setTimeout(() => controller.abort(reason), 100);
      await rejectsWith(pending, (e) => e === reason, "signal.reason");
      const { rows } = await con.query("SELECT 2 AS two", []);
      assert.equal(rows[0]!.two, 2);
    });

    it("reset() after a timed-out query in a transaction waits for the cancel, rolls back and keeps the pid", async () => {
      const con = await connect();
      const pid = con.pid;
      await con.query("BEGIN", []);
      await rejectsWith(
        con.query("SELECT pg_sleep(20)", [], { timeout: 0.1 }),
        (e) => e instanceof PoolTimeoutError && e.code === "QUERY_TIMEOUT",
        "QUERY_TIMEOUT",
      );
      await con.reset({ query: true });
      assert.equal(con.transactionStatus, "idle");
      assert.equal(con.pid, pid);
      assert.equal((await con.query("SELECT pg_backend_pid() AS p", [])).rows[0]!.p, pid);
    });

    it("reset({ query: true }) removes settings, advisory locks, listeners, held cursors and the transaction on the same backend", async () => {
      const con = await connect();
      const pid = con.pid;
      await con.query("SET search_path = pg_catalog", []);
      await con.query("SELECT pg_advisory_lock(4242)", []);
      await con.listen("reset_chan", () => {});
      await con.query("BEGIN", []);
      await con.query("DECLARE held CURSOR WITH HOLD FOR SELECT 1", []);
      await con.query("COMMIT", []);
      await con.query("BEGIN", []);
      await con.query("SELECT 1", []);
      assert.equal(con.transactionStatus, "transaction");

      await con.reset({ query: true });

      assert.equal(con.transactionStatus, "idle");
      const { rows } = await con.query(
        `SELECT pg_backend_pid() AS pid,
              current_setting('search_path') AS search_path,
              (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
              (SELECT count(*)::int FROM pg_listening_channels()) AS channels,
              (SELECT count(*)::int FROM pg_cursors) AS cursors`,
        [],
      );
      assert.deepEqual(rows[0], { pid, search_path: '"$user", public', locks: 0, channels: 0, cursors: 0 });
    });

    it("reset({ query: false }) only rolls back an open transaction", async () => {
      const con = await connect();
      await con.query("SET search_path = pg_catalog", []);
      const before = con.queryCount;
      await con.reset({ query: false });
      assert.equal(con.queryCount, before, "no statement is sent for an idle session");
      await con.query("BEGIN", []);
      await con.query("SELECT 1/0", []).catch(() => {});
      assert.equal(con.transactionStatus, "failed");
      await con.reset({ query: false });
      assert.equal(con.transactionStatus, "idle");
      const { rows } = await con.query("SELECT current_setting('search_path') AS s", []);
      assert.equal(rows[0]!.s, "pg_catalog");
    });

    it("reset() with an aborted signal terminates the connection and rejects with the reason", async () => {
      const con = await connect();
      const closed = closedOnce(con);
      const reason = new Error("no time");
      await rejectsWith(
        con.reset({ query: true, signal: AbortSignal.abort(reason) }),
        (e) => e === reason,
        "reason",
      );
      assert.equal(con.isClosed(), true);
      assert.equal(await closed.fired, undefined);
    });

    it("listen() delivers notifications on this connection with payload, channel and sender pid; unlisten() stops them", async () => {
      const con = await connect();
      const got: unknown[] = [];
      let wake: () => void = () => {};
      const listener = (payload: string, channel: string, pid: number): void => {
        got.push([payload, channel, pid]);
        wake();
      };
      const next = (): Promise<void> => new Promise((resolve) => (wake = resolve));
      await con.listen('odd "chan"', listener);
      await con.listen("marker", listener);
      let arrived = next();
      await admin.query("SELECT pg_notify($1, $2)", ['odd "chan"', "hello"]);
      await arrived;
      assert.deepEqual(got, [["hello", 'odd "chan"', admin.pid]]);

      await con.unlisten('odd "chan"');
      arrived = next();
      await admin.query("SELECT pg_notify($1, 'dropped'), pg_notify('marker', 'after')", ['odd "chan"']);
      await arrived;
      assert.deepEqual(got.slice(1), [["after", "marker", admin.pid]]);
      const { rows } = await con.query(
        "SELECT array_to_string(array(SELECT pg_listening_channels()), ',') AS c",
        [],
      );
      assert.equal(rows[0]!.c, "marker");
    });

    it("close() ends the session gracefully and tells the onClose listener once, without an error", async () => {
      const name = `drv-close-${Date.now()}`;
      const con = await connect(name);
      const closed = closedOnce(con);
      await con.close({ timeout: 5 });
      assert.equal(await closed.fired, undefined);
      assert.equal(con.isClosed(), true);
      await rejectsWith(
        con.query("SELECT 1", []),
        (e) => e instanceof InterfaceError && e.code === "CONNECTION_CLOSED",
        "CONNECTION_CLOSED",
      );
      await con.close();
      assert.equal(closed.count(), 1);
      while (await backendsNamed(name) !== 0) await new Promise((resolve) => setTimeout(resolve, 10));
    });

    it("terminate() closes at once and rejects a running query", async () => {
      const con = await connect();
      const closed = closedOnce(con);
      const running = con.query("SELECT pg_sleep(20)", []);
      running.catch(() => {});
      // terminate while the statement runs on the server (seen there), not after a guessed delay
      for (;;) {
        const { rows } = await admin.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
          [con.pid],
        );
        if (rows[0]!.n === 1) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      con.terminate();
      assert.equal(con.isClosed(), true);
      await rejectsWith(running, (e) => e instanceof PoolError, "a PoolError");
      assert.equal(await closed.fired, undefined);
      assert.equal(closed.count(), 1);
    });
  });
}

const runtime = await runtimeConnector();
for (const under of DRIVERS) {
  suite("node", nodeConnector, under);
  if (runtime.name !== "node") suite(runtime.name, runtime.connector, under);
}

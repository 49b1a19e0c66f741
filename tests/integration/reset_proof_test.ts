/**
 * Can the server prove that a statement of the session reset is not needed (issue 16, point 4)?
 * The candidate was `CLOSE ALL`: a cursor outlives its transaction only `WITH HOLD`, and a top-level
 * `DECLARE` is answered with the command tag `DECLARE CURSOR`, so a driver that saw no such tag since
 * the last reset might leave `CLOSE ALL` out. This file tries every way PostgreSQL offers to leave a
 * cursor open past the statement's transaction, and the same for the state of the other reset
 * statements, and records for each what reached the client: every command tag and every
 * `ParameterStatus` on the wire (a tap under the runtime's socket), then what the session holds
 * afterwards (`pg_cursors`, `pg_locks`, `pg_listening_channels()`, `pg_settings`).
 *
 * **The result: no.** A cursor `WITH HOLD` declared by anything that runs SQL inside a statement is
 * never announced: plpgsql `EXECUTE 'DECLARE … WITH HOLD …'` (in a `DO` block, a function, a
 * procedure that commits, a trigger, a function called by a view, by `EXPLAIN ANALYZE`, by a
 * prepared statement), and `DECLARE … WITH HOLD` in the body of an SQL-language function or
 * procedure. The client sees `DO`, `SELECT 1`, `CALL`, `INSERT 0 1`, `EXPLAIN`, even an error (a
 * procedure that commits a held cursor and then fails), and the cursor stays in `pg_cursors`. So
 * the tag cannot decide, and `CLOSE ALL` stays in every reset. Only the top-level `DECLARE` (simple
 * query, one of several in a simple query, or the extended protocol) is announced. Cursors that are
 * not held (plpgsql `OPEN`, a returned `refcursor`, a `FOR` loop — even one a procedure's `COMMIT`
 * turned holdable — and a held cursor whose (sub)transaction rolled back) are gone at the end of the
 * statement: they need no reset, with or without a tag. And even an announced `DECLARE` would be
 * known too late behind pipelined one-shots: the reset behind a one-shot is written before the
 * one-shot's answer, its tag included, is read.
 *
 * The other statements have no announcement at all: session advisory locks are taken by function
 * calls (`SELECT pg_advisory_lock(1)` reads as `SELECT 1`, and the lock survives even a rollback of
 * its transaction), `LISTEN` runs from plpgsql `EXECUTE` and SQL-language functions (tag `DO` or
 * `SELECT 1`), and settings change through `set_config()`, plpgsql `EXECUTE 'SET …'` and
 * SQL-language functions, with no `ParameterStatus` for the settings the server does not report
 * (`work_mem`, custom settings). So `pg_advisory_unlock_all()`, `UNLISTEN *` and `RESET ALL` stay.
 * A role taken with `SET ROLE`, `set_config('role', …)` or `SET SESSION AUTHORIZATION` survives
 * `RESET ALL`; `RESET SESSION AUTHORIZATION` clears it. The server reports `role` itself to no one:
 * only `is_superuser` when the change flips it (here, as the test login is a superuser), so that
 * statement stays too.
 *
 * Each way is a test case that asserts what it leaves and whether the wire announced it, so the
 * file fails if a way behaves otherwise on some server (say, a version that announces a held
 * cursor, or refuses one in a function). For each state left, it shows that a reset without that
 * statement (the other reset statements, run on the same session) leaves the state in place and
 * that the full reset clears it; and, as pool one-shots on one backend, that the next one-shot sees
 * the state with `reset: null` and never behind the default reset — the latter fails if a lighter
 * reset ever ships that misses any of these ways.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { MessageSplitter, runtimeConnector } from "../support/tls_wire.ts";
import { connect } from "../../mod.ts";
import { bindEntry } from "../../src/_bind.ts";
import { createNativeDriver } from "../../src/drivers/native/driver.ts";
import type { DriverConnection } from "../../src/core/driver.ts";
import type { Connector } from "../../src/runtime/transport.ts";

/** What reached the client on the tapped connections since the last `clear()`. */
class WireLog {
  /** Command tags (`CommandComplete`), in order. */
  tags: string[] = [];
  /** Names of the run-time parameters the server reported (`ParameterStatus`). */
  parameters: string[] = [];

  clear(): void {
    this.tags = [];
    this.parameters = [];
  }
}

const decoder = new TextDecoder();

/** A connector whose connections also report each backend message's tag or parameter to `log` (TLS off). */
function tapped(connector: Connector, log: WireLog): Connector {
  return (target, handlers, options) => {
    const splitter = new MessageSplitter();
    return connector(target, {
      data(chunk) {
        for (const m of splitter.push(chunk)) {
          if (m.type === "C") log.tags.push(decoder.decode(m.body.subarray(0, m.body.indexOf(0))));
          if (m.type === "S") log.parameters.push(decoder.decode(m.body.subarray(0, m.body.indexOf(0))));
        }
        handlers.data(chunk);
      },
      drain: () => handlers.drain(),
      close: (error) => handlers.close(error),
    }, options);
  };
}

/** One way to make session state: a statement sent as one one-shot. */
interface Way {
  /** How, in the test titles. */
  how: string;
  /** The statement (a simple query without `args`, the extended protocol with them). */
  sql: string;
  args?: unknown[];
  /** Whether the statement fails (with the state made before its error kept). */
  fails?: boolean;
  /** The state it leaves in the session, as the kind's probe lists it (empty: none). */
  leaves: string[];
  /** Whether what reached the client announces that state. */
  announced: boolean;
}

/** A kind of session state that one reset statement clears. */
interface Kind {
  /** The state, in the test titles. */
  name: string;
  /** The reset statement that clears it, as the server's reset query spells it. */
  statement: string;
  /** A statement whose one row's one column lists the state the session holds (text[], sorted). */
  probe: string;
  /** Whether what reached the client announces such state. */
  announces(log: WireLog): boolean;
  ways: Way[];
}

const HELD = (name: string): string => `DECLARE ${name} CURSOR WITH HOLD FOR SELECT 1`;

const CURSORS: Kind = {
  name: "a held cursor",
  statement: "CLOSE ALL",
  probe: "SELECT coalesce(array_agg(name::text ORDER BY name), '{}') FROM pg_cursors WHERE name <> ''",
  announces: (log) => log.tags.includes("DECLARE CURSOR"),
  ways: [
    { how: "a top-level DECLARE … WITH HOLD", sql: HELD("rp_top"), leaves: ["rp_top"], announced: true },
    {
      how: "a DECLARE … WITH HOLD among several statements of a simple query",
      sql: `SELECT 1; ${HELD("rp_multi")}; SELECT 2`,
      leaves: ["rp_multi"],
      announced: true,
    },
    {
      how: "a DECLARE … WITH HOLD with a parameter (extended protocol)",
      sql: "DECLARE rp_ext CURSOR WITH HOLD FOR SELECT $1::int",
      args: [1],
      leaves: ["rp_ext"],
      announced: true,
    },
    {
      how: "a DECLARE without HOLD in a transaction that commits",
      sql: "BEGIN; DECLARE rp_tx CURSOR FOR SELECT 1; COMMIT",
      leaves: [],
      announced: true,
    },
    {
      how: "a DECLARE … WITH HOLD in a subtransaction rolled back",
      sql: `BEGIN; SAVEPOINT s; ${HELD("rp_sp")}; ROLLBACK TO s; COMMIT`,
      leaves: [],
      announced: true,
    },
    {
      how: "a DO block's EXECUTE 'DECLARE … WITH HOLD'",
      sql: `DO $$ BEGIN EXECUTE '${HELD("rp_do")}'; END $$`,
      leaves: ["rp_do"],
      announced: false,
    },
    {
      how: "a plpgsql function's EXECUTE 'DECLARE … WITH HOLD'",
      sql: "SELECT reset_proof.hold('rp_fn')",
      leaves: ["rp_fn"],
      announced: false,
    },
    {
      how: "a plpgsql function's EXECUTE 'DECLARE … WITH HOLD' (extended protocol)",
      sql: "SELECT reset_proof.hold($1)",
      args: ["rp_fn_ext"],
      leaves: ["rp_fn_ext"],
      announced: false,
    },
    {
      how: "an SQL-language function's DECLARE … WITH HOLD",
      sql: "SELECT reset_proof.hold_sql()",
      leaves: ["rp_sql_fn"],
      announced: false,
    },
    {
      how: "an SQL-language procedure's DECLARE … WITH HOLD (CALL)",
      sql: "CALL reset_proof.hold_sql_proc()",
      leaves: ["rp_sql_proc"],
      announced: false,
    },
    {
      how: "a plpgsql procedure's EXECUTE 'DECLARE … WITH HOLD' then COMMIT (CALL)",
      sql: "CALL reset_proof.hold_commit('rp_proc')",
      leaves: ["rp_proc"],
      announced: false,
    },
    {
      how: "a plpgsql procedure that commits a held cursor and then fails",
      sql: "CALL reset_proof.hold_commit_fail('rp_proc_fail')",
      fails: true,
      leaves: ["rp_proc_fail"],
      announced: false,
    },
    {
      how: "a trigger's EXECUTE 'DECLARE … WITH HOLD' (INSERT)",
      sql: "INSERT INTO reset_proof.trig VALUES (1)",
      leaves: ["rp_trigger"],
      announced: false,
    },
    {
      how: "a view that calls a function declaring a held cursor",
      sql: "SELECT * FROM reset_proof.held_view",
      leaves: ["rp_view"],
      announced: false,
    },
    {
      how: "EXPLAIN ANALYZE of a function declaring a held cursor",
      sql: "EXPLAIN ANALYZE SELECT reset_proof.hold('rp_explain')",
      leaves: ["rp_explain"],
      announced: false,
    },
    {
      how: "PREPARE / EXECUTE of a function declaring a held cursor",
      sql: "PREPARE rp_prep AS SELECT reset_proof.hold('rp_prepared'); EXECUTE rp_prep; DEALLOCATE rp_prep",
      leaves: ["rp_prepared"],
      announced: false,
    },
    {
      how: "set_config() with a DECLARE as its value (set_config runs no statement)",
      sql: `SELECT set_config('reset_proof.text', '${HELD("rp_set_config")}', true)`,
      leaves: [],
      announced: false,
    },
    {
      how: "a plpgsql OPEN of a cursor",
      sql: "SELECT reset_proof.open_only()",
      leaves: [],
      announced: false,
    },
    { how: "a returned refcursor", sql: "SELECT reset_proof.ref()", leaves: [], announced: false },
    {
      how: "a plpgsql procedure's OPEN then COMMIT",
      sql: "CALL reset_proof.open_commit()",
      leaves: [],
      announced: false,
    },
    {
      how: "a plpgsql procedure's COMMIT then OPEN",
      sql: "CALL reset_proof.commit_open()",
      leaves: [],
      announced: false,
    },
    {
      how: "a plpgsql procedure's FOR loop that commits (its cursor made holdable) and exits",
      sql: "CALL reset_proof.loop_commit()",
      leaves: [],
      announced: false,
    },
    {
      how: "a plpgsql procedure's FOR loop that commits and then fails",
      sql: "CALL reset_proof.loop_commit_fail()",
      fails: true,
      leaves: [],
      announced: false,
    },
    {
      how: "a held cursor declared by a DO block in a transaction rolled back",
      sql: `BEGIN; DO $$ BEGIN EXECUTE '${HELD("rp_rolled_back")}'; END $$; ROLLBACK`,
      leaves: [],
      announced: false,
    },
  ],
};

const LOCKS: Kind = {
  name: "a session advisory lock",
  statement: "SELECT pg_advisory_unlock_all()",
  probe: "SELECT coalesce(array_agg(objid::text ORDER BY objid), '{}') FROM pg_locks " +
    "WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
  // No command tag or parameter ever names a lock.
  announces: () => false,
  ways: [
    {
      how: "pg_advisory_lock() itself",
      sql: "SELECT pg_advisory_lock(101)",
      leaves: ["101"],
      announced: false,
    },
    {
      how: "pg_advisory_lock() in a transaction rolled back",
      sql: "BEGIN; SELECT pg_advisory_lock(102); ROLLBACK",
      leaves: ["102"],
      announced: false,
    },
    {
      how: "a DO block's EXECUTE of pg_advisory_lock()",
      sql: "DO $$ BEGIN EXECUTE 'SELECT pg_advisory_lock(103)'; END $$",
      leaves: ["103"],
      announced: false,
    },
    { how: "a plpgsql function", sql: "SELECT reset_proof.lock(104)", leaves: ["104"], announced: false },
    {
      how: "an SQL-language function",
      sql: "SELECT reset_proof.lock_sql($1)",
      args: [105],
      leaves: ["105"],
      announced: false,
    },
  ],
};

const CHANNELS: Kind = {
  name: "a LISTEN",
  statement: "UNLISTEN *",
  probe: "SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM pg_listening_channels() c",
  announces: (log) => log.tags.includes("LISTEN"),
  ways: [
    { how: "a top-level LISTEN", sql: "LISTEN rp_top", leaves: ["rp_top"], announced: true },
    {
      how: "a DO block's EXECUTE 'LISTEN …'",
      sql: "DO $$ BEGIN EXECUTE 'LISTEN rp_do'; END $$",
      leaves: ["rp_do"],
      announced: false,
    },
    {
      how: "a plpgsql function's EXECUTE 'LISTEN …'",
      sql: "SELECT reset_proof.listen($1)",
      args: ["rp_fn"],
      leaves: ["rp_fn"],
      announced: false,
    },
    {
      how: "an SQL-language function's LISTEN",
      sql: "SELECT reset_proof.listen_sql()",
      leaves: ["rp_sql"],
      announced: false,
    },
  ],
};

const SETTINGS: Kind = {
  name: "a setting",
  statement: "RESET ALL",
  // pg_settings lists no custom (placeholder) setting: that one is read by its name.
  probe: "SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM (" +
    "SELECT name FROM pg_settings WHERE source = 'session' UNION ALL SELECT 'reset_proof.custom' " +
    "WHERE coalesce(current_setting('reset_proof.custom', true), '') <> '') s",
  // A top-level SET says SET; a reported parameter (application_name, TimeZone, ...) says its value.
  announces: (log) => log.tags.includes("SET") || log.parameters.length !== 0,
  ways: [
    { how: "a top-level SET", sql: "SET work_mem = '1111kB'", leaves: ["work_mem"], announced: true },
    {
      how: "set_config()",
      sql: "SELECT set_config('work_mem', $1, false)",
      args: ["2222kB"],
      leaves: ["work_mem"],
      announced: false,
    },
    {
      how: "set_config() of a custom setting",
      sql: "SELECT set_config('reset_proof.custom', 'x', false)",
      leaves: ["reset_proof.custom"],
      announced: false,
    },
    {
      how: "a DO block's EXECUTE 'SET …'",
      sql: "DO $$ BEGIN EXECUTE 'SET work_mem = ''3333kB'''; END $$",
      leaves: ["work_mem"],
      announced: false,
    },
    {
      how: "an SQL-language function's SET",
      sql: "SELECT reset_proof.set_sql()",
      leaves: ["work_mem"],
      announced: false,
    },
  ],
};

const ROLES: Kind = {
  name: "a role",
  statement: "RESET SESSION AUTHORIZATION",
  // Whom the session acts as besides the user that logged in (pg_stat_activity keeps that one).
  probe: "SELECT coalesce(array_agg(DISTINCT r ORDER BY r), '{}') FROM " +
    "unnest(ARRAY[current_user::text, session_user::text]) r " +
    "WHERE r <> (SELECT usename::text FROM pg_stat_activity WHERE pid = pg_backend_pid())",
  // A top-level SET says SET; the server reports session_authorization, and is_superuser when it changes
  // (the test server's login is a superuser, the role is not: a login that is none would see nothing).
  announces: (log) => log.tags.includes("SET") || log.parameters.length !== 0,
  ways: [
    { how: "a top-level SET ROLE", sql: "SET ROLE rp_role", leaves: ["rp_role"], announced: true },
    {
      how: "set_config('role')",
      sql: "SELECT set_config('role', $1, false)",
      args: ["rp_role"],
      leaves: ["rp_role"],
      announced: true,
    },
    {
      how: "a DO block's EXECUTE 'SET ROLE …'",
      sql: "DO $$ BEGIN EXECUTE 'SET ROLE rp_role'; END $$",
      leaves: ["rp_role"],
      announced: true,
    },
    {
      how: "a top-level SET SESSION AUTHORIZATION",
      sql: "SET SESSION AUTHORIZATION rp_role",
      leaves: ["rp_role"],
      announced: true,
    },
    {
      how: "SET LOCAL ROLE in a transaction that ends",
      sql: "BEGIN; SET LOCAL ROLE rp_role; COMMIT",
      leaves: [],
      announced: true,
    },
  ],
};

const KINDS: readonly Kind[] = [CURSORS, LOCKS, CHANNELS, SETTINGS, ROLES];

/** The functions, procedures, table, trigger and view the ways call (idempotent). */
const SCHEMA = `
CREATE SCHEMA IF NOT EXISTS reset_proof;
DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rp_role') THEN CREATE ROLE rp_role NOLOGIN; END IF; END $$;
CREATE OR REPLACE FUNCTION reset_proof.hold(name text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN EXECUTE format('DECLARE %I CURSOR WITH HOLD FOR SELECT 1', name); RETURN 1; END $$;
CREATE OR REPLACE FUNCTION reset_proof.hold_sql() RETURNS int LANGUAGE sql AS $$
DECLARE rp_sql_fn CURSOR WITH HOLD FOR SELECT 1; SELECT 1 $$;
CREATE OR REPLACE PROCEDURE reset_proof.hold_sql_proc() LANGUAGE sql AS $$
DECLARE rp_sql_proc CURSOR WITH HOLD FOR SELECT 1 $$;
CREATE OR REPLACE PROCEDURE reset_proof.hold_commit(name text) LANGUAGE plpgsql AS $$
BEGIN EXECUTE format('DECLARE %I CURSOR WITH HOLD FOR SELECT 1', name); COMMIT; END $$;
CREATE OR REPLACE PROCEDURE reset_proof.hold_commit_fail(name text) LANGUAGE plpgsql AS $$
BEGIN EXECUTE format('DECLARE %I CURSOR WITH HOLD FOR SELECT 1', name); COMMIT; RAISE EXCEPTION 'after the commit'; END $$;
CREATE TABLE IF NOT EXISTS reset_proof.trig (x int);
CREATE OR REPLACE FUNCTION reset_proof.trig_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'DECLARE rp_trigger CURSOR WITH HOLD FOR SELECT 1'; RETURN NEW; END $$;
DROP TRIGGER IF EXISTS trig_hold ON reset_proof.trig;
CREATE TRIGGER trig_hold AFTER INSERT ON reset_proof.trig FOR EACH ROW EXECUTE FUNCTION reset_proof.trig_hold();
CREATE OR REPLACE VIEW reset_proof.held_view AS SELECT reset_proof.hold('rp_view') AS x;
CREATE OR REPLACE FUNCTION reset_proof.open_only() RETURNS int LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rp_open'; BEGIN OPEN c FOR SELECT 1; RETURN 1; END $$;
CREATE OR REPLACE FUNCTION reset_proof.ref() RETURNS refcursor LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rp_ref'; BEGIN OPEN c FOR SELECT 1; RETURN c; END $$;
CREATE OR REPLACE PROCEDURE reset_proof.open_commit() LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rp_open_commit'; BEGIN OPEN c FOR SELECT 1; COMMIT; END $$;
CREATE OR REPLACE PROCEDURE reset_proof.commit_open() LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rp_commit_open'; BEGIN COMMIT; OPEN c FOR SELECT 1; END $$;
CREATE OR REPLACE PROCEDURE reset_proof.loop_commit() LANGUAGE plpgsql AS $$
DECLARE r record; BEGIN FOR r IN SELECT g FROM generate_series(1, 3) g LOOP COMMIT; EXIT; END LOOP; END $$;
CREATE OR REPLACE PROCEDURE reset_proof.loop_commit_fail() LANGUAGE plpgsql AS $$
DECLARE r record; BEGIN FOR r IN SELECT g FROM generate_series(1, 3) g LOOP COMMIT; RAISE EXCEPTION 'in the loop'; END LOOP; END $$;
CREATE OR REPLACE FUNCTION reset_proof.lock(k bigint) RETURNS int LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_lock(k); RETURN 1; END $$;
CREATE OR REPLACE FUNCTION reset_proof.lock_sql(k bigint) RETURNS int LANGUAGE sql AS $$
SELECT pg_advisory_lock(k); SELECT 1 $$;
CREATE OR REPLACE FUNCTION reset_proof.listen(channel text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN EXECUTE format('LISTEN %I', channel); RETURN 1; END $$;
CREATE OR REPLACE FUNCTION reset_proof.listen_sql() RETURNS int LANGUAGE sql AS $$ LISTEN rp_sql; SELECT 1 $$;
CREATE OR REPLACE FUNCTION reset_proof.set_sql() RETURNS int LANGUAGE sql AS $$ SET work_mem = '4444kB'; SELECT 1 $$;
`;

/** The state a session holds, as the kind's probe lists it. */
async function probe(con: DriverConnection, kind: Kind): Promise<string[]> {
  const { rows } = await con.query(kind.probe, []);
  return Object.values(rows[0]!)[0] as string[];
}

/** Runs a way on a connection; a way that fails must fail. */
async function run(con: DriverConnection, way: Way): Promise<void> {
  const done = con.query(way.sql, way.args ?? []);
  if (way.fails) await assert.rejects(done);
  else await done;
}

/** Resolves once a way's one-shot settled as the way says (a way that fails must fail). */
async function settled(done: Promise<unknown>, way: Way): Promise<void> {
  const error = await done.then(() => undefined, (e: unknown) => e ?? new Error("rejected"));
  assert.equal(error !== undefined, way.fails === true, `${way.how}: ${String(error ?? "succeeded")}`);
}

/** The server's reset statements (`a;\nb;` → `["a", "b"]`). */
function resetStatements(con: DriverConnection): string[] {
  return con.resetQuery().split(";").map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * Runs a way on a fresh session and checks what it leaves and whether the wire announced it; for
 * state left, that a reset without the kind's statement misses it and the full reset clears it.
 */
async function check(con: DriverConnection, kind: Kind, way: Way, log: WireLog): Promise<void> {
  assert.deepEqual(await probe(con, kind), [], "a fresh session holds none");
  log.clear();
  await run(con, way);
  const announced = kind.announces(log);
  const seen = { tags: log.tags, parameters: log.parameters };
  const left = await probe(con, kind);
  assert.deepEqual(
    { left, announced },
    { left: way.leaves, announced: way.announced },
    `the wire showed ${JSON.stringify(seen)}`,
  );
  if (left.length === 0) return;
  // A reset without this kind's statement (the others, on the same session) misses it ...
  const others = resetStatements(con).filter((s) => s !== kind.statement);
  await con.query(others.join("; "), []);
  assert.deepEqual(await probe(con, kind), way.leaves, `a reset without ${kind.statement} misses it`);
  // ... and the full reset clears it.
  await con.reset({ query: true });
  assert.deepEqual(await probe(con, kind), []);
}

describe("Reset proof: what the session reset must clear, and what the client is told of it", () => {
  let server: TestServer;
  let connector: Connector;
  const log = new WireLog();
  const open: DriverConnection[] = [];

  before(async () => {
    server = await getTestServer();
    connector = tapped((await runtimeConnector()).connector, log);
    await using admin = await connect(server.dsn);
    await admin.execute(SCHEMA);
  });

  after(() => {
    for (const con of open) con.terminate();
  });

  /** A native connection over the tapped socket. */
  async function nativeConnection(): Promise<DriverConnection> {
    const con = await createNativeDriver(connector).connect({ dsn: server.dsn, sslmode: "disable" });
    open.push(con);
    return con;
  }

  it("the default reset runs CLOSE ALL, pg_advisory_unlock_all(), UNLISTEN *, RESET SESSION AUTHORIZATION and RESET ALL", async () => {
    const con = await nativeConnection();
    assert.deepEqual(resetStatements(con).sort(), KINDS.map((k) => k.statement).sort());
  });

  for (const kind of KINDS) {
    describe(`${kind.name} (cleared by ${kind.statement})`, () => {
      for (const way of kind.ways) {
        const verdict = way.leaves.length === 0
          ? "leaves none"
          : way.announced
          ? "leaves one and the wire announces it"
          : "leaves one and nothing on the wire announces it";
        it(`NativeConnection: ${way.how} ${verdict}`, async () => {
          const con = await nativeConnection();
          try {
            await check(con, kind, way, log);
          } finally {
            // Whatever it left (a lock above all) ends with the session, not to block later cases.
            await con.close({ timeout: 5 });
          }
        });
      }

      it(`Pool.execute() one-shots on one backend: the next one sees ${kind.name} with reset: null, never behind the default reset`, async () => {
        const { createPool } = bindEntry(connector);
        const ways = kind.ways.filter((w) => w.leaves.length !== 0);
        // reset: null: what each way leaves reaches the next one-shot on the backend.
        {
          await using pool = await createPool(server.dsn, {
            sslmode: "disable",
            minSize: 1,
            maxSize: 1,
            reset: null,
          });
          const cleanup = resetStatements(await nativeConnection()).join("; ");
          for (const way of ways) {
            const [, seen] = await Promise.all([
              settled(pool.execute(way.sql, way.args ?? []), way),
              pool.fetchVal<string[]>(kind.probe),
              pool.execute(cleanup),
            ]);
            assert.deepEqual(seen, way.leaves, `after ${way.how}`);
          }
        }
        // The default reset: the one-shots are pipelined on one backend, each reset behind its own.
        await using pool = await createPool(server.dsn, { sslmode: "disable", minSize: 1, maxSize: 1 });
        const pid = await pool.fetchVal<number>("SELECT pg_backend_pid()");
        const results = await Promise.all(
          ways.flatMap((way) => [
            settled(pool.execute(way.sql, way.args ?? []), way).then(() => undefined),
            pool.fetchVal<string[]>(kind.probe).then((held) => ({ after: way.how, held })),
          ]),
        );
        assert.deepEqual(results.filter((r) => r !== undefined && r.held?.length !== 0), []);
        assert.equal(await pool.fetchVal<number>("SELECT pg_backend_pid()"), pid, "all on one backend");
      });
    });
  }
});

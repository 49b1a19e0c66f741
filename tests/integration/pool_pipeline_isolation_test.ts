/**
 * Pipelined one-shots and session state, every way PostgreSQL offers to make it: neighbouring
 * one-shots on one backend dirty the session through plain statements, parameters (the extended
 * protocol), plpgsql (`DO`, `EXECUTE`), SQL and plpgsql functions and every one-shot method, and
 * the probes between them must read exactly what a fresh session reads. The same battery with
 * `reset: null` proves that each dirtying one-shot really leaves its state and each probe really
 * sees it (so a lighter reset that misses a route fails here), while an open transaction is still
 * rolled back and one-shots stay pipelined.
 *
 * Out of scope (the reset never covered them, pipelined or not, as asyncpg's): temporary tables,
 * `PREPARE`d statements, `SET ROLE` and `SET SESSION AUTHORIZATION`.
 *
 * Runs on the driver `PGPOOL_DRIVER` picks (native by default): on postgres.js the one-shots run
 * one at a time and must see the same clean sessions.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { Pool } from "../../mod.ts";
import { Admin, createTestPool, getTestServer, type TestServer } from "./pool_support.ts";

let server: TestServer;
let admin: Admin;

/** Whether the pool's driver pipelines (the native one does; postgres.js does not). */
const PIPELINES = (process.env.PGPOOL_DRIVER ?? "native") === "native";

/** Room for every one-shot of the battery on the wire at once. */
const DEPTH = 128;

/**
 * Names unique to this process, so runtimes sharing a `DATABASE_URL` server do not collide; qualified,
 * since a neighbour's `SET search_path` stays in force with `reset: null`.
 */
const TAG = `pipe_iso_${process.pid}`;
const TABLE = `public.${TAG}_t`;
const FN_SET = `public.${TAG}_set`;
const FN_LOCK = `public.${TAG}_lock`;
const FN_PLPGSQL = `public.${TAG}_plpgsql`;

/** One way to leave state in a session, and a probe that reads it. */
interface Route {
  name: string;
  /** The dirtying one-shot. */
  dirt(pool: Pool): Promise<unknown>;
  /** Reads the state the dirt leaves; compared with what a session that saw no dirt reads. */
  probe(pool: Pool): Promise<unknown>;
}

const setting = (name: string) => (pool: Pool): Promise<unknown> =>
  pool.fetchVal("SELECT coalesce(current_setting($1, true), '')", [name]);
const advisory = (objid: number) => (pool: Pool): Promise<unknown> =>
  pool.fetchVal(
    "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = $1",
    [objid],
  );
const listening = (channel: string) => (pool: Pool): Promise<unknown> =>
  pool.fetchVal("SELECT count(*)::int FROM pg_listening_channels() c WHERE c = $1", [channel]);
const cursor = (name: string) => (pool: Pool): Promise<unknown> =>
  pool.fetchVal("SELECT count(*)::int FROM pg_cursors WHERE name = $1", [name]);

/** Session state routes: settings, advisory locks, LISTEN, held cursors. */
const ROUTES: Route[] = [
  // settings
  { name: "SET", dirt: (p) => p.execute("SET search_path = pipe_nowhere"), probe: setting("search_path") },
  {
    name: "SET SESSION",
    dirt: (p) => p.execute("SET SESSION statement_timeout = 1234"),
    probe: setting("statement_timeout"),
  },
  { name: "SET TIME ZONE", dirt: (p) => p.execute("SET TIME ZONE 'Asia/Tokyo'"), probe: setting("TimeZone") },
  {
    name: "set_config() with parameters",
    dirt: (p) => p.fetchVal("SELECT set_config($1, $2, false)", ["pipe.a", "a"]),
    probe: setting("pipe.a"),
  },
  {
    name: "set_config() without parameters",
    dirt: (p) => p.fetchRow("SELECT set_config('pipe.b', 'b', false)"),
    probe: setting("pipe.b"),
  },
  {
    name: "set_config() by executeMany()",
    dirt: (p) => p.executeMany("SELECT set_config($1, $2, false)", [["pipe.c", "c"], ["pipe.c2", "c"]]),
    probe: setting("pipe.c2"),
  },
  {
    name: "set_config() by fetchMany()",
    dirt: (p) => p.fetchMany("SELECT set_config($1, $2, false)", [["pipe.d", "d"]]),
    probe: setting("pipe.d"),
  },
  {
    name: "plpgsql PERFORM set_config()",
    dirt: (p) => p.execute("DO $$BEGIN PERFORM set_config('pipe.e', 'e', false); END$$"),
    probe: setting("pipe.e"),
  },
  {
    name: "plpgsql EXECUTE 'SET'",
    dirt: (p) => p.execute("DO $$BEGIN EXECUTE 'SET pipe.f = ''f'''; END$$"),
    probe: setting("pipe.f"),
  },
  { name: "SQL function", dirt: (p) => p.fetch(`SELECT ${FN_SET}()`), probe: setting("pipe.g") },
  {
    name: "SET in a multi-statement text",
    dirt: (p) => p.execute("SELECT 1; SET work_mem = '7MB'; SELECT 2"),
    probe: setting("work_mem"),
  },
  // advisory locks (session level; transaction-level ones end with their transaction anyway)
  {
    name: "pg_advisory_lock($1)",
    dirt: (p) => p.fetchVal("SELECT pg_advisory_lock($1)", [71]),
    probe: advisory(71),
  },
  {
    name: "pg_try_advisory_lock()",
    dirt: (p) => p.fetchVal("SELECT pg_try_advisory_lock(72)"),
    probe: advisory(72),
  },
  {
    name: "pg_advisory_lock_shared()",
    dirt: (p) => p.execute("SELECT pg_advisory_lock_shared(73)"),
    probe: advisory(73),
  },
  {
    name: "pg_advisory_lock(int4, int4)",
    dirt: (p) => p.execute("SELECT pg_advisory_lock($1::int4, $2::int4)", [74, 75]),
    probe: advisory(75),
  },
  {
    name: "plpgsql PERFORM pg_advisory_lock()",
    dirt: (p) => p.execute("DO $$BEGIN PERFORM pg_advisory_lock(76); END$$"),
    probe: advisory(76),
  },
  { name: "SQL function lock", dirt: (p) => p.fetchVal(`SELECT ${FN_LOCK}()`), probe: advisory(77) },
  // LISTEN
  { name: "LISTEN", dirt: (p) => p.execute("LISTEN pipe_a"), probe: listening("pipe_a") },
  {
    name: "plpgsql EXECUTE 'LISTEN'",
    dirt: (p) => p.execute("DO $$BEGIN EXECUTE 'LISTEN pipe_b'; END$$"),
    probe: listening("pipe_b"),
  },
  {
    name: "plpgsql function: lock and LISTEN",
    dirt: (p) => p.fetchVal(`SELECT ${FN_PLPGSQL}()`),
    probe: listening("pipe_c"),
  },
  // cursors WITH HOLD
  {
    name: "DECLARE WITH HOLD",
    dirt: (p) => p.execute("DECLARE pipe_c1 CURSOR WITH HOLD FOR SELECT 1"),
    probe: cursor("pipe_c1"),
  },
  {
    name: "DECLARE WITH HOLD in a committed transaction",
    dirt: (p) => p.execute("BEGIN; DECLARE pipe_c2 CURSOR WITH HOLD FOR SELECT 1; COMMIT"),
    probe: cursor("pipe_c2"),
  },
  {
    name: "plpgsql EXECUTE 'DECLARE WITH HOLD'",
    dirt: (p) => p.execute("DO $$BEGIN EXECUTE 'DECLARE pipe_c3 CURSOR WITH HOLD FOR SELECT 1'; END$$"),
    probe: cursor("pipe_c3"),
  },
];

/**
 * One-shots that may leave a transaction open, each followed by a neighbour inserting its own row
 * (which must commit on its own) and a probe that fails outside a transaction block.
 */
interface TransactionRoute {
  name: string;
  /** Runs the one-shot; `row` is the id it inserts (if it inserts); resolves with how it settled. */
  run(pool: Pool, row: number): Promise<unknown>;
  /** Whether its own row is committed (only a statement that commits by itself). */
  commits: boolean;
}

const TRANSACTIONS: TransactionRoute[] = [
  { name: "bare BEGIN", run: (p) => p.execute("BEGIN"), commits: false },
  {
    name: "BEGIN; INSERT",
    run: (p, r) => p.execute(`BEGIN; INSERT INTO ${TABLE} VALUES (${r})`),
    commits: false,
  },
  { name: "fetch('BEGIN', [])", run: (p) => p.fetch("BEGIN", []), commits: false },
  { name: "executeMany('BEGIN', [[]])", run: (p) => p.executeMany("BEGIN", [[]]), commits: false },
  {
    name: "START TRANSACTION ISOLATION LEVEL SERIALIZABLE; INSERT",
    run: (p, r) =>
      p.execute(`START TRANSACTION ISOLATION LEVEL SERIALIZABLE; INSERT INTO ${TABLE} VALUES (${r})`),
    commits: false,
  },
  {
    name: "BEGIN; INSERT; SAVEPOINT",
    run: (p, r) => p.execute(`BEGIN; INSERT INTO ${TABLE} VALUES (${r}); SAVEPOINT s1`),
    commits: false,
  },
  {
    name: "BEGIN; INSERT; a failing statement",
    run: (p, r) => p.execute(`BEGIN; INSERT INTO ${TABLE} VALUES (${r}); SELECT 1/0`),
    commits: false,
  },
  { name: "BEGIN; a failing statement", run: (p) => p.fetchVal("BEGIN; SELECT 1/0"), commits: false },
  {
    name: "a DO block (commits on its own)",
    run: (p, r) => p.execute(`DO $$BEGIN INSERT INTO ${TABLE} VALUES (${r}); END$$`),
    commits: true,
  },
];

/** What each probe reads, fired together in one turn. */
function probeAll(pool: Pool): Promise<unknown[]> {
  return Promise.all(ROUTES.map((r) => r.probe(pool)));
}

/** Whether the session is in a transaction block: a one-shot `SAVEPOINT` fails outside one. */
async function inTransaction(pool: Pool): Promise<boolean> {
  try {
    await pool.execute("SAVEPOINT pipe_probe");
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "25P01") return false;
    throw e;
  }
}

interface BatteryResult {
  /** The probes' readings, by route name. */
  probes: Record<string, unknown>;
  /** How each dirtying one-shot settled (`ok` or its error code). */
  dirt: Record<string, string>;
  /** Per transaction route: whether the probe right behind it found a transaction open. */
  inTransaction: Record<string, boolean>;
  /** How each transaction route settled. */
  transactions: Record<string, string>;
  /** Ids the neighbours of the transaction routes inserted (each must commit). */
  neighbourIds: number[];
  /** Ids the transaction routes themselves inserted and that commit by themselves. */
  committingIds: number[];
  /** Every one-shot's backend. */
  pids: Set<number>;
  /** `getWaitingCount()` right after everything was fired. */
  waiting: number;
  /** One-shots fired. */
  fired: number;
}

const settled = (p: Promise<unknown>): Promise<string> =>
  p.then(() => "ok", (e: unknown) => String((e as { code?: unknown }).code ?? e));

/**
 * Fires, in one turn: a pid probe, then per route its dirt and its probe, then per transaction route
 * the route, a neighbour insert and the transaction probe, and a last pid probe.
 */
async function battery(pool: Pool): Promise<BatteryResult> {
  const pid = (): Promise<number> => pool.fetchVal<number>("SELECT pg_backend_pid()") as Promise<number>;
  const pids: Promise<number>[] = [pid()];
  const dirt: [string, Promise<string>][] = [];
  const probes: [string, Promise<unknown>][] = [];
  for (const route of ROUTES) {
    dirt.push([route.name, settled(route.dirt(pool))]);
    probes.push([route.name, route.probe(pool)]);
    pids.push(pid());
  }
  const transactions: [string, Promise<string>][] = [];
  const open: [string, Promise<boolean>][] = [];
  const neighbours: Promise<unknown>[] = [];
  const neighbourIds: number[] = [];
  const committingIds: number[] = [];
  let id = 1;
  for (const route of TRANSACTIONS) {
    const own = id++;
    if (route.commits) committingIds.push(own);
    transactions.push([route.name, settled(route.run(pool, own))]);
    const neighbour = id++;
    neighbourIds.push(neighbour);
    neighbours.push(pool.execute(`INSERT INTO ${TABLE} VALUES ($1)`, [neighbour]));
    open.push([route.name, inTransaction(pool)]);
  }
  pids.push(pid());
  const waiting = pool.getWaitingCount();
  const fired = pids.length + 2 * ROUTES.length + 3 * TRANSACTIONS.length;
  const entries = async <T>(list: [string, Promise<T>][]): Promise<Record<string, T>> =>
    Object.fromEntries(await Promise.all(list.map(async ([k, p]) => [k, await p] as const)));
  await Promise.all(neighbours);
  return {
    probes: await entries(probes),
    dirt: await entries(dirt),
    inTransaction: await entries(open),
    transactions: await entries(transactions),
    neighbourIds,
    committingIds,
    pids: new Set(await Promise.all(pids)),
    waiting,
    fired,
  };
}

async function committedIds(): Promise<number[]> {
  const ids = await admin.value<string>(
    `SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM ${TABLE}`,
  );
  return ids === "" ? [] : ids.split(",").map(Number);
}

describe("Pool pipelined one-shots: session state left by every route", () => {
  before(async () => {
    server = await getTestServer();
    admin = new Admin(server);
    await admin.execute(
      `CREATE OR REPLACE FUNCTION ${FN_SET}() RETURNS text LANGUAGE sql AS $$ SELECT set_config('pipe.g', 'g', false) $$`,
    );
    await admin.execute(
      `CREATE OR REPLACE FUNCTION ${FN_LOCK}() RETURNS int LANGUAGE sql AS $$ SELECT pg_advisory_lock(77); SELECT 1 $$`,
    );
    await admin.execute(
      `CREATE OR REPLACE FUNCTION ${FN_PLPGSQL}() RETURNS int LANGUAGE plpgsql AS ` +
        `$$BEGIN PERFORM pg_advisory_lock(78); EXECUTE 'LISTEN pipe_c'; RETURN 1; END$$`,
    );
  });

  after(async () => {
    await admin.execute(
      `DROP FUNCTION IF EXISTS ${FN_SET}(); DROP FUNCTION IF EXISTS ${FN_LOCK}(); ` +
        `DROP FUNCTION IF EXISTS ${FN_PLPGSQL}(); DROP TABLE IF EXISTS ${TABLE}`,
    );
    await admin.close();
  });

  it("Pool one-shots on one backend each read a fresh session, whichever route their neighbours dirtied it by", async () => {
    await admin.execute(`DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (id int)`);
    await using pool = await createTestPool(server.dsn, { minSize: 1, maxSize: 1, pipelineDepth: DEPTH });
    const fresh = await probeAll(pool);
    const got = await battery(pool);
    assert.equal(got.pids.size, 1, "one backend ran every one-shot");
    assert.equal(
      got.waiting,
      PIPELINES ? 0 : got.fired - 1,
      "all were on the wire at once where the driver pipelines",
    );
    assert.deepEqual(
      got.dirt,
      Object.fromEntries(ROUTES.map((r) => [r.name, "ok"])),
      "every dirtying one-shot succeeded",
    );
    assert.deepEqual(
      got.probes,
      Object.fromEntries(ROUTES.map((r, i) => [r.name, fresh[i]])),
      "every probe read what a fresh session reads",
    );
    assert.deepEqual(
      got.inTransaction,
      Object.fromEntries(TRANSACTIONS.map((r) => [r.name, false])),
      "no neighbour ran inside a transaction left open",
    );
    assert.deepEqual(
      got.transactions,
      Object.fromEntries(TRANSACTIONS.map((r) => [r.name, r.name.includes("failing") ? "22012" : "ok"])),
    );
    assert.deepEqual(
      await committedIds(),
      [...got.neighbourIds, ...got.committingIds].sort((a, b) => a - b),
      "each neighbour's insert committed on its own; the open transactions' inserts were rolled back",
    );
    assert.equal(pool.getSize(), 1);
    assert.equal(pool.getIdleSize(), 1);
  });

  it("Pool one-shots with reset: null stay pipelined: each route's state reaches the probe, an open transaction is still rolled back", async () => {
    await admin.execute(`DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (id int)`);
    await using pool = await createTestPool(server.dsn, {
      minSize: 1,
      maxSize: 1,
      pipelineDepth: DEPTH,
      reset: null,
    });
    const fresh = await probeAll(pool);
    const got = await battery(pool);
    assert.equal(got.pids.size, 1, "one backend ran every one-shot");
    assert.equal(got.waiting, PIPELINES ? 0 : got.fired - 1, "reset: null keeps one-shots pipelined");
    assert.deepEqual(got.dirt, Object.fromEntries(ROUTES.map((r) => [r.name, "ok"])));
    // Without reset statements every route's state survives into the probe behind it: proof that
    // the dirt is real and the probe sees it, so the clean readings above are the reset's doing.
    const unchanged = ROUTES.filter((r, i) => JSON.stringify(got.probes[r.name]) === JSON.stringify(fresh[i]))
      .map((r) => r.name);
    assert.deepEqual(unchanged, [], "each route left state the probe behind it reads");
    assert.deepEqual(
      got.inTransaction,
      Object.fromEntries(TRANSACTIONS.map((r) => [r.name, false])),
      "an open transaction is rolled back even with reset: null",
    );
    assert.deepEqual(
      await committedIds(),
      [...got.neighbourIds, ...got.committingIds].sort((a, b) => a - b),
    );
  });
});

/**
 * Bad input matrix: pool options (wrong types, ranges, unknown names), DSNs
 * (malformed, unknown parameters, bad sslmode, IPv6 literals), query arguments
 * (wrong count, unsupported types), copy inputs, and misuse (concurrent double
 * release, foreign objects, use after release/close, use before init). Each
 * gets a specific error class and code, and none corrupts the pool: every group
 * ends with the pool invariant check.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  createPool,
  InterfaceError,
  Pool,
  type PoolConnection,
  PoolError,
  PostgresError,
} from "../../mod.ts";
import { resolveConnectOptions } from "../../src/drivers/dsn.ts";
import { getTestServer, type TestServer } from "../support/pg_server.ts";
import { assertPoolInvariants, rejection } from "./fault_support.ts";

let server: TestServer;
let pool: Pool;

type ErrorClass = abstract new (...args: never[]) => Error;

/** Asserts `e` is an instance of `cls` (and has `code` when given), naming the case on failure. */
function assertError(what: string, e: unknown, cls: ErrorClass, code?: string | string[]): void {
  assert.ok(
    e instanceof cls,
    `${what}: expected ${cls.name}${code ? ` ${code}` : ""}, got ${
      e instanceof Error
        ? `${e.constructor.name} ${(e as { code?: string }).code ?? ""} "${e.message}"`
        : String(e)
    }`,
  );
  if (code !== undefined) {
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(
      codes.includes((e as PoolError).code),
      `${what}: code ${(e as PoolError).code}, expected ${codes}`,
    );
  }
}

function syncThrow(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

async function outcome(f: () => unknown): Promise<unknown> {
  try {
    return { resolved: await f() };
  } catch (e) {
    return e;
  }
}

// deno-lint-ignore no-explicit-any
type Loose = any;

describe("Bad input matrix", { timeout: 60_000 }, () => {
  before(async () => {
    server = await getTestServer();
    pool = await createPool(server.dsn, { minSize: 1, maxSize: 2, onWarning: () => {} });
    await pool.execute("DROP TABLE IF EXISTS bad_input_t; CREATE TABLE bad_input_t (a int, b text)");
  });

  after(async () => {
    await pool.close({ timeout: 5 });
  });

  describe("pool options", () => {
    const range: [string, Loose][] = [
      ["maxSize 0", { maxSize: 0 }],
      ["maxSize -1", { maxSize: -1 }],
      ["maxSize NaN", { maxSize: NaN }],
      ["maxSize Infinity", { maxSize: Infinity }],
      ["maxSize 1.5", { maxSize: 1.5 }],
      ["minSize -1", { minSize: -1 }],
      ["minSize > maxSize", { minSize: 5, maxSize: 2 }],
      ["maxQueries 0", { maxQueries: 0 }],
      ["maxInactiveConnectionLifetime -1", { maxInactiveConnectionLifetime: -1 }],
      ["releaseTimeout -1", { releaseTimeout: -1 }],
      ["port 0", { port: 0 }],
      ["port 70000", { port: 70000 }],
      ["connectTimeout -1", { connectTimeout: -1 }],
      ["connectTimeout NaN", { connectTimeout: NaN }],
      ["statementCacheSize -1", { statementCacheSize: -1 }],
      ["statementCacheSize 1.5", { statementCacheSize: 1.5 }],
    ];
    for (const [name, opts] of range) {
      it(`new Pool() throws RangeError synchronously for ${name}`, () => {
        assertError(name, syncThrow(() => new Pool(server.dsn, opts)), RangeError);
      });
    }
    const types: [string, Loose][] = [
      ["maxSize '10'", { maxSize: "10" }],
      ["minSize null", { minSize: null }],
      ["onWarning 5", { onWarning: 5 }],
      ["connect 'x'", { connect: "x" }],
      ["setup {}", { setup: {} }],
      ["unknown name", { bogus: 1 }],
      ["misspelt name maxsize", { maxsize: 10 }],
      ["port '5432'", { port: "5432" }],
      ["connectTimeout '1'", { connectTimeout: "1" }],
      ["statementCacheSize '10'", { statementCacheSize: "10" }],
      ["host 5", { host: 5 }],
      ["password 5", { password: 5 }],
      ["params 5", { params: 5 }],
      ["sslmode 'bogus'", { sslmode: "bogus" }],
      ["targetSessionAttrs 'x'", { targetSessionAttrs: "x" }],
    ];
    for (const [name, opts] of types) {
      it(`new Pool() throws TypeError (or RangeError for a bad value) synchronously for ${name}`, () => {
        const e = syncThrow(() => new Pool(server.dsn, opts));
        assert.ok(
          e instanceof TypeError || e instanceof RangeError,
          `${name}: expected a synchronous TypeError/RangeError, got ${String(e)}`,
        );
      });
    }

    it("createPool() rejects with TypeError for an unknown option and opens nothing", async () => {
      const e = await rejection(createPool(server.dsn, { bogus: 1 } as Loose));
      assertError("createPool bogus", e, TypeError);
    });
  });

  describe("connection strings", () => {
    const malformed = [
      "postgres://[broken",
      "postgres://u@h:notaport/db",
      "postgres://u@h:70000/db",
      "postgres://u@h:0/db",
      "mysql://u@h/db",
      "postgres://u@h/db?sslmode=bogus",
      "postgres://u@h/db?target_session_attrs=bogus",
      "postgres://u@h/db?connect_timeout=-1",
      "postgres://u@h/db?connect_timeout=soon",
      "postgres://%zz@h/db",
      "postgres://u@h/%zz",
      "postgres://u@h1,h2/db?port=1,2,3",
      "postgres://[::1]x/db",
      "postgres://[::1/db",
      "postgres://u@h/db?prepare=maybe",
      "host=x port",
      "host='unterminated",
      "not a dsn",
    ];
    for (const dsn of malformed) {
      it(`connect() rejects ${JSON.stringify(dsn)} with INVALID_DSN before touching the network`, async () => {
        const e = await rejection(connect(dsn));
        assertError(dsn, e, InterfaceError, "INVALID_DSN");
      });
    }

    it("a pool with a malformed DSN fails each acquire with INVALID_DSN and holds no slot", async () => {
      await using bad = await createPool("postgres://u@h:notaport/db", { minSize: 0, maxSize: 2 });
      for (let i = 0; i < 3; i++) {
        assertError("acquire", await rejection(bad.acquire({ timeout: 1 })), InterfaceError, "INVALID_DSN");
      }
      assert.equal(bad.getSize(), 0);
      assert.equal(bad.getWaitingCount(), 0);
    });

    it("an unknown DSN parameter reaches the server and fails with PostgresError 42704; the shared pool is unaffected", async () => {
      const url = new URL(server.dsnFor({ host: "127.0.0.1" }));
      url.searchParams.set("no_such_setting_xyz", "1");
      const e = await rejection(connect(url.toString()));
      assertError("unknown parameter", e, PostgresError, "42704");
      url.searchParams.delete("no_such_setting_xyz");
      url.searchParams.set("application_name", "known-parameter");
      await using con = await connect(url.toString());
      assert.equal(await con.fetchVal("SELECT current_setting('application_name')"), "known-parameter");
      await assertPoolInvariants(pool);
    });

    it("IPv6 literals parse to bare addresses with their ports, and connecting gives a typed outcome", async () => {
      const r = resolveConnectOptions({ dsn: "postgres://u@[::1]:5433,[fe80::2]/db" }, {});
      assert.deepEqual(r.hosts, [{ host: "::1", port: 5433 }, { host: "fe80::2", port: 5432 }]);
      const kv = resolveConnectOptions({ dsn: "host=::1 port=6543 user=u" }, {});
      assert.deepEqual(kv.hosts, [{ host: "::1", port: 6543 }]);
      const o = await outcome(async () => {
        const con = await connect(`postgres://${server.user}@[::1]:${server.port}/${server.database}`, {
          connectTimeout: 2,
        });
        const v = await con.fetchVal("SELECT 1");
        await con.close();
        return v;
      });
      // The test server listens on 127.0.0.1; on ::1 it is either reachable or refused, never a crash.
      if (o instanceof Error) {
        assertError("[::1]", o, PoolError, ["ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH"]);
      } else assert.deepEqual(o, { resolved: 1 });
    });
  });

  describe("query arguments", () => {
    it("too few or too many arguments fail with a PostgresError and the connection stays usable", async () => {
      await using con = await pool.acquire({ timeout: 5 });
      assertError("too few", await rejection(con.fetchVal("SELECT $1::int", [])), PostgresError, [
        "08P01",
        "42P02",
      ]);
      assertError("too many", await rejection(con.fetchVal("SELECT $1::int", [1, 2])), PostgresError, [
        "08P01",
        "42P18",
      ]);
      assertError(
        "bad text for int",
        await rejection(con.fetchVal("SELECT $1::int", ["abc"])),
        PostgresError,
        "22P02",
      );
      assert.equal(await con.fetchVal("SELECT $1::int", [7]), 7);
    });

    const unsupported: [string, unknown][] = [
      ["a symbol", Symbol("s")],
      ["a function", () => 1],
      ["undefined", undefined],
    ];
    for (const [name, value] of unsupported) {
      it(`${name} as a query argument rejects with InterfaceError INVALID_ARGUMENT; the pool stays sound`, async () => {
        const e = await rejection(pool.fetchVal("SELECT $1::text", [value]));
        assertError(name, e, InterfaceError, "INVALID_ARGUMENT");
        await assertPoolInvariants(pool);
      });
    }

    it("a plain object argument is rejected or sent as JSON, never as '[object Object]'", async () => {
      const o = await outcome(() => pool.fetchVal("SELECT $1::text", [{ a: 1 }]));
      if (o instanceof Error) assertError("object", o, InterfaceError, "INVALID_ARGUMENT");
      else {assert.deepEqual(
          o,
          { resolved: '{"a":1}' },
          "an object must not be stringified as [object Object]",
        );}
    });

    it("arguments that are not an array, SQL that is not a string and bad per-call bounds fail with typed errors", async () => {
      assertError(
        "args string",
        await rejection(pool.fetchVal("SELECT 1", "x" as Loose)),
        InterfaceError,
        "INVALID_ARGUMENT",
      );
      assertError(
        "executeMany",
        await rejection(pool.executeMany("SELECT $1::int", [[1], "x" as Loose])),
        InterfaceError,
        "INVALID_ARGUMENT",
      );
      const sql = await outcome(() => pool.fetchVal(42 as Loose));
      assert.ok(
        sql instanceof TypeError || (sql instanceof InterfaceError && sql.code === "INVALID_ARGUMENT"),
        `SQL that is not a string: expected TypeError or INVALID_ARGUMENT, got ${String(sql)}`,
      );
      assertError(
        "timeout '1'",
        await rejection(pool.fetchVal("SELECT 1", [], { timeout: "1" as Loose })),
        TypeError,
      );
      assertError("timeout NaN", await rejection(pool.acquire({ timeout: NaN })), TypeError);
      assertError(
        "signal {}",
        await rejection(pool.fetchVal("SELECT 1", [], { signal: {} as Loose })),
        TypeError,
      );
      assertError(
        "missing column",
        await rejection(pool.fetchVal("SELECT 1 AS a", [], { column: "b" })),
        InterfaceError,
        "INVALID_ARGUMENT",
      );
      await assertPoolInvariants(pool);
    });
  });

  describe("copy inputs", () => {
    it("bad copy sources, outputs, names and formats fail with typed errors; the pool stays sound", async () => {
      const cases: [string, () => Promise<unknown>, ErrorClass, string?][] = [
        [
          "source 42",
          () => pool.copyToTable("bad_input_t", { source: 42 as Loose }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "empty table name",
          () => pool.copyToTable("", { source: "1\n" }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "NUL in table name",
          () => pool.copyToTable("a\0b", { source: "1\n" }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "format xml",
          () => pool.copyToTable("bad_input_t", { source: "1\n", format: "xml" as Loose }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "output 'x'",
          () => pool.copyFromTable("bad_input_t", { output: "x" as Loose }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "missing table",
          () => pool.copyToTable("no_such_table_q", { source: "1\n" }),
          PostgresError,
          "42P01",
        ],
        ["bad data", () => pool.copyToTable("bad_input_t", { source: "x\ty\n" }), PostgresError, "22P02"],
        [
          "unknown column",
          () => pool.copyToTable("bad_input_t", { source: "1\n", columns: ["nope"] }),
          PostgresError,
          "42703",
        ],
        [
          "too many fields",
          () => pool.copyRecordsToTable("bad_input_t", { records: [[1, "a", 3]] }),
          PostgresError,
          "22P04",
        ],
        [
          "record not an array",
          () => pool.copyRecordsToTable("bad_input_t", { records: [5 as Loose] }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "records 5",
          () => pool.copyRecordsToTable("bad_input_t", { records: 5 as Loose }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "a symbol in a record",
          () => pool.copyRecordsToTable("bad_input_t", { records: [[Symbol("s") as Loose, "a"]] }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
        [
          "column name 5",
          () => pool.copyRecordsToTable("bad_input_t", { records: [[1]], columns: [5 as Loose] }),
          InterfaceError,
          "INVALID_ARGUMENT",
        ],
      ];
      const failures: string[] = [];
      for (const [name, run, cls, code] of cases) {
        try {
          assertError(name, await outcome(run), cls, code);
        } catch (e) {
          failures.push((e as Error).message.split("\n")[0]!);
        }
      }
      const broken = new Error("source broke");
      const fromSource = await outcome(() =>
        pool.copyToTable("bad_input_t", {
          source: (async function* () {
            yield new TextEncoder().encode("1\ta\n");
            throw broken;
          })(),
        })
      );
      assert.equal(fromSource, broken, "a failing source's own error propagates unchanged");
      assert.equal(await pool.fetchVal("SELECT count(*)::int FROM bad_input_t"), 0, "nothing half-copied");
      await assertPoolInvariants(pool);
      assert.deepEqual(failures, [], "every bad copy input got its specific error");
    });
  });

  describe("misuse", () => {
    it("a concurrent double release settles both calls and returns the connection once", async () => {
      const con = await pool.acquire();
      const results = await Promise.allSettled([pool.release(con), pool.release(con)]);
      assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
      assert.equal(pool.getIdleSize(), pool.getSize());
      await assertPoolInvariants(pool);
    });

    it("release() of foreign objects rejects with FOREIGN_CONNECTION and touches nothing", async () => {
      await using other = await createPool(server.dsn, { maxSize: 1 });
      const foreign = await other.acquire();
      const raw = await connect(server.dsn);
      try {
        for (
          const [name, obj] of [["{}", {}], ["undefined", undefined], ["another pool's proxy", foreign], [
            "a raw Connection",
            raw,
          ]] as [string, unknown][]
        ) {
          assertError(
            name,
            await rejection(pool.release(obj as PoolConnection)),
            InterfaceError,
            "FOREIGN_CONNECTION",
          );
        }
        assert.equal(await foreign.fetchVal("SELECT 1"), 1, "the other pool's checkout is untouched");
        assert.equal(await raw.fetchVal("SELECT 2"), 2, "the raw connection is untouched");
      } finally {
        await other.release(foreign);
        await raw.close();
      }
      await assertPoolInvariants(pool);
    });

    it("a released proxy throws CONNECTION_RELEASED synchronously; a closed connection rejects CONNECTION_CLOSED", async () => {
      const con = await pool.acquire();
      await pool.release(con);
      assertError(
        "released",
        syncThrow(() => con.fetchVal("SELECT 1")),
        InterfaceError,
        "CONNECTION_RELEASED",
      );
      assert.match(String(con), /released/i);
      const raw = await connect(server.dsn);
      await raw.close();
      assertError("closed", await rejection(raw.fetchVal("SELECT 1")), InterfaceError, "CONNECTION_CLOSED");
    });

    it("use before init, during init and after close fails with the pool state's code", async () => {
      const fresh = new Pool(server.dsn, { minSize: 1, maxSize: 1 });
      assertError("before init", await rejection(fresh.acquire()), InterfaceError, "POOL_NOT_INITIALIZED");
      const initializing = fresh.init();
      assertError("second init", await rejection(fresh.init()), InterfaceError, "POOL_INITIALIZING");
      assertError("during init", await rejection(fresh.acquire()), InterfaceError, "POOL_INITIALIZING");
      await initializing;
      const con = await fresh.acquire();
      await fresh.release(con);
      await fresh.close();
      assertError("after close", await rejection(fresh.acquire()), InterfaceError, "POOL_CLOSED");
      assertError(
        "one-shot after close",
        await rejection(fresh.fetchVal("SELECT 1")),
        InterfaceError,
        "POOL_CLOSED",
      );
      await fresh.release(con); // a stale proxy's release after close is a no-op
      assert.equal(fresh.isClosing(), true);
      assert.equal(fresh.getSize(), 0);
    });
  });
});

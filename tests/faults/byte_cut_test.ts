/**
 * The byte-cut sweep across startup, password authentication, query and COPY,
 * on both drivers (the native wire engine and postgres.js, chosen explicitly
 * with the pool's `driver` option). A proxy (tests/support/fault_proxy.ts)
 * drops the connection after every byte count n of one cycle — 1-byte steps
 * over the first 200 bytes, where startup and authentication happen, 2-byte
 * steps over the cycle's last part, where the statement and the release's
 * reset move, coarser steps elsewhere — and
 * every cut must end in success or a typed PoolError (each part of an
 * aggregate error), within a bound, with no slot leak, no unhandled rejection,
 * no lost or doubled acknowledged write (the ledger), and COPY atomic: a copy
 * that resolved is in the table exactly once, a copy that failed is in it
 * whole or not at all, and only when the failure could not tell (a connection
 * lost after the copy's end was sent). TLS (sslmode=require and verify-full) with SCRAM is swept
 * too, against a PostgreSQL of its own. `BYTECUT_DEBUG=1` prints the first error of each code,
 * `BYTECUT_DEBUG=2` every cut's duration and outcome.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect, type Connection, createPool, type Pool, PoolError, type PoolOptions } from "../../mod.ts";
import {
  getTestServer,
  type PostgresInstance,
  type RoleCredentials,
  startPostgres,
  type TestServer,
} from "../support/pg_server.ts";
import { makeTestCerts, type TestCerts } from "../support/tls_certs.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import {
  assertLedgerClean,
  describeReport,
  errorParts,
  Ledger,
  provesNotWritten,
} from "../support/ledger.ts";
import {
  assertPoolInvariants,
  note,
  Tally,
  trapUnhandledRejections,
  waitFor,
  within,
} from "./fault_support.ts";
import { skipTest } from "../support/skip.ts";
import { ConnectionError } from "../../src/core/errors.ts";
import { createNativeDriver } from "../../src/drivers/native/driver.ts";
import { createPostgresDriver } from "../../src/drivers/postgresjs/driver.ts";
import type { Connector, Transport, TransportHandlers } from "../../src/runtime/transport.ts";

type DriverChoice = "native" | "postgres";
/**
 * Fault suites run on the default driver (the native engine); `BYTECUT_DRIVERS=native,postgres` sweeps the
 * postgres.js driver too (it passes; CI leaves it out to stay within its time budget).
 */
const DRIVERS: DriverChoice[] = (process.env.BYTECUT_DRIVERS ?? "native").split(",").map((d) => {
  if (d !== "native" && d !== "postgres") throw new Error(`BYTECUT_DRIVERS: unknown driver ${d}`);
  return d;
});

/** Every byte count below this is a cut point. */
const FINE_BELOW = 200;
/** The step between cut points elsewhere. */
const COARSE_STEP = 8;
/** The step between cut points in a cycle's last part (the statement and the release's reset). */
const TAIL_STEP = 2;
/** The step between cut points of a TLS cycle (its handshake is most of its bytes). */
const TLS_COARSE_STEP = 30;
/** Bound of one cycle under a cut: far above a cycle's duration, far below the test's timeout. */
const CYCLE_BOUND_MS = 8000;
/** Cycles run uncut before the sweep: one warm-up, then the measured ones. */
const UNCUT_CYCLES = 3;
/** A cut whose cycle takes longer than this waited on a deadline instead of seeing the cut. */
const SLOW_CUT_MS = 1500;

let server: TestServer;
let plainProxy: FaultProxy;
/** A PostgreSQL with TLS and its proxy, started by the TLS sweeps. */
let tls: { certs: TestCerts; server: PostgresInstance; proxy: FaultProxy; admin: Connection } | undefined;
let admin: Connection;

/** What a sweep did, for the report line and the assertions. */
interface Sweep {
  /** Bytes of one cycle, measured through the proxy (both directions). */
  cycle: number;
  /** Cut points tried. */
  cuts: number[];
  tally: Tally;
  /** Wall time of the cut loop. */
  ms: number;
  /** The slowest cut: its byte count and duration. */
  slowest: { n: number; ms: number };
  /** The first cut point that ended with each error code. */
  firstByCode: Map<string, number>;
  /** Cuts slower than {@linkcode SLOW_CUT_MS}, with the error they ended with. */
  slow: { n: number; ms: number; code: string }[];
}

function poolFor(
  driver: DriverChoice,
  role: RoleCredentials | undefined,
  options: PoolOptions = {},
): Promise<Pool> {
  const dsn = server.dsnFor(
    role === undefined
      ? { host: "127.0.0.1" }
      : { host: "127.0.0.1", user: role.user, password: role.password },
  );
  return createPool(plainProxy.dsnFrom(dsn), {
    driver,
    minSize: 0,
    maxSize: 2,
    connectTimeout: 3,
    onWarning: () => {},
    ...options,
  });
}

/** The parts of an error: those of a SuppressedError (errorParts) and of an AggregateError, flattened. */
function allParts(e: unknown): unknown[] {
  return errorParts(e).flatMap((part) =>
    part instanceof AggregateError ? part.errors.flatMap(allParts) : [part]
  );
}

/** Fails unless every part of `e` is a PoolError. */
function assertTyped(e: unknown, where: string): void {
  const parts = allParts(e);
  assert.ok(parts.length > 0, `${where}: an error with parts`);
  for (const part of parts) {
    assert.ok(
      part instanceof PoolError,
      `${where}: a typed error, got ${
        part instanceof Error ? `${part.name}: ${part.message}` : String(part)
      }`,
    );
  }
}

/**
 * The cut points of a cycle of `cycle` bytes: every byte below {@linkcode FINE_BELOW}, every
 * {@linkcode TAIL_STEP}th in `fine` (a byte range), every `coarse`th elsewhere, up to a little
 * past the end.
 */
function cutPoints(cycle: number, fine?: readonly [number, number], coarse = COARSE_STEP): number[] {
  const cuts: number[] = [];
  for (let n = 0; n < cycle + 40;) {
    cuts.push(n);
    if (n < FINE_BELOW) n++;
    else if (fine !== undefined && n >= fine[0] && n < fine[1]) n += TAIL_STEP;
    else n = fine !== undefined && n < fine[0] ? Math.min(n + coarse, fine[0]) : n + coarse;
  }
  return cuts;
}

/** Bytes through `proxy`, both ways, since `since`. */
function bytesSince(proxy: FaultProxy, since: { bytesUp: number; bytesDown: number }): number {
  const s = proxy.stats();
  return s.bytesUp + s.bytesDown - since.bytesUp - since.bytesDown;
}

/**
 * Measures one cycle (twice, on a fresh connection each: connect + statement + release), then
 * runs it once per cut point on a fresh connection with the cut armed (the cycle gets the cut's
 * byte count, -1 uncut). `fine` gives, from the cycle's size, a byte range swept every other byte.
 */
async function sweep(
  pool: Pool,
  label: string,
  cycle: (n: number) => Promise<void>,
  opts: { fine?: (cycle: number) => readonly [number, number]; coarse?: number; via?: FaultProxy } = {},
): Promise<Sweep> {
  const proxy = opts.via ?? plainProxy;
  // A first cycle warms up what a driver does once (e.g. fetching types); the next two are measured.
  let s0 = proxy.stats();
  for (let i = 0; i < UNCUT_CYCLES; i++) {
    if (i === 1) s0 = proxy.stats();
    pool.expireConnections();
    await within(CYCLE_BOUND_MS, cycle(-1), `${label}: an uncut cycle`);
  }
  const cycleBytes = Math.ceil(bytesSince(proxy, s0) / (UNCUT_CYCLES - 1));
  const cuts = cutPoints(cycleBytes, opts.fine?.(cycleBytes), opts.coarse);
  const tally = new Tally();
  const slow: Sweep["slow"] = [];
  const firstByCode = new Map<string, number>();
  let slowest = { n: -1, ms: -1 };
  const started = Date.now();
  for (const n of cuts) {
    pool.expireConnections();
    proxy.cutAfterBytes(n);
    const t0 = Date.now();

    let error: unknown;
    try {
      await within(CYCLE_BOUND_MS, cycle(n), `${label}, cut after ${n} bytes`);
      tally.ok++;
    } catch (e) {
      error = e;
      const code = tally.fail(e);
      if (!firstByCode.has(code)) {
        firstByCode.set(code, n);
        if (process.env.BYTECUT_DEBUG) console.log(`[debug] ${label} cut ${n}:`, e);
      }
      assertTyped(e, `${label}, cut after ${n} bytes`);
    }
    const ms = Date.now() - t0;
    if (process.env.BYTECUT_DEBUG === "2") {
      console.log(`[debug] ${label}: cut ${n} ${ms} ms ${error === undefined ? "ok" : codeOfErr(error)}`);
    }
    if (ms > slowest.ms) slowest = { n, ms };
    if (ms > SLOW_CUT_MS) slow.push({ n, ms, code: error === undefined ? "ok" : codeOfErr(error) });
    assert.ok(pool.getSize() <= pool.getMaxSize(), `${label}, cut after ${n} bytes: size within max`);
    assert.equal(pool.getWaitingCount(), 0, `${label}, cut after ${n} bytes: no waiter left`);
  }
  const ms = Date.now() - started;
  proxy.cutAfterBytes(undefined);
  return { cycle: cycleBytes, cuts, tally, ms, slowest, slow, firstByCode };
}

function codeOfErr(e: unknown): string {
  const first = errorParts(e)[0];
  return first instanceof PoolError ? first.code : String(first);
}

function describeSweep(s: Sweep): string {
  return `${s.cuts.length} cuts (0..${s.cuts.at(-1)} bytes, cycle ${s.cycle} bytes) in ${s.ms} ms; ` +
    `slowest cut ${s.slowest.n} (${s.slowest.ms} ms); ${s.tally} (first cut per code: ${
      [...s.firstByCode].map(([code, n]) => `${code}@${n}`).join(" ")
    })`;
}

/** Ends a scenario: the pool goes, the faults are cleared and the proxy carries nothing. */
async function settle(pool: Pool | undefined, proxy = plainProxy): Promise<void> {
  pool?.terminate();
  proxy.clearFaults();
  await waitFor("the proxy to be empty", () => proxy.connections === 0, 5000);
}

/** Rows per COPY IN / COPY OUT. */
const COPY_ROWS = 5;

for (const driver of DRIVERS) {
  describe(`Faults: a connection cut after every byte count (${driver} driver)`, { timeout: 240_000 }, () => {
    before(async () => {
      server ??= await getTestServer();
      plainProxy ??= await FaultProxy.start({ host: "127.0.0.1", port: server.port });
      admin ??= await connect(server.dsn);
    });

    for (const method of ["scram", "md5"] as const) {
      it(
        `${driver}: connect with ${method} auth + an INSERT, cut after every byte count: success or a typed error, no slot leak, no lost or doubled write`,
        { timeout: 120_000 },
        async (t) => {
          const role = server[method];
          if (role === undefined) {
            return skipTest(t, `the server has no ${method} role (DATABASE_URL in use)`);
          }
          plainProxy.clearFaults();
          const trap = trapUnhandledRejections();
          const ledger = await Ledger.create(admin, `ledger_cut_${method}_${driver}`);
          await admin.execute(`GRANT SELECT, INSERT ON ${ledger.table} TO ${role.user}`);
          let pool: Pool | undefined;
          try {
            pool = await poolFor(driver, role);
            const p = pool;
            const insert = (): Promise<void> =>
              ledger.write((sql, args) => p.execute(sql, args, { timeout: 4 }), `${method} ${driver}`);
            const s = await sweep(p, `${driver} ${method} + insert`, insert, {
              // the insert and the release's reset: the last ~third of the cycle
              fine: (cycle) => [Math.floor(cycle * 0.65), cycle],
            });
            await assertPoolInvariants(p);
            assert.equal(await p.fetchVal("SELECT current_user"), role.user);
            const report = await ledger.verify(admin);
            note(
              `cut (${driver}, ${method} + insert)`,
              `${describeSweep(s)}; ledger ${describeReport(report)}`,
            );
            assert.ok(s.tally.failed > 0 && s.tally.ok > 0, `both outcomes seen (${s.tally})`);
            assert.deepEqual(s.slow, [], "every cut is seen at once, none waits on a deadline");
            assertLedgerClean(report, `${driver} ${method}`);
          } finally {
            await settle(pool);
            trap.check();
          }
        },
      );
    }

    for (const sslmode of ["require", "verify-full"] as const) {
      it(
        `${driver}: TLS (sslmode=${sslmode}) + scram auth + an INSERT, cut after every byte count: success or a typed error, no slot leak, no lost or doubled write`,
        { timeout: 120_000 },
        async () => {
          if (tls === undefined) {
            const certs = await makeTestCerts();
            const server = await startPostgres({
              ssl: { certFile: certs.server.certFile, keyFile: certs.server.keyFile },
            });
            const proxy = await FaultProxy.start({ host: "127.0.0.1", port: server.port });
            tls = { certs, server, proxy, admin: await connect(server.dsn) };
          }
          const { proxy, server: tlsServer, admin: tlsAdmin, certs } = tls;
          proxy.clearFaults();
          const trap = trapUnhandledRejections();
          const role = tlsServer.scram;
          const ledger = await Ledger.create(
            tlsAdmin,
            `ledger_cut_tls_${sslmode.replace("-", "_")}_${driver}`,
          );
          await tlsAdmin.execute(`GRANT SELECT, INSERT ON ${ledger.table} TO ${role.user}`);
          let pool: Pool | undefined;
          try {
            pool = await createPool(
              proxy.dsnFrom(
                tlsServer.dsnFor({ host: "127.0.0.1", user: role.user, password: role.password }),
              ),
              {
                driver,
                minSize: 0,
                maxSize: 2,
                connectTimeout: 3,
                sslmode,
                ...(sslmode === "verify-full" ? { sslrootcert: certs.ca.pem } : {}),
                onWarning: () => {},
              },
            );
            const p = pool;
            const insert = (): Promise<void> =>
              ledger.write((sql, args) => p.execute(sql, args, { timeout: 4 }), `tls ${sslmode} ${driver}`);
            const s = await sweep(p, `${driver} tls ${sslmode} + scram + insert`, insert, {
              coarse: TLS_COARSE_STEP,
              via: proxy,
            });
            await assertPoolInvariants(p);
            assert.equal(await p.fetchVal("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), true);
            const report = await ledger.verify(tlsAdmin);
            note(
              `cut (${driver}, tls ${sslmode} + scram + insert)`,
              `${describeSweep(s)}; ledger ${describeReport(report)}`,
            );
            assert.ok(s.tally.failed > 0 && s.tally.ok > 0, `both outcomes seen (${s.tally})`);
            assert.deepEqual(s.slow, [], "every cut is seen at once, none waits on a deadline");
            assertLedgerClean(report, `${driver} tls ${sslmode}`);
          } finally {
            await settle(pool, proxy);
            trap.check();
          }
        },
      );
    }

    it(
      `${driver}: COPY IN (copyRecordsToTable, copyToTable) on a fresh connection, cut after every byte count: a copy is in the table whole or not at all, exactly once when it resolved`,
      { timeout: 120_000 },
      async () => {
        plainProxy.clearFaults();
        const trap = trapUnhandledRejections();
        const table = `bytecut_copy_in_${driver}`;
        await admin.execute(`DROP TABLE IF EXISTS ${table}`);
        await admin.execute(`CREATE TABLE ${table} (copy_id int NOT NULL, k int NOT NULL, note text)`);
        /** Each copy's outcome: resolved, failed for sure, or failed without knowing. */
        const outcomes = new Map<
          number,
          { outcome: "acked" | "failed" | "ambiguous"; code: string; n: number }
        >();
        let nextId = 1;
        let pool: Pool | undefined;
        try {
          pool = await poolFor(driver, undefined);
          const p = pool;
          const copy = async (cut: number): Promise<void> => {
            const id = nextId++;
            const records = Array.from({ length: COPY_ROWS }, (_, k) => [id, k, `row ${k} of copy ${id}`]);
            try {
              const tag = id % 2 === 0
                ? await p.copyRecordsToTable(table, { records, timeout: 4 })
                : await p.copyToTable(table, {
                  source: records.map((r) => r.join("\t") + "\n").join(""),
                  timeout: 4,
                });
              assert.equal(tag, `COPY ${COPY_ROWS}`);
              outcomes.set(id, { outcome: "acked", code: "", n: cut });
            } catch (e) {
              outcomes.set(id, {
                outcome: provesNotWritten(e) ? "failed" : "ambiguous",
                code: codeOfErr(e),
                n: cut,
              });
              throw e;
            }
          };
          const s = await sweep(p, `${driver} copy in`, copy, {
            fine: (cycle) => [Math.floor(cycle * 0.55), cycle],
          });
          await assertPoolInvariants(p);
          const rows = await admin.fetch<{ copy_id: number; n: string; keys: string }>(
            `SELECT copy_id, count(*) AS n, count(DISTINCT k) AS keys FROM ${table} GROUP BY copy_id`,
          );
          const present = new Map(rows.map((r) => [r.copy_id, Number(r.n)]));
          const partial: number[] = [];
          const lost: number[] = [];
          const phantoms: { id: number; code: string }[] = [];
          let ambiguousCommitted = 0;
          const committedCodes = new Set<string>();
          for (const r of rows) {
            if (Number(r.n) !== COPY_ROWS || Number(r.keys) !== COPY_ROWS) partial.push(r.copy_id);
            if (!outcomes.has(r.copy_id)) phantoms.push({ id: r.copy_id, code: "never attempted" });
          }
          const counts = { acked: 0, failed: 0, ambiguous: 0 };
          for (const [id, o] of outcomes) {
            counts[o.outcome]++;
            const n = present.get(id) ?? 0;
            if (o.outcome === "acked" && n === 0) lost.push(id);
            if (o.outcome === "failed" && n > 0) phantoms.push({ id, code: o.code });
            if (o.outcome === "ambiguous" && n > 0) {
              ambiguousCommitted++;
              committedCodes.add(o.code);
            }
          }
          note(
            `cut (${driver}, copy in)`,
            `${
              describeSweep(s)
            }; copies acked ${counts.acked}, failed ${counts.failed}, ambiguous ${counts.ambiguous} ` +
              `(${ambiguousCommitted} committed: ${[...committedCodes].join(" ") || "-"})`,
          );
          assert.deepEqual(partial, [], "every copy in the table is whole and there once");
          assert.deepEqual(lost, [], "every copy that resolved is in the table");
          assert.deepEqual(phantoms, [], "no copy that failed for sure is in the table");
          assert.equal(
            counts.acked,
            s.tally.ok + UNCUT_CYCLES,
            "the resolved copies are the successful cycles",
          );
          assert.deepEqual(s.slow, [], "every cut is seen at once, none waits on a deadline");
          assert.ok(s.tally.failed > 0 && s.tally.ok > 0, `both outcomes seen (${s.tally})`);
        } finally {
          await settle(pool);
          trap.check();
        }
      },
    );

    it(
      `${driver}: COPY OUT (copyFromQuery, copyFromTable) on a fresh connection, cut after every byte count: the whole output on success, else a typed error`,
      { timeout: 120_000 },
      async () => {
        plainProxy.clearFaults();
        const trap = trapUnhandledRejections();
        const table = `bytecut_copy_out_${driver}`;
        await admin.execute(`DROP TABLE IF EXISTS ${table}`);
        await admin.execute(`CREATE TABLE ${table} (k int NOT NULL, note text)`);
        await admin.execute(
          `INSERT INTO ${table} SELECT g, 'row ' || g FROM generate_series(1, ${COPY_ROWS}) AS g`,
        );
        const expected = Array.from({ length: COPY_ROWS }, (_, i) => `${i + 1}\trow ${i + 1}\n`).join("");
        let pool: Pool | undefined;
        let round = 0;
        try {
          pool = await poolFor(driver, undefined);
          const p = pool;
          const copy = async (): Promise<void> => {
            const decoder = new TextDecoder();
            let text = "";
            let settled = false;
            let late = 0;
            const output = (chunk: Uint8Array): void => {
              if (settled) late++;
              text += decoder.decode(chunk, { stream: true });
            };
            try {
              const tag = round++ % 2 === 0
                ? await p.copyFromTable(table, { output, columns: ["k", "note"], timeout: 4 })
                : await p.copyFromQuery(
                  `SELECT g AS k, 'row ' || g AS note FROM generate_series(1, $1::int) AS g`,
                  [COPY_ROWS],
                  { output, timeout: 4 },
                );
              assert.equal(tag, `COPY ${COPY_ROWS}`);
              assert.equal(text, expected, "a copy that resolved delivered all its output");
            } finally {
              settled = true;
            }
            assert.equal(late, 0, "no output after the copy settled");
          };
          const s = await sweep(p, `${driver} copy out`, copy, {
            fine: (cycle) => [Math.floor(cycle * 0.55), cycle],
          });
          await assertPoolInvariants(p);
          note(`cut (${driver}, copy out)`, describeSweep(s));
          assert.deepEqual(s.slow, [], "every cut is seen at once, none waits on a deadline");
          assert.ok(s.tally.failed > 0 && s.tally.ok > 0, `both outcomes seen (${s.tally})`);
        } finally {
          await settle(pool);
          trap.check();
        }
      },
    );
  });
}

/**
 * Scripted "servers" that close the stream at a moment a real cut can pick: right behind the
 * answer to the `SSLRequest` (`N`) in the same job — at once (`sync`) or a microtask later, as the
 * Bun adapter reports a close — or in the middle of the TLS handshake (`S`, then a close while
 * `startTls()` is pending and never settles, as the Deno adapter's `node:tls` path did). The
 * transport contract allows a close at any of these moments; nothing more ever comes.
 */
type ScriptedClose = "sync" | "microtask" | "during TLS";

function scriptedServer(when: ScriptedClose): Connector {
  return (_target, handlers: TransportHandlers): Promise<Transport> => {
    let closed = false;
    const close = (error?: Error): void => {
      if (closed) return;
      closed = true;
      handlers.close(error);
    };
    const reset = (): Error =>
      Object.assign(new Error("The peer reset the connection"), { code: "ECONNRESET" });
    const transport: Transport = {
      write(chunk: Uint8Array): boolean {
        if (closed) return false;
        if (chunk.length === 8) {
          handlers.data(new Uint8Array([when === "during TLS" ? 0x53 : 0x4e]));
          if (when === "sync") close(reset());
          else if (when === "microtask") queueMicrotask(() => close(reset()));
        }
        return true;
      },
      pause(): void {},
      resume(): void {},
      end(): void {
        queueMicrotask(() => close());
      },
      destroy(): void {
        queueMicrotask(() => close());
      },
      startTls(): Promise<void> {
        setTimeout(() => close(reset()), 1);
        return new Promise<void>(() => {});
      },
      ref(): void {},
      unref(): void {},
    };
    return Promise.resolve(transport);
  };
}

describe("Faults: a cut between the answer to the SSLRequest and the startup (regression)", () => {
  for (
    const [name, create] of [["native", createNativeDriver], ["postgres", createPostgresDriver]] as const
  ) {
    for (const when of ["sync", "microtask", "during TLS"] as const) {
      it(
        `${name}: connect() rejects with a ConnectionError at once when the server closes ${
          when === "during TLS" ? "during the TLS handshake" : `in the job of its 'N' (${when})`
        }, not at connectTimeout`,
        async () => {
          const driver = create(scriptedServer(when));
          const sslmode = when === "during TLS" ? "require" : "prefer";
          for (const connectTimeout of [2, 0]) {
            const started = Date.now();
            const error = await within(
              4000,
              driver.connect({ dsn: "postgres://u@127.0.0.1:1/db", connectTimeout, sslmode }).then(
                (con) => {
                  con.terminate();
                  return undefined;
                },
                (e: unknown) => e,
              ),
              `connect() with connectTimeout ${connectTimeout}`,
            );
            const ms = Date.now() - started;
            assert.ok(error instanceof ConnectionError, `a ConnectionError, got ${String(error)}`);
            assert.ok(ms < 1000, `rejected after ${ms} ms (connectTimeout ${connectTimeout})`);
          }
        },
      );
    }
  }
});

describe("Faults: byte cuts, teardown", () => {
  after(async () => {
    await admin?.close();
    await plainProxy?.close();
    if (tls !== undefined) {
      await tls.admin.close();
      await tls.proxy.close();
      await tls.server.destroy();
      await tls.certs.remove();
    }
  });
  it("the sweep's cut points: every byte first, every other one in the tail, else coarser, past the cycle's end", () => {
    const cuts = cutPoints(300, [250, 260]);
    assert.deepEqual(cuts.slice(0, 3), [0, 1, 2]);
    assert.equal(cuts[FINE_BELOW], FINE_BELOW);
    assert.equal(cuts[FINE_BELOW + 1], FINE_BELOW + COARSE_STEP);
    for (let n = 250; n < 260; n += TAIL_STEP) assert.ok(cuts.includes(n), `${n} is a cut point`);
    assert.ok(cuts.at(-1)! >= 300, "the last cut is past the cycle");
  });
});

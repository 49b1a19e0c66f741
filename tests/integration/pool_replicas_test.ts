/**
 * Read routing like libpq 16 (issue 13, point 1) against a real primary and two
 * streaming replicas made by the harness (`pg_basebackup -R`, see
 * tests/support/pg_server.ts `standbyOf`): a `prefer-standby` pool with
 * `loadBalanceHosts: "random"` spreads its connections over both replicas,
 * falls back to the primary while both are down, and returns to them once they
 * are back (its fallback connections live `fallbackLifetime`); a `read-write`
 * pool keeps writing through a promotion. The tests run in order on one
 * cluster (the last promotes a replica). Runs on both drivers (`test:other`).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Pool, type PoolConnection } from "../../mod.ts";
import { type PostgresInstance, standbyAvailable, startPostgres } from "../support/pg_server.ts";
import { skipTest } from "../support/skip.ts";
import { createTestPool, waitFor, within } from "./pool_support.ts";

interface Cluster {
  primary: PostgresInstance;
  replica1: PostgresInstance;
  replica2: PostgresInstance;
}

/** Each checkout's server port, for `n` checkouts held at once. */
async function portsOf(pool: Pool, n: number): Promise<number[]> {
  const held: PoolConnection[] = [];
  try {
    for (let i = 0; i < n; i++) held.push(await pool.acquire({ timeout: 10 }));
    return await Promise.all(
      held.map(async (con) => Number(await con.fetchVal("SELECT inet_server_port()"))),
    );
  } finally {
    for (const con of held) await pool.release(con);
  }
}

function count(ports: readonly number[], port: number): number {
  return ports.filter((p) => p === port).length;
}

describe(
  "Read replicas: prefer-standby, loadBalanceHosts and failover (own servers)",
  { timeout: 120_000 },
  () => {
    let cluster: Cluster | undefined;
    const started: PostgresInstance[] = [];

    before(async () => {
      if (!standbyAvailable()) return;
      // WAL kept for the replicas while they are down (they stream without a slot).
      const primary = await startPostgres({ config: { wal_keep_size: "256MB" } });
      started.push(primary);
      // One base backup at a time: two at once can lose the WAL segment the first one needs.
      const replica1 = await startPostgres({ standbyOf: primary });
      started.push(replica1);
      const replica2 = await startPostgres({ standbyOf: primary });
      started.push(replica2);
      cluster = { primary, replica1, replica2 };
    }, { timeout: 60_000 });

    after(async () => {
      await within(30_000, Promise.all(started.map((pg) => pg.destroy())), "destroying the cluster");
    });

    /** The cluster, or a skip when this machine cannot make standbys. */
    function need(t: { name: string; skip(message?: string): void }): Cluster | undefined {
      if (cluster === undefined) skipTest(t, "no pg_basebackup with these binaries");
      return cluster;
    }

    /** The prefer-standby pool the first three tests share, made by the first. */
    let readers: Pool | undefined;
    after(async () => {
      await readers?.close({ timeout: 5 }).catch(() => readers?.terminate());
    });

    function dsnOf(c: Cluster, hosts: PostgresInstance[], params: string): string {
      return `postgres://${c.primary.user}@${hosts.map((h) => `127.0.0.1:${h.port}`).join(",")}/` +
        `${c.primary.database}?sslmode=disable&${params}`;
    }

    it(
      "a prefer-standby pool with loadBalanceHosts random spreads its connections over both replicas and none on the primary",
      { timeout: 30_000 },
      async (t) => {
        const c = need(t);
        if (c === undefined) return;
        readers = await createTestPool(
          dsnOf(c, [c.primary, c.replica1, c.replica2], "target_session_attrs=prefer-standby"),
          { loadBalanceHosts: "random", maxSize: 8, fallbackLifetime: 1, onWarning: () => {} },
        );
        const ports: number[] = [];
        // Three rounds of 8 fresh connections: with a fair coin per connection, a replica with
        // fewer than 3 of 24 is a 1-in-25,000 event.
        for (let round = 0; round < 3; round++) {
          ports.push(...await portsOf(readers, 8));
          readers.expireConnections();
        }
        assert.equal(count(ports, c.primary.port), 0, `none on the primary: ${ports}`);
        assert.ok(count(ports, c.replica1.port) >= 3, `replica 1 has ${count(ports, c.replica1.port)} of 24`);
        assert.ok(count(ports, c.replica2.port) >= 3, `replica 2 has ${count(ports, c.replica2.port)} of 24`);
      },
    );

    it(
      "when both replicas stop, the prefer-standby pool drops their connections and serves from the primary",
      { timeout: 30_000 },
      async (t) => {
        const c = need(t);
        if (c === undefined || readers === undefined) return;
        const pool = readers;
        await portsOf(pool, 8); // 8 open connections, all on the replicas
        const brokenBefore = pool.stats().closeCount.broken;
        await Promise.all([c.replica1.stop(), c.replica2.stop()]);
        await waitFor("the pool to drop the replicas' connections", () => pool.getSize() === 0, 5000);
        assert.equal(
          pool.stats().closeCount.broken - brokenBefore,
          8,
          "each dead connection counted as broken",
        );
        const results = await Promise.all(
          Array.from(
            { length: 16 },
            () => pool.fetchRow("SELECT inet_server_port() AS port, pg_is_in_recovery() AS r"),
          ),
        );
        for (const row of results) assert.deepEqual(row, { port: c.primary.port, r: false });
        assert.deepEqual(
          new Set(await portsOf(pool, 8)),
          new Set([c.primary.port]),
          "8 checkouts on the primary",
        );
      },
    );

    it(
      "when the replicas are back, the prefer-standby pool's fallback connections are recycled and checkouts land on the replicas again",
      { timeout: 30_000 },
      async (t) => {
        const c = need(t);
        if (c === undefined || readers === undefined) return;
        const pool = readers;
        assert.ok(pool.getSize() > 0, "the pool holds fallback connections on the primary");
        const lifetimeBefore = pool.stats().closeCount.maxLifetime;
        await Promise.all([c.replica1.start(), c.replica2.start()]);
        const back = Date.now();
        // fallbackLifetime is 1 s: within a few seconds every checkout is on a replica again.
        let last: number[] = [];
        await waitFor(
          "8 checkouts at once, all on the replicas",
          async () => {
            last = await portsOf(pool, 8);
            return count(last, c.primary.port) === 0;
          },
          10_000,
          100,
        );
        const took = Date.now() - back;
        assert.ok(
          pool.stats().closeCount.maxLifetime > lifetimeBefore,
          "the fallback connections were recycled",
        );
        assert.ok(took < 10_000, `back on the replicas ${took} ms after they restarted`);
        // Both serve again. The 8 connections above were opened one by one while the replicas came back
        // (one may accept before the other), and 8 coin flips all land on one replica 1 time in 128:
        // rounds of 8 fresh connections decide it (all 24 on one replica: 1 in 8 million).
        const ports = [...last];
        for (
          let round = 0;
          round < 2 && (count(ports, c.replica1.port) === 0 || count(ports, c.replica2.port) === 0);
          round++
        ) {
          pool.expireConnections();
          const fresh = await portsOf(pool, 8);
          assert.equal(count(fresh, c.primary.port), 0, `fresh connections on the replicas only: ${fresh}`);
          ports.push(...fresh);
        }
        assert.ok(
          count(ports, c.replica1.port) > 0 && count(ports, c.replica2.port) > 0,
          `both replicas serve again: ${ports}`,
        );
      },
    );

    it(
      "a read-write pool over the primary and replica 1 keeps writing through the promotion of replica 1 after the primary stops",
      { timeout: 40_000 },
      async (t) => {
        const c = need(t);
        if (c === undefined) return;
        {
          await using seed = await connect(c.primary.dsn);
          await seed.execute("CREATE TABLE replicas_writes (n int PRIMARY KEY, at_port int NOT NULL)");
        }
        await using pool = await createTestPool(
          dsnOf(c, [c.primary, c.replica1], "target_session_attrs=read-write"),
          { maxSize: 4, connectTimeout: 2, onWarning: () => {} },
        );
        let next = 0;
        const acked: { n: number; port: number; at: number }[] = [];
        const errors = new Map<string, number>();
        let stop = false;
        const writer = (async (): Promise<void> => {
          while (!stop) {
            const n = ++next;
            try {
              const port = await pool.fetchVal(
                "INSERT INTO replicas_writes VALUES ($1, inet_server_port()) RETURNING at_port",
                [n],
                { timeout: 2 },
              );
              acked.push({ n, port: Number(port), at: Date.now() });
            } catch (e) {
              const code = String((e as { code?: unknown }).code ?? (e as Error).name);
              errors.set(code, (errors.get(code) ?? 0) + 1);
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
        })();
        try {
          await waitFor("writes on the primary", () => acked.length >= 20, 10_000);
          await c.primary.stop();
          {
            await using r1 = await connect(c.replica1.dsn);
            assert.equal(await r1.fetchVal("SELECT pg_promote(true, 30)"), true);
          }
          const promoted = Date.now();
          await waitFor(
            "20 writes on the promoted replica",
            () => acked.filter((a) => a.port === c.replica1.port).length >= 20,
            15_000,
          );
          const first = acked.find((a) => a.port === c.replica1.port)!;
          assert.ok(
            first.at - promoted < 5000,
            `the first write on replica 1 came ${first.at - promoted} ms after the promotion`,
          );
        } finally {
          stop = true;
          await within(5000, writer, "the writer");
        }
        for (const code of errors.keys()) {
          assert.ok(
            [
              "57P01",
              "CONNECTION_LOST",
              "CONNECTION_CLOSED",
              "ECONNREFUSED",
              "ECONNRESET",
              "EPIPE",
              "25006",
              "SESSION_ATTRS_MISMATCH",
              "QUERY_TIMEOUT",
              "CONNECT_TIMEOUT",
            ].includes(code),
            `unexpected error ${code}: ${[...errors]}`,
          );
        }
        // Every acknowledged write is on the promoted replica (the primary's reached it before the stop).
        await using check = await connect(c.replica1.dsn);
        const rows = await check.fetch("SELECT n FROM replicas_writes ORDER BY n");
        const stored = new Set(rows.map((r) => Number(r.n)));
        const lost = acked.filter((a) => !stored.has(a.n));
        assert.deepEqual(lost, [], "no acknowledged write lost");
        assert.equal(await pool.fetchVal("SELECT pg_is_in_recovery()"), false);
        assert.equal(Number(await pool.fetchVal("SELECT inet_server_port()")), c.replica1.port);
      },
    );
  },
);

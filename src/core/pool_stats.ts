/**
 * The pool's counters and the snapshot `pool.stats()` returns. The counters are
 * plain number fields the pool bumps in place: feeding them allocates nothing.
 *
 * @module
 */

/**
 * Why the pool closed a connection (the keys of {@linkcode PoolStats.closeCount}):
 * - `maxLifetime`: it outlived its `maxLifetime` (closed at release or while idle).
 * - `idle`: it sat idle for `maxInactiveConnectionLifetime`.
 * - `maxQueries`: it ran `maxQueries` statements.
 * - `expired`: `expireConnections()` or `setConnectArgs()` made it stale.
 * - `broken`: it died (server, network), failed its liveness ping, its `init` or `setup` failed or
 *   was cut short, or its server turned read-only under `targetSessionAttrs`.
 * - `resetFailed`: its release failed or timed out.
 * - `closed`: `close()` or `terminate()`.
 */
export type CloseReason =
  | "maxLifetime"
  | "idle"
  | "maxQueries"
  | "expired"
  | "broken"
  | "resetFailed"
  | "closed";

/** Connections closed so far, by {@linkcode CloseReason}. */
export interface CloseCounts {
  /** Outlived their `maxLifetime`. */
  maxLifetime: number;
  /** Idle for `maxInactiveConnectionLifetime`. */
  idle: number;
  /** Ran `maxQueries` statements. */
  maxQueries: number;
  /** Stale after `expireConnections()`. */
  expired: number;
  /** Died, failed a ping, failed `init`/`setup`, or turned read-only. */
  broken: number;
  /** Their release failed or timed out. */
  resetFailed: number;
  /** Closed by `close()` or `terminate()`. */
  closed: number;
}

/**
 * A plain snapshot of a pool, from `pool.stats()`. The first seven fields are
 * gauges (now); the rest are counters since the pool was made, which only grow.
 * Taking one is cheap enough to do every second.
 *
 * @example Watch a pool
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPool, type PoolStats } from "@x/pgpool";
 * await using pool = await createPool({ minSize: 1, maxSize: 4 });
 * await pool.fetchVal("SELECT 1");
 * const s: PoolStats = pool.stats();
 * assert.equal(s.size, s.idle + s.busy);
 * assert.ok(s.acquireCount >= 1);
 * assert.equal(s.closeCount.broken, 0);
 * ```
 */
export interface PoolStats {
  /** Open connections (idle and busy). */
  size: number;
  /** Open connections ready to be checked out. */
  idle: number;
  /** Open connections not idle: checked out, or being set up, pinged or reset. */
  busy: number;
  /** Acquires queued for a connection. */
  waiting: number;
  /** Connection attempts under way (by acquires and by the kept floor). */
  connecting: number;
  /** The configured `maxSize`. */
  maxSize: number;
  /** The configured `minSize`. */
  minSize: number;
  /** Acquires that returned a connection. */
  acquireCount: number;
  /** Acquires that had to queue for a connection (however they ended). */
  acquireWaitCount: number;
  /** Seconds acquires spent queued, in total. */
  acquireWaitTime: number;
  /** Acquires that rejected with `ACQUIRE_TIMEOUT`. */
  acquireTimeoutCount: number;
  /** Acquires given up through their `signal`. */
  acquireAbortCount: number;
  /** Connections opened. */
  connectCount: number;
  /** Connection attempts that failed (or that an acquire gave up on). */
  connectErrorCount: number;
  /** Connections closed, by reason. */
  closeCount: CloseCounts;
  /** Liveness pings that failed (each dropped its connection, counted in `closeCount.broken`). */
  pingFailCount: number;
  /** Checkouts reported as leaked (`CONNECTION_LEAK`). */
  leakCount: number;
}

/** The pool's running counters: plain number fields, bumped in place. Internal. */
export class PoolCounters {
  acquireCount = 0;
  acquireWaitCount = 0;
  /** Milliseconds. */
  acquireWaitMs = 0;
  acquireTimeoutCount = 0;
  acquireAbortCount = 0;
  connectCount = 0;
  connectErrorCount = 0;
  pingFailCount = 0;
  leakCount = 0;
  closeMaxLifetime = 0;
  closeIdle = 0;
  closeMaxQueries = 0;
  closeExpired = 0;
  closeBroken = 0;
  closeResetFailed = 0;
  closeClosed = 0;

  /** Counts one closed connection. */
  closed(reason: CloseReason): void {
    switch (reason) {
      case "maxLifetime":
        this.closeMaxLifetime++;
        return;
      case "idle":
        this.closeIdle++;
        return;
      case "maxQueries":
        this.closeMaxQueries++;
        return;
      case "expired":
        this.closeExpired++;
        return;
      case "broken":
        this.closeBroken++;
        return;
      case "resetFailed":
        this.closeResetFailed++;
        return;
      case "closed":
        this.closeClosed++;
        return;
    }
  }

  /** The close counts as a plain object. */
  closeCounts(): CloseCounts {
    return {
      maxLifetime: this.closeMaxLifetime,
      idle: this.closeIdle,
      maxQueries: this.closeMaxQueries,
      expired: this.closeExpired,
      broken: this.closeBroken,
      resetFailed: this.closeResetFailed,
      closed: this.closeClosed,
    };
  }
}

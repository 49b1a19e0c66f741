/**
 * The postgres.js driver's connect bound on an injected fake clock, over a
 * fake transport whose server never answers: no server, no sleeping.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PoolTimeoutError } from "../../src/core/errors.ts";
import { createPostgresDriver } from "../../src/drivers/postgresjs/driver.ts";
import type { Connector, Transport, TransportHandlers } from "../../src/runtime/transport.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";

/** A connector whose transports accept bytes and never answer; it records what happened to them. */
function silentServer(): { connector: Connector; opened: number; destroyed: number; signals: AbortSignal[] } {
  const state = {
    opened: 0,
    destroyed: 0,
    signals: [] as AbortSignal[],
    connector: ((_target, handlers: TransportHandlers, options) => {
      state.opened++;
      if (options.signal !== undefined) state.signals.push(options.signal);
      let closed = false;
      const transport: Transport = {
        write: () => true,
        pause: () => {},
        resume: () => {},
        end: () => transport.destroy(),
        destroy: () => {
          if (closed) return;
          closed = true;
          state.destroyed++;
          handlers.close();
        },
        startTls: () => new Promise<void>(() => {}),
        ref: () => {},
        unref: () => {},
      };
      return Promise.resolve(transport);
    }) as Connector,
  };
  return state;
}

describe("postgres.js driver on an injected clock", () => {
  it("Driver.connect() rejects CONNECT_TIMEOUT when the clock passes connect_timeout, and leaves nothing open", async () => {
    const clock = new FakeClock();
    const server = silentServer();
    const driver = createPostgresDriver(server.connector, { env: {}, clock });
    const got: { outcome: unknown } = { outcome: "pending" };
    driver.connect({ host: "10.0.0.1", port: 5432, connectTimeout: 3, sslmode: "prefer" }).then(
      () => (got.outcome = "connected"),
      (error) => (got.outcome = error),
    );
    await clock.tick(2999);
    assert.equal(got.outcome === "pending", true, "still pending");
    assert.equal(clock.pending, 1, "one timer: the driver's watchdog");
    await clock.tick(1);
    assert.ok(got.outcome instanceof PoolTimeoutError, String(got.outcome));
    assert.equal(got.outcome.code, "CONNECT_TIMEOUT");
    assert.match(got.outcome.message, /Timed out after 3s connecting to 10\.0\.0\.1:5432/);
    assert.equal(server.opened, 1);
    assert.equal(server.destroyed, 1, "the half-open transport was closed");
    assert.equal(server.signals[0]!.aborted, true, "the connector was told to give up");
    await flush();
    assert.equal(clock.pending, 0, "no timer left behind");
  });

  it("Driver.connect() tries the next host when one times out, each attempt with its own bound", async () => {
    const clock = new FakeClock();
    const server = silentServer();
    const driver = createPostgresDriver(server.connector, { env: {}, clock });
    const got: { outcome: unknown } = { outcome: "pending" };
    driver.connect({ dsn: "postgres://u@a:1,b:2/db?connect_timeout=2&sslmode=prefer" }).then(
      () => (got.outcome = "connected"),
      (error) => (got.outcome = error),
    );
    await clock.tick(2000);
    assert.equal(server.opened, 2, "the second host is tried once the first timed out");
    assert.equal(got.outcome === "pending", true, "still pending");
    await clock.tick(2000);
    assert.ok(got.outcome instanceof PoolTimeoutError);
    assert.match(got.outcome.message, /connecting to b:2/, "the last host's error is reported");
    assert.equal(server.destroyed, 2);
  });

  it("Driver.connect() rejects with the caller's reason on abort, before the timeout", async () => {
    const clock = new FakeClock();
    const server = silentServer();
    const driver = createPostgresDriver(server.connector, { env: {}, clock });
    const caller = new AbortController();
    const got: { outcome: unknown } = { outcome: "pending" };
    driver.connect({ host: "h", connectTimeout: 30, sslmode: "prefer", signal: caller.signal }).then(
      () => (got.outcome = "connected"),
      (error) => (got.outcome = error),
    );
    await clock.tick(100);
    const reason = new Error("caller gave up");
    caller.abort(reason);
    await flush();
    assert.equal(got.outcome, reason);
    assert.equal(server.destroyed, 1);
    assert.equal(clock.pending, 0, "the attempt's alarm was cancelled");
  });
});

/**
 * The driver's timing rules on a fake clock, without a server: the cancel
 * grace, the close bound, the delivery of a cancel request, and the grace of
 * an abandoned connect.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PoolTimeoutError } from "../../src/core/errors.ts";
import { Watchdog } from "../../src/core/watchdog.ts";
import { awaitCancelled, type CancelChannel, closeWithin, deliverCancel } from "../../src/drivers/timing.ts";
import { abortableConnect } from "../../src/runtime/adapter_support.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";

function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => (resolve = res, reject = rej));
  return { promise, resolve, reject };
}

/** Records what a promise settled with, without awaiting it. */
function watch<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

function setup(): { clock: FakeClock; dog: Watchdog } {
  const clock = new FakeClock();
  return { clock, dog: new Watchdog(clock) };
}

describe("Driver timing rules", () => {
  it("awaitCancelled() reports stuck exactly when the grace passes with neither the query nor the server done", async () => {
    const { clock, dog } = setup();
    const out = watch(awaitCancelled(dog, 5000, deferred().promise, deferred().promise));
    await clock.tick(4999);
    assert.equal(out.settled, false);
    await clock.tick(1);
    assert.equal(out.value, "stuck");
  });

  it("awaitCancelled() reports done when the cancelled query ends, failed or not, and drops its alarm", async () => {
    const { clock, dog } = setup();
    const running = deferred();
    const out = watch(awaitCancelled(dog, 5000, running.promise, deferred().promise));
    await clock.tick(1000);
    running.reject(new Error("canceling statement due to user request"));
    await flush();
    assert.equal(out.value, "done");
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0, "no timer left behind");
  });

  it("awaitCancelled() reports progress when the server finished another statement first", async () => {
    const { clock, dog } = setup();
    const progress = deferred();
    const out = watch(awaitCancelled(dog, 5000, deferred().promise, progress.promise));
    await clock.tick(10);
    progress.resolve();
    await flush();
    assert.equal(out.value, "progress");
    assert.equal(dog.size, 0);
  });

  it("awaitCancelled() of many connections at once run on one clock timer", async () => {
    const { clock, dog } = setup();
    const outs = Array.from({ length: 20 }, () => {
      const running = deferred();
      return { running, out: watch(awaitCancelled(dog, 5000, running.promise, deferred().promise)) };
    });
    assert.equal(clock.pending, 1);
    for (const { running } of outs.slice(0, 10)) running.resolve();
    await clock.tick(5000);
    assert.deepEqual(outs.map((o) => o.out.value), outs.map((_, i) => i < 10 ? "done" : "stuck"));
  });

  it("closeWithin() ends at the first ending, or at its bound when none comes", async () => {
    const { clock, dog } = setup();
    const ended = deferred();
    const first = watch(closeWithin(dog, 10_000, [deferred().promise, ended.promise]));
    await clock.tick(3000);
    ended.reject(new Error("end() failed")); // a failed graceful end still ends the wait
    await flush();
    assert.equal(first.value, "closed");
    assert.equal(dog.size, 0);
    const second = watch(closeWithin(dog, 10_000, [deferred().promise]));
    await clock.tick(9999);
    assert.equal(second.settled, false);
    await clock.tick(1);
    assert.equal(second.value, "timeout");
  });

  function channel(): CancelChannel & { written: Uint8Array[]; destroyed: number } {
    const c = {
      written: [] as Uint8Array[],
      destroyed: 0,
      write(chunk: Uint8Array): boolean {
        c.written.push(chunk);
        return true;
      },
      destroy(): void {
        c.destroyed++;
      },
    };
    return c;
  }

  it("deliverCancel() writes the request and resolves when the server closes the channel", async () => {
    const { clock, dog } = setup();
    const c = channel();
    let onClose!: () => void;
    const message = new Uint8Array([1, 2, 3]);
    const out = watch(
      deliverCancel(dog, (close) => (onClose = close, Promise.resolve(c)), message, 30_000, 1000),
    );
    await flush();
    assert.deepEqual(c.written, [message]);
    await clock.tick(500);
    onClose();
    await flush();
    assert.equal(out.settled, true);
    assert.equal(out.error, undefined);
    assert.equal(dog.size, 0, "both alarms dropped");
    assert.equal(c.destroyed, 0, "a channel the server closed is not destroyed again");
  });

  it("deliverCancel() rejects QUERY_TIMEOUT when the close is not seen 1s after the write, and destroys the channel", async () => {
    const { clock, dog } = setup();
    const c = channel();
    const out = watch(deliverCancel(dog, () => Promise.resolve(c), new Uint8Array(16), 30_000, 1000));
    await clock.tick(999);
    assert.equal(out.settled, false);
    await clock.tick(1);
    assert.equal(out.settled, true);
    assert.equal(
      (out.error as { code?: string } | undefined)?.code,
      "QUERY_TIMEOUT",
      "an unconfirmed cancel fails",
    );
    assert.equal(c.destroyed, 1);
    assert.equal(dog.size, 0);
  });

  it("deliverCancel() rejects CONNECT_TIMEOUT at its limit and destroys a channel that opens later", async () => {
    const { clock, dog } = setup();
    const opening = deferred<CancelChannel>();
    const out = watch(deliverCancel(dog, () => opening.promise, new Uint8Array(16), 30_000, 1000));
    await clock.tick(30_000);
    assert.ok(out.error instanceof PoolTimeoutError);
    assert.equal(out.error.code, "CONNECT_TIMEOUT");
    const late = channel();
    opening.resolve(late);
    await flush();
    assert.equal(late.destroyed, 1);
    assert.deepEqual(late.written, [], "nothing is written on a channel that came too late");
    assert.equal(dog.size, 0);
  });

  it("deliverCancel() passes the open's failure on and drops its limit", async () => {
    const { clock, dog } = setup();
    const refused = new Error("connection refused");
    const out = watch(deliverCancel(dog, () => Promise.reject(refused), new Uint8Array(16), 30_000, 1000));
    await flush();
    assert.equal(out.error, refused);
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0);
  });

  it("abortableConnect() cancels the abandoned attempt exactly when its grace ends, on the given watchdog", async () => {
    const { clock, dog } = setup();
    const opening = deferred<string>();
    let given: AbortSignal | undefined;
    const caller = new AbortController();
    const discarded: string[] = [];
    const out = watch(
      abortableConnect(
        (s) => (given = s, opening.promise),
        caller.signal,
        (late) => discarded.push(late),
        1000,
        dog,
      ),
    );
    const reason = new Error("caller gave up");
    caller.abort(reason);
    await flush();
    assert.equal(out.error, reason, "the caller is rejected at once");
    await clock.tick(999);
    assert.equal(given!.aborted, false, "the attempt may still complete within the grace");
    await clock.tick(1);
    assert.equal(given!.aborted, true);
    opening.reject(new Error("aborted"));
    await flush();
    assert.deepEqual(discarded, []);
    assert.equal(dog.size, 0);
  });

  it("abortableConnect() discards a connection completing within the grace and drops the grace alarm", async () => {
    const { clock, dog } = setup();
    const opening = deferred<string>();
    let given: AbortSignal | undefined;
    const caller = new AbortController();
    const discarded: string[] = [];
    abortableConnect(
      (s) => (given = s, opening.promise),
      caller.signal,
      (late) => discarded.push(late),
      1000,
      dog,
    )
      .catch(() => undefined);
    caller.abort(new Error("caller gave up"));
    await clock.tick(400);
    opening.resolve("late conn");
    await flush();
    assert.deepEqual(discarded, ["late conn"]);
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0);
    await clock.tick(1000);
    assert.equal(given!.aborted, false, "nothing to cancel any more");
  });
});

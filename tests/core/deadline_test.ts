import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Deadline } from "../../src/core/deadline.ts";
import { PoolTimeoutError } from "../../src/core/errors.ts";
import { Watchdog } from "../../src/core/watchdog.ts";
import { FakeClock, flush } from "../support/fake_clock.ts";

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => (resolve = res, reject = rej));
  return { promise, resolve, reject };
}

async function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

describe("Deadline", () => {
  it("Deadline.race() rejects with the timeout error at its instant and hands the late value to onLate", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const deadline = new Deadline(dog, 100, undefined, "ACQUIRE_TIMEOUT", "Timed out after 0.1s acquiring");
    const work = deferred<string>();
    const late: string[] = [];
    const raced = outcome(deadline.race(work.promise, (v) => late.push(v)));
    await clock.tick(99);
    assert.equal(deadline.fired, false);
    await clock.tick(1);
    const { error } = await raced;
    assert.ok(error instanceof PoolTimeoutError);
    assert.equal(error.code, "ACQUIRE_TIMEOUT");
    assert.equal(error.message, "Timed out after 0.1s acquiring");
    assert.equal(deadline.reason, error);
    assert.throws(() => deadline.check(), (e) => e === error);
    work.resolve("late connection");
    await flush();
    assert.deepEqual(late, ["late connection"]);
    assert.equal(dog.size, 0);
  });

  it("Deadline.race() settles like the promise when it wins, and dispose() cancels the alarm", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const deadline = new Deadline(dog, 100, undefined, "QUERY_TIMEOUT", "Too slow");
    assert.equal(dog.size, 1, "the timeout is an alarm on the watchdog");
    assert.equal(await deadline.race(Promise.resolve(7)), 7);
    await assert.rejects(deadline.race(Promise.reject(new Error("boom"))), /boom/);
    deadline.dispose();
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0);
    await clock.tick(1000);
    assert.equal(deadline.fired, false);
  });

  it("Deadline fires with the signal's reason when the caller aborts, and its own signal follows", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const caller = new AbortController();
    const deadline = new Deadline(dog, 100, caller.signal, "CONNECT_TIMEOUT", "Too slow");
    const own = deadline.signal;
    const raced = outcome(deadline.race(deferred<number>().promise));
    const reason = new Error("caller gave up");
    caller.abort(reason);
    assert.equal((await raced).error, reason);
    assert.equal(own.aborted, true);
    assert.equal(own.reason, reason);
    assert.equal(dog.size, 0, "the timeout alarm is cancelled once it fired");
  });

  it("Deadline made with an aborted signal is fired at once and arms nothing", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const reason = new Error("already");
    const deadline = new Deadline(dog, 100, AbortSignal.abort(reason), "ACQUIRE_TIMEOUT", "x");
    assert.equal(deadline.fired, true);
    assert.equal(dog.size, 0);
    assert.equal(deadline.signal.aborted, true);
    const late: number[] = [];
    const raced = await outcome(deadline.race(Promise.resolve(3), (v) => late.push(v)));
    assert.equal(raced.error, reason);
    await flush();
    assert.deepEqual(late, [3], "the value that came anyway goes to cleanup");
  });

  it("Deadline rejects every race under way when it fires", async () => {
    const clock = new FakeClock();
    const deadline = new Deadline(
      new Watchdog(clock),
      50,
      undefined,
      "CLOSE_TIMEOUT",
      "Closing took too long",
    );
    const one = outcome(deadline.race(deferred<number>().promise));
    const two = outcome(deadline.race(deferred<number>().promise));
    const won = deadline.race(Promise.resolve(1));
    assert.equal(await won, 1);
    await clock.tick(50);
    assert.equal(((await one).error as PoolTimeoutError).code, "CLOSE_TIMEOUT");
    assert.equal(((await two).error as PoolTimeoutError).code, "CLOSE_TIMEOUT");
  });

  it("Deadline made with a clock times out on that clock's shared watchdog (the pool's form)", async () => {
    const clock = new FakeClock();
    const deadline = new Deadline(clock, 10, undefined, "ACQUIRE_TIMEOUT", "x");
    assert.equal(Watchdog.of(clock).size, 1);
    const raced = outcome(deadline.race(deferred<number>().promise));
    await clock.tick(10);
    assert.equal(((await raced).error as PoolTimeoutError).code, "ACQUIRE_TIMEOUT");
    assert.equal(Watchdog.of(clock).size, 0);
  });

  it("Deadline many at once on one watchdog hold one clock timer", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const deadlines = Array.from(
      { length: 100 },
      (_, i) => new Deadline(dog, 100 + i, undefined, "QUERY_TIMEOUT", `d${i}`),
    );
    assert.equal(clock.pending, 1);
    for (const d of deadlines.slice(0, 50)) d.dispose();
    await clock.tick(200);
    assert.deepEqual(
      deadlines.map((d) => d.fired),
      deadlines.map((_, i) => i >= 50),
    );
    assert.equal(clock.pending, 0);
  });

  it("Deadline without timeout or signal passes the promise through", () => {
    const deadline = new Deadline(new Watchdog(new FakeClock()), undefined, undefined, "QUERY_TIMEOUT", "x");
    const p = Promise.resolve(1);
    assert.equal(deadline.race(p), p);
  });
});

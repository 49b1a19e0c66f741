import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Alarm, Watchdog } from "../../src/core/watchdog.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** A small deterministic generator for the property test. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fake clock that records which timers were unref'd. */
class UnrefClock extends FakeClock {
  unrefd: unknown[] = [];
  unref(handle: unknown): void {
    this.unrefd.push(handle);
  }
}

describe("Watchdog", () => {
  it("Watchdog with unref unrefs every timer it arms on the clock; by default it unrefs none", () => {
    const background = new UnrefClock();
    const dog = new Watchdog(background, { unref: true });
    dog.after(1000, () => {});
    dog.after(500, () => {}); // an earlier alarm re-arms the one timer
    assert.equal(background.unrefd.length, 2);
    assert.equal(background.pending, 1);
    const plain = new UnrefClock();
    new Watchdog(plain).after(1000, () => {});
    assert.deepEqual(plain.unrefd, []);
  });

  it("Watchdog fires alarms at their instant, earliest first, with one clock timer", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: string[] = [];
    dog.after(30, () => fired.push(`c@${clock.now()}`));
    dog.after(10, () => fired.push(`a@${clock.now()}`));
    dog.after(20, () => fired.push(`b@${clock.now()}`));
    assert.equal(clock.pending, 1, "one timer for three alarms");
    assert.equal(dog.size, 3);
    await clock.tick(9);
    assert.deepEqual(fired, []);
    await clock.tick(1);
    assert.deepEqual(fired, ["a@10"]);
    await clock.tick(20);
    assert.deepEqual(fired, ["a@10", "b@20", "c@30"]);
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0, "no timer left once nothing is armed");
  });

  it("Watchdog fires alarms found due together in order of their instants, ties in arming order", () => {
    // A clock whose timer runs late: the one run finds every alarm due.
    let now = 0;
    let pendingFn: (() => void) | undefined;
    const lateClock = {
      now: () => now,
      setTimeout: (fn: () => void) => (pendingFn = fn, 1),
      clearTimeout: () => (pendingFn = undefined),
    };
    const dog = new Watchdog(lateClock);
    const fired: string[] = [];
    dog.at(30, () => fired.push("c"));
    dog.at(10, () => fired.push("a1"));
    dog.at(20, () => fired.push("b"));
    dog.at(10, () => fired.push("a2"));
    now = 100;
    pendingFn!();
    assert.deepEqual(fired, ["a1", "a2", "b", "c"]);
    assert.equal(dog.size, 0);
  });

  it("Watchdog never fires a cancelled alarm, and cancelling the last one clears the timer", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: number[] = [];
    const a = dog.after(10, () => fired.push(10));
    const b = dog.after(20, () => fired.push(20));
    a.cancel();
    assert.equal(a.live, false);
    assert.equal(dog.size, 1);
    assert.equal(clock.pending, 1, "the timer stays while an alarm is live");
    b.cancel();
    b.cancel(); // a second cancel is a no-op
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0, "an idle watchdog holds no timer (it would keep a process alive)");
    await clock.tick(100);
    assert.deepEqual(fired, []);
  });

  it("Watchdog re-arms for a later alarm when the earliest was cancelled", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: number[] = [];
    dog.after(10, () => fired.push(10)).cancel();
    dog.after(50, () => fired.push(50));
    await clock.tick(10);
    assert.deepEqual(fired, []);
    assert.equal(clock.pending, 1, "re-armed for the live alarm");
    await clock.tick(40);
    assert.deepEqual(fired, [50]);
  });

  it("Watchdog arms an earlier timer when an earlier alarm comes in", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: number[] = [];
    dog.after(100, () => fired.push(100));
    dog.after(5, () => fired.push(5));
    assert.equal(clock.pending, 1, "the later timer was replaced");
    await clock.tick(5);
    assert.deepEqual(fired, [5]);
    await clock.tick(95);
    assert.deepEqual(fired, [5, 100]);
  });

  it("Watchdog lets a callback arm a new alarm, even one already due, and cancel a due one", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: string[] = [];
    let second: Alarm | undefined = undefined;
    dog.after(10, () => {
      fired.push(`first@${clock.now()}`);
      second!.cancel();
      dog.after(10, () => {
        fired.push(`again@${clock.now()}`);
        dog.after(0, () => fired.push(`now@${clock.now()}`));
      });
    });
    second = dog.after(10, () => fired.push("second"));
    await clock.tick(10);
    assert.deepEqual(fired, ["first@10"], "the due alarm cancelled by an earlier one did not fire");
    await clock.tick(10);
    assert.deepEqual(fired, ["first@10", "again@20", "now@20"]);
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0);
  });

  it("Watchdog fires an alarm armed for a past instant at once", async () => {
    const clock = new FakeClock();
    await clock.tick(100);
    const dog = new Watchdog(clock);
    let at = -1;
    dog.at(50, () => at = clock.now());
    dog.after(-5, () => undefined); // a negative delay counts as zero
    await clock.tick(0);
    assert.equal(at, 100);
    assert.equal(dog.size, 0);
  });

  it("Watchdog keeps memory bounded when alarms are armed and cancelled without end", () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const keep = dog.after(1_000_000, () => undefined); // one long-lived alarm keeps it from idling
    let most = 0;
    for (let i = 0; i < 100_000; i++) {
      dog.after(1000, () => undefined).cancel();
      most = Math.max(most, dog.held);
    }
    assert.ok(most <= 200, `held at most ${most} alarms for 1 live one`);
    assert.equal(dog.size, 1);
    assert.equal(keep.live, true);
    assert.equal(clock.pending, 1, "never more than one timer");
  });

  it("Watchdog keeps memory bounded with many live alarms and a churn of cancelled ones", () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const live: Alarm[] = [];
    for (let i = 0; i < 500; i++) live.push(dog.after(10_000 + i, () => undefined));
    let most = 0;
    for (let i = 0; i < 50_000; i++) {
      dog.after(100, () => undefined).cancel();
      most = Math.max(most, dog.held);
    }
    assert.ok(most <= 1001, `held at most ${most} alarms for 500 live ones`);
    assert.equal(dog.size, 500);
  });

  it("Watchdog.stop() cancels every alarm and the timer, and the watchdog can be armed again", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: number[] = [];
    const a = dog.after(10, () => fired.push(10));
    dog.after(20, () => fired.push(20));
    dog.stop();
    assert.equal(a.live, false);
    assert.equal(dog.size, 0);
    assert.equal(clock.pending, 0);
    await clock.tick(50);
    assert.equal(fired.length, 0);
    dog.after(5, () => fired.push(5));
    await clock.tick(5);
    assert.deepEqual(fired, [5]);
  });

  it("Watchdog.stop() inside a callback cancels the alarms due in the same run", async () => {
    const clock = new FakeClock();
    const dog = new Watchdog(clock);
    const fired: string[] = [];
    dog.after(10, () => (fired.push("a"), dog.stop()));
    const b = dog.after(10, () => fired.push("b"));
    dog.after(30, () => fired.push("c"));
    await clock.tick(100);
    assert.deepEqual(fired, ["a"]);
    assert.equal(b.live, false);
    assert.equal(clock.pending, 0);
  });

  it("Watchdog asks its clock for whole milliseconds, rounded up, so it never wakes before an alarm is due", () => {
    let now = 0.25;
    const delays: number[] = [];
    const clock = {
      now: () => now,
      setTimeout: (_fn: () => void, ms: number) => (delays.push(ms), delays.length),
      clearTimeout: () => {},
    };
    const dog = new Watchdog(clock);
    dog.after(10.5, () => undefined);
    now = 5;
    dog.at(5.2, () => undefined);
    assert.deepEqual(delays, [11, 1]);
  });

  it("Watchdog.of() gives one shared watchdog per clock", () => {
    const one = new FakeClock();
    const two = new FakeClock();
    assert.equal(Watchdog.of(one), Watchdog.of(one));
    assert.notEqual(Watchdog.of(one), Watchdog.of(two));
    assert.equal(Watchdog.of(one).clock, one);
  });

  it("Watchdog fires exactly the uncancelled alarms, each at its instant, for random arm/cancel/tick interleavings", async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = random(seed);
      const clock = new FakeClock();
      const dog = new Watchdog(clock);
      const expected = new Map<number, number>(); // id -> due instant
      const seen = new Map<number, number>(); // id -> fired instant
      const armed: Array<{ id: number; alarm: Alarm }> = [];
      let id = 0;
      for (let step = 0; step < 200; step++) {
        const r = rnd();
        if (r < 0.5) {
          const me = id++;
          const delay = Math.floor(rnd() * 50);
          const alarm = dog.after(delay, () => {
            assert.equal(seen.has(me), false, "fired twice");
            seen.set(me, clock.now());
            // Callbacks sometimes arm follow-ups, as the drivers' cancel loop does.
            if (rnd() < 0.2) {
              const next = id++;
              const d = Math.floor(rnd() * 20);
              expected.set(next, clock.now() + d);
              dog.after(d, () => seen.set(next, clock.now()));
            }
          });
          expected.set(me, clock.now() + delay);
          armed.push({ id: me, alarm });
        } else if (r < 0.75 && armed.length > 0) {
          const i = Math.floor(rnd() * armed.length);
          const [{ id: gone, alarm }] = armed.splice(i, 1) as [{ id: number; alarm: Alarm }];
          if (alarm.live) {
            alarm.cancel();
            expected.delete(gone);
          }
        } else {
          await clock.tick(Math.floor(rnd() * 30));
        }
        assert.ok(clock.pending <= 1, "one timer at most");
      }
      await clock.tick(1000);
      assert.equal(dog.size, 0, `seed ${seed}: all fired or cancelled`);
      assert.equal(clock.pending, 0, `seed ${seed}: no timer left`);
      assert.deepEqual(
        [...seen.entries()].sort((a, b) => a[0] - b[0]),
        [...expected.entries()].sort((a, b) => a[0] - b[0]),
        `seed ${seed}`,
      );
    }
  });
});

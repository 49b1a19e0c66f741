/**
 * `loadBalanceHosts` (libpq 16's `load_balance_hosts`): the host order of one
 * connect (src/drivers/hosts.ts `connectPlan`), its validation, and both
 * drivers trying the hosts in that order, over a connector that refuses every
 * host and records which one was asked for. Randomness comes from a seeded
 * fake clock: no server, no sleeping.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ConnectOptions, Driver } from "../../src/core/driver.ts";
import { ConnectionError, InterfaceError } from "../../src/core/errors.ts";
import { checkConnectOptions, parsePoolOptions } from "../../src/core/options.ts";
import { type HostAddress, resolveConnectOptions } from "../../src/drivers/dsn.ts";
import { connectPlan } from "../../src/drivers/hosts.ts";
import { createNativeDriver } from "../../src/drivers/native/driver.ts";
import { createPostgresDriver } from "../../src/drivers/postgresjs/driver.ts";
import type { Connector } from "../../src/runtime/transport.ts";
import { FakeClock } from "../support/fake_clock.ts";

const HOSTS: HostAddress[] = ["a", "b", "c", "d", "e"].map((host) => ({ host, port: 5432 }));
const names = (hosts: readonly HostAddress[]): string => hosts.map((h) => h.host).join("");

/** Every order of `HOSTS` reached by `runs` plans, and checks each pass tries every host once. */
function orders(
  attrs: ConnectOptions["targetSessionAttrs"] & string,
  runs: number,
  clock: FakeClock,
): string[][] {
  const seen: string[][] = [];
  for (let i = 0; i < runs; i++) {
    const plan = connectPlan(
      { hosts: HOSTS, targetSessionAttrs: attrs, loadBalanceHosts: "random" },
      () => clock.random(),
    );
    for (const pass of plan) {
      assert.deepEqual([...names(pass.hosts)].sort().join(""), "abcde", "every host once per pass");
    }
    seen.push(plan.map((pass) => names(pass.hosts)));
  }
  return seen;
}

describe("loadBalanceHosts: the host order of a connect", () => {
  it("connectPlan() keeps the given order without loadBalanceHosts, one pass (two for prefer-standby)", () => {
    const plan = connectPlan(
      { hosts: HOSTS, targetSessionAttrs: "read-write", loadBalanceHosts: "disable" },
      () => {
        throw new Error("no random number is drawn without load balancing");
      },
    );
    assert.deepEqual(plan.map((p) => [p.attrs, names(p.hosts), p.fallback]), [[
      "read-write",
      "abcde",
      false,
    ]]);
    const prefer = connectPlan(
      { hosts: HOSTS, targetSessionAttrs: "prefer-standby", loadBalanceHosts: "disable" },
      Math.random,
    );
    assert.deepEqual(prefer.map((p) => [p.attrs, names(p.hosts), p.fallback]), [
      ["standby", "abcde", false],
      ["any", "abcde", true],
    ]);
  });

  it("connectPlan() with random shuffles each connect's hosts: every host once, every host first about equally often", () => {
    const seen = orders("any", 2000, new FakeClock(7)).map(([only]) => only!);
    const distinct = new Set(seen);
    assert.ok(distinct.size >= 100, `${distinct.size} of the 120 orders of 5 hosts seen`);
    const first = new Map<string, number>();
    for (const order of seen) first.set(order[0]!, (first.get(order[0]!) ?? 0) + 1);
    assert.equal(first.size, 5, "each host comes first sometimes");
    for (const [host, n] of first) assert.ok(n > 300 && n < 500, `${host} first ${n} times of 2000`);
  });

  it("connectPlan() with random and prefer-standby shuffles each of the two passes on its own", () => {
    const seen = orders("prefer-standby", 500, new FakeClock(3));
    assert.ok(seen.every((passes) => passes.length === 2));
    const differ = seen.filter(([standby, any]) => standby !== any).length;
    assert.ok(differ > 400, `the passes differ in ${differ} of 500 connects`);
  });

  it("connectPlan() draws its order from the random source given: the same seed, the same orders", () => {
    assert.deepEqual(orders("any", 20, new FakeClock(11)), orders("any", 20, new FakeClock(11)));
    assert.notDeepEqual(orders("any", 20, new FakeClock(11)), orders("any", 20, new FakeClock(12)));
  });
});

describe("loadBalanceHosts: options and DSN", () => {
  it("resolveConnectOptions() reads load_balance_hosts from the DSN and PGLOADBALANCEHOSTS; the option wins", () => {
    assert.equal(resolveConnectOptions({ dsn: "postgres://u@a,b/d" }).loadBalanceHosts, "disable");
    assert.equal(
      resolveConnectOptions({ dsn: "postgres://u@a,b/d?load_balance_hosts=random" }).loadBalanceHosts,
      "random",
    );
    assert.equal(
      resolveConnectOptions({ dsn: "host=a,b load_balance_hosts=random" }).loadBalanceHosts,
      "random",
    );
    assert.equal(resolveConnectOptions({}, { PGLOADBALANCEHOSTS: "random" }).loadBalanceHosts, "random");
    assert.equal(
      resolveConnectOptions({
        dsn: "postgres://u@a,b/d?load_balance_hosts=random",
        loadBalanceHosts: "disable",
      })
        .loadBalanceHosts,
      "disable",
    );
    const params = resolveConnectOptions({ dsn: "postgres://u@a/d?load_balance_hosts=random" }).params;
    assert.equal("load_balance_hosts" in params, false, "never sent to the server as a parameter");
  });

  it("resolveConnectOptions() rejects a bad load_balance_hosts with INVALID_DSN naming the values", () => {
    assert.throws(
      () => resolveConnectOptions({ dsn: "postgres://u@a,b/d?load_balance_hosts=round-robin" }),
      (e: unknown) =>
        e instanceof InterfaceError && e.code === "INVALID_DSN" &&
        e.message === 'Invalid load_balance_hosts "round-robin": expected disable or random',
    );
  });

  it("createPool options reject a bad loadBalanceHosts with a TypeError and a bad fallbackLifetime with a RangeError", () => {
    assert.throws(
      () => checkConnectOptions({ loadBalanceHosts: "yes" as "random" }, "Cannot connect"),
      {
        name: "TypeError",
        message: "Cannot connect as 'loadBalanceHosts' must be disable or random: got 'yes'",
      },
    );
    assert.throws(
      () => parsePoolOptions({ loadBalanceHosts: true as unknown as "random" }),
      {
        name: "TypeError",
        message: "Cannot create pool as 'loadBalanceHosts' must be disable or random: got boolean",
      },
    );
    assert.throws(() => parsePoolOptions({ fallbackLifetime: -1 }), RangeError);
    const { settings, connectOptions } = parsePoolOptions({ loadBalanceHosts: "random" });
    assert.equal(settings.fallbackLifetimeMs, 30_000, "30 s by default");
    assert.deepEqual(
      connectOptions,
      { loadBalanceHosts: "random" },
      "a connection option, passed to the driver",
    );
  });
});

/** A connector that refuses every host, recording the host names asked for in order. */
function refusingConnector(): { connector: Connector; asked: string[] } {
  const asked: string[] = [];
  const connector: Connector = (target) => {
    asked.push(target.kind === "tcp" ? target.hostname : target.path);
    return Promise.reject(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
  };
  return { connector, asked };
}

const DRIVERS: [string, (connector: Connector, clock: FakeClock) => Driver][] = [
  ["native", (connector, clock) => createNativeDriver(connector, { clock })],
  ["postgres", (connector, clock) => createPostgresDriver(connector, { clock })],
];

for (const [name, make] of DRIVERS) {
  describe(`loadBalanceHosts on the ${name} driver`, () => {
    it(`the ${name} driver tries the hosts in the order the clock's random() gives, each once per pass`, async () => {
      const { connector, asked } = refusingConnector();
      const driver = make(connector, new FakeClock(5));
      const expected = orders("prefer-standby", 10, new FakeClock(5));
      const dsn = "postgres://u@a,b,c,d,e/db?sslmode=disable&load_balance_hosts=random" +
        "&target_session_attrs=prefer-standby";
      for (let i = 0; i < 10; i++) {
        asked.length = 0;
        const error = await driver.connect({ dsn }).catch((e: unknown) => e);
        assert.ok(error instanceof ConnectionError && error.code === "ECONNREFUSED", String(error));
        assert.deepEqual([asked.slice(0, 5).join(""), asked.slice(5).join("")], expected[i]);
      }
    });

    it(`the ${name} driver keeps the given order without load_balance_hosts`, async () => {
      const { connector, asked } = refusingConnector();
      const driver = make(connector, new FakeClock(5));
      await driver.connect({ dsn: "postgres://u@a,b,c/db?sslmode=disable" }).catch(() => {});
      assert.deepEqual(asked, ["a", "b", "c"]);
    });
  });
}

/**
 * Property-based tests (fast-check) of the DSN parser, src/drivers/dsn.ts
 * `parseDsn` / `resolveConnectOptions`: URLs and libpq key=value strings built
 * from arbitrary parts parse back to those parts; arbitrary input either parses
 * or fails with InterfaceError INVALID_DSN (never another error); and an error
 * message never contains the password.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { InterfaceError } from "../../mod.ts";
import { parseDsn, resolveConnectOptions } from "../../src/drivers/dsn.ts";

const RUNS = 300;

/** Arbitrary well-formed Unicode text (any code point but NUL). */
function text(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: "binary", minLength, maxLength }).filter((s) =>
    !s.includes("\0") && s.isWellFormed()
  );
}

const hostName = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}(\.[a-z][a-z0-9-]{0,8}){0,2}$/);
const host = fc.oneof(
  hostName.map((h) => ({ host: h, v6: false })),
  fc.ipV4().map((h) => ({ host: h, v6: false })),
  fc.ipV6().map((h) => ({ host: h, v6: true })),
);
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
/** Server parameters: names that are not libpq client keywords. */
const paramName = fc.stringMatching(/^[a-z][a-z_]{0,10}$/).map((k) => `x_${k}`);

function enc(s: string): string {
  return encodeURIComponent(s);
}

function kvQuote(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

describe("DSN parser properties", { timeout: 60_000 }, () => {
  it("a postgres:// URL built from arbitrary user, password, hosts, ports, database and parameters parses back to them", () => {
    fc.assert(
      fc.property(
        text(1, 12),
        text(1, 16),
        fc.array(fc.tuple(host, port), { minLength: 1, maxLength: 3 }),
        text(1, 12),
        fc.dictionary(paramName, text(0, 8), { maxKeys: 3 }),
        fc.constantFrom("postgres", "postgresql"),
        (user, password, hosts, database, params, scheme) => {
          const netloc = hosts.map(([h, p]) =>
            (h.v6 ? `[${h.host}]` : h.host) + (p === undefined ? "" : `:${p}`)
          )
            .join(",");
          const query = Object.entries(params).map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");
          const dsn = `${scheme}://${enc(user)}:${enc(password)}@${netloc}/${enc(database)}${
            query ? "?" + query : ""
          }`;
          const k = parseDsn(dsn);
          assert.equal(k.get("user"), user);
          assert.equal(k.get("password"), password);
          assert.equal(k.get("dbname"), database);
          assert.equal(k.get("host"), hosts.map(([h]) => h.host).join(","));
          const r = resolveConnectOptions({ dsn }, {});
          const expectedPorts = hosts.every(([, p]) => p === undefined)
            ? hosts.map(() => 5432)
            : hosts.map(([, p]) => p ?? 5432);
          assert.deepEqual(r.hosts, hosts.map(([h], i) => ({ host: h.host, port: expectedPorts[i] })));
          assert.equal(r.user, user);
          assert.equal(r.password, password);
          assert.equal(r.database, database);
          for (const [name, value] of Object.entries(params)) assert.equal(r.params[name], value);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("a libpq key=value string with quoted arbitrary values parses back to them", () => {
    fc.assert(
      fc.property(text(1, 12), text(0, 16), text(1, 12), hostName, fc.integer({ min: 1, max: 65535 }), (
        user,
        password,
        database,
        h,
        p,
      ) => {
        const dsn = `user=${kvQuote(user)}  password = ${kvQuote(password)}\tdbname=${kvQuote(database)} ` +
          `host=${h} port=${p}`;
        const r = resolveConnectOptions({ dsn }, {});
        assert.equal(r.user, user);
        assert.equal(r.password, password);
        assert.equal(r.database, database);
        assert.deepEqual(r.hosts, [{ host: h, port: p }]);
      }),
      { numRuns: RUNS },
    );
  });

  it("explicit options win over the DSN, and the DSN over the environment", () => {
    fc.assert(
      fc.property(text(1, 10), text(1, 10), text(1, 10), fc.integer({ min: 1, max: 65535 }), (a, b, c, p) => {
        const dsn = `postgres://${enc(b)}@dsnhost:${p}/db`;
        const env = { PGUSER: c, PGHOST: "envhost", PGPORT: "1" };
        assert.equal(resolveConnectOptions({ dsn, user: a }, env).user, a);
        assert.equal(resolveConnectOptions({ dsn }, env).user, b);
        assert.equal(resolveConnectOptions({}, env).user, c);
        assert.deepEqual(resolveConnectOptions({ dsn }, env).hosts, [{ host: "dsnhost", port: p }]);
      }),
      { numRuns: 100 },
    );
  });

  it("arbitrary input either parses or fails with InterfaceError INVALID_DSN, nothing else", () => {
    const dsnish = fc.oneof(
      fc.string({ unit: "binary", maxLength: 60 }),
      fc.tuple(
        fc.constantFrom("postgres://", "postgresql://", "host=", "x://", ""),
        fc.string({ maxLength: 50 }),
      )
        .map(([a, b]) => a + b),
      fc.array(
        fc.constantFrom(
          "postgres://",
          "u",
          ":",
          "@",
          "[",
          "]",
          "::1",
          ",",
          "/",
          "?",
          "&",
          "=",
          "%",
          "%2",
          "'",
          "\\",
          " ",
          "5432",
          "h",
        ),
        {
          maxLength: 20,
        },
      ).map((parts) => parts.join("")),
    );
    fc.assert(
      fc.property(dsnish, (s) => {
        for (const run of [() => parseDsn(s), () => resolveConnectOptions({ dsn: s }, {})]) {
          try {
            run();
          } catch (e) {
            assert.ok(e instanceof InterfaceError, `${JSON.stringify(s)} threw ${String(e)}`);
            assert.equal(e.code, "INVALID_DSN");
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("an error about a DSN never contains its password", () => {
    const password = fc.stringMatching(/^[A-Za-z0-9]{10,16}$/).map((s) => `Pw${s}`);
    const rest = fc.string({ maxLength: 40 }).filter((s) => !s.includes("@"));
    const user = fc.constantFrom("", "u", "user%41");
    const assertHidden = (e: unknown, pw: string): void => {
      assert.ok(e instanceof InterfaceError, String(e));
      assert.ok(!e.message.includes(pw), `the message ${JSON.stringify(e.message)} shows the password`);
      assert.ok(!String(e).includes(pw));
      assert.ok(!JSON.stringify(e).includes(pw));
    };
    // Random tails: most parse; the ones that throw must hide the password.
    let threw = 0;
    fc.assert(
      fc.property(password, rest, user, (pw, tail, user) => {
        const dsn = `postgres://${user}:${pw}@${tail}`;
        for (const run of [() => parseDsn(dsn), () => resolveConnectOptions({ dsn }, {})]) {
          try {
            run();
          } catch (e) {
            threw++;
            assertHidden(e, pw);
          }
        }
      }),
      { numRuns: 1000 },
    );
    assert.ok(threw > 0, "some random DSNs were rejected");
    // Tails that are invalid by construction: every run throws, so every run checks the message.
    const safe = fc.stringMatching(/^[a-z0-9]{0,8}$/);
    const broken = fc.tuple(
      safe,
      safe,
      fc.constantFrom((a: string, b: string) => `${a}%zz${b}/db`, (a: string, b: string) => `${a}/d%g${b}`, (
        a: string,
        b: string,
      ) => `[::1${a}/${b}`),
    ).map(([a, b, make]) => make(a, b));
    fc.assert(
      fc.property(password, broken, user, (pw, tail, user) => {
        const dsn = `postgres://${user}:${pw}@${tail}`;
        for (const run of [() => parseDsn(dsn), () => resolveConnectOptions({ dsn }, {})]) {
          assert.throws(run, (e: unknown) => {
            assertHidden(e, pw);
            return true;
          }, `${JSON.stringify(dsn)} was accepted`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

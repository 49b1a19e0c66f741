import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { parseDsn, resolveConnectOptions } from "../../src/drivers/dsn.ts";
import { InterfaceError } from "../../src/core/errors.ts";

function assertInvalid(fn: () => unknown, secret?: string): InterfaceError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InterfaceError, `expected InterfaceError, got ${error}`);
    assert.equal(error.code, "INVALID_DSN");
    if (secret !== undefined) {
      assert.ok(!error.message.includes(secret));
      assert.ok(!String(error).includes(secret));
      assert.ok(!inspect(error).includes(secret));
    }
    return error;
  }
  assert.fail("expected an INVALID_DSN error");
}

describe("parseDsn()", () => {
  it("parseDsn() decodes user, password, host, port and database of a URL", () => {
    const k = parseDsn("postgres://al%40ice:p%3Ass%2Fw@db.example:6543/my%20db");
    assert.equal(k.get("user"), "al@ice");
    assert.equal(k.get("password"), "p:ss/w");
    assert.equal(k.get("host"), "db.example");
    assert.equal(k.get("port"), "6543");
    assert.equal(k.get("dbname"), "my db");
  });

  it("parseDsn() accepts the postgresql:// scheme and IPv6 literals", () => {
    const k = parseDsn("postgresql://[::1]:5433/app");
    assert.equal(k.get("host"), "::1");
    assert.equal(k.get("port"), "5433");
  });

  it("parseDsn() keeps multi-host lists with per-host ports", () => {
    const k = parseDsn("postgres://u@h1:5432,h2:5433,[::1]/db");
    assert.equal(k.get("host"), "h1,h2,::1");
    assert.equal(k.get("port"), "5432,5433,");
  });

  it("parseDsn() reads query parameters, including a unix socket host", () => {
    const k = parseDsn(
      "postgres:///db?host=%2Fvar%2Frun%2Fpostgresql&sslmode=require&connect_timeout=7&application_name=app&options=-c%20search_path%3Dx",
    );
    assert.equal(k.get("host"), "/var/run/postgresql");
    assert.equal(k.get("sslmode"), "require");
    assert.equal(k.get("connect_timeout"), "7");
    assert.equal(k.get("application_name"), "app");
    assert.equal(k.get("options"), "-c search_path=x");
  });

  it("parseDsn() reads libpq key=value strings with quoted values", () => {
    const k = parseDsn(`host=localhost port = 5433 dbname='my db' user=bob password='it\\'s \\\\ secret'`);
    assert.equal(k.get("host"), "localhost");
    assert.equal(k.get("port"), "5433");
    assert.equal(k.get("dbname"), "my db");
    assert.equal(k.get("user"), "bob");
    assert.equal(k.get("password"), "it's \\ secret");
  });

  it("parseDsn() rejects other schemes, bad escapes and unterminated quotes with INVALID_DSN", () => {
    assertInvalid(() => parseDsn("mysql://u:hunter2@h/db"), "hunter2");
    assertInvalid(() => parseDsn("postgres://u:%zzhunter2@h/db"), "hunter2");
    assertInvalid(() => parseDsn("host=h password='hunter2"), "hunter2");
    assertInvalid(() => parseDsn("just some words"));
  });
});

describe("resolveConnectOptions()", () => {
  it("resolveConnectOptions() lets explicit options override the DSN, and the DSN the environment", () => {
    const r = resolveConnectOptions(
      { dsn: "postgres://dsnuser:dsnpw@dsnhost:1111/dsndb", port: 2222 },
      { PGHOST: "envhost", PGUSER: "envuser", PGPASSWORD: "envpw", PGAPPNAME: "envapp" },
    );
    assert.deepEqual(r.hosts, [{ host: "dsnhost", port: 2222 }]);
    assert.equal(r.user, "dsnuser");
    assert.equal(r.password, "dsnpw");
    assert.equal(r.database, "dsndb");
    assert.equal(r.applicationName, "envapp");
  });

  it("resolveConnectOptions() uses DATABASE_URL only when no DSN is given", () => {
    const env = { DATABASE_URL: "postgres://urluser@urlhost/urldb" };
    assert.equal(resolveConnectOptions({}, env).hosts[0]!.host, "urlhost");
    assert.equal(
      resolveConnectOptions({ dsn: "postgres://x@otherhost/db" }, env).hosts[0]!.host,
      "otherhost",
    );
  });

  it("resolveConnectOptions() reads the libpq environment variables", () => {
    const r = resolveConnectOptions({}, {
      PGHOST: "/tmp/sock",
      PGPORT: "6000",
      PGUSER: "u",
      PGPASSWORD: "p",
      PGDATABASE: "d",
      PGSSLMODE: "disable",
      PGCONNECT_TIMEOUT: "3",
    });
    assert.deepEqual(r.hosts, [{ host: "/tmp/sock", port: 6000 }]);
    assert.equal(r.user, "u");
    assert.equal(r.password, "p");
    assert.equal(r.database, "d");
    assert.equal(r.sslmode, "disable");
    assert.equal(r.connectTimeout, 3);
  });

  it("resolveConnectOptions() defaults to localhost:5432, sslmode prefer, a 30s connect timeout and database = user", () => {
    const r = resolveConnectOptions({ user: "me" }, {});
    assert.deepEqual(r.hosts, [{ host: "localhost", port: 5432 }]);
    assert.equal(r.sslmode, "prefer");
    assert.equal(r.connectTimeout, 30);
    assert.equal(r.database, "me");
    assert.equal(r.prepare, true);
  });

  it("resolveConnectOptions() pairs ports with hosts, or applies one port to all", () => {
    const a = resolveConnectOptions({ dsn: "host=a,b port=1,2" });
    assert.deepEqual(a.hosts, [{ host: "a", port: 1 }, { host: "b", port: 2 }]);
    const b = resolveConnectOptions({ dsn: "host=a,b port=7" });
    assert.deepEqual(b.hosts, [{ host: "a", port: 7 }, { host: "b", port: 7 }]);
    assertInvalid(() => resolveConnectOptions({ dsn: "host=a,b,c port=1,2" }));
  });

  it("resolveConnectOptions() sends unknown parameters to the server but keeps client settings back", () => {
    const r = resolveConnectOptions({
      dsn: "postgres://u@h/d?search_path=s1&sslmode=disable&keepalives=0&client_encoding=latin1",
      params: { statement_timeout: "5s" },
    });
    assert.deepEqual(r.params, { search_path: "s1", statement_timeout: "5s" });
    assert.equal(r.keepAlive, 0);
  });

  it("resolveConnectOptions() rejects bad ports, sslmodes and timeouts without echoing the password", () => {
    assertInvalid(() => resolveConnectOptions({ dsn: "postgres://u:hunter2@h:notaport/d" }), "hunter2");
    assertInvalid(() => resolveConnectOptions({ dsn: "postgres://u:hunter2@h:70000/d" }), "hunter2");
    assertInvalid(() => resolveConnectOptions({ dsn: "postgres://u:hunter2@h/d?sslmode=maybe" }), "hunter2");
    assertInvalid(
      () => resolveConnectOptions({ dsn: "postgres://u:hunter2@h/d?connect_timeout=-1" }),
      "hunter2",
    );
    assertInvalid(() => resolveConnectOptions({ dsn: "postgres://u@h/d?target_session_attrs=fast" }));
  });
});

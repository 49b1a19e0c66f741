/**
 * Child process of secrets_test.ts (not a test file itself): exercises every
 * path that prints something about a connection that has a password — wrong
 * password, a malformed DSN with a password, a connect timeout and a refused
 * connect with a password in the DSN, String()/inspect of pools, proxies and
 * connections, default warnings, and an uncaught error at the end — printing
 * everything the way a failing test suite would. The parent scans the output
 * for the passwords.
 *
 * Environment: SECRET_DSN (a DSN of the test server without password),
 * SECRET_USER / SECRET_GOOD (a role and its right password), SECRET_BAD (a wrong
 * password to try).
 *
 * @module
 */

import net from "node:net";
import process from "node:process";
import { inspect } from "node:util";
import { connect, createPool, Pool } from "../../mod.ts";

const env = process.env;
const dsn = env.SECRET_DSN!;
const user = env.SECRET_USER!;
const good = env.SECRET_GOOD!;
const bad = env.SECRET_BAD!;

function withAuth(base: string, u: string, pw: string): string {
  const url = new URL(base);
  url.username = encodeURIComponent(u);
  url.password = encodeURIComponent(pw);
  return url.toString();
}

/** Prints an error every way a test runner or a log line would. */
function dump(step: string, e: unknown): void {
  console.log(`STEP ${step} ${(e as { code?: string }).code ?? "no-code"}`);
  console.log(String(e));
  console.error(e);
  console.log(inspect(e, { depth: 10, showHidden: true }));
  console.log((e as Error).stack);
  try {
    console.log(JSON.stringify(e));
  } catch { /* circular */ }
  let cause = (e as { cause?: unknown }).cause;
  for (let i = 0; cause !== undefined && i < 5; i++) {
    console.error("cause:", cause);
    cause = (cause as { cause?: unknown }).cause;
  }
}

async function expectFailure(step: string, f: () => Promise<unknown>): Promise<unknown> {
  try {
    await f();
    console.log(`STEP ${step} unexpectedly succeeded`);
    return undefined;
  } catch (e) {
    dump(step, e);
    return e;
  }
}

// 1. Wrong password, through connect() and through a pool (DSN and options).
await expectFailure("wrong-password-connect", () => connect(withAuth(dsn, user, bad)));
await expectFailure("wrong-password-pool-dsn", () => createPool(withAuth(dsn, user, bad), { minSize: 1 }));
await expectFailure(
  "wrong-password-pool-options",
  () => createPool(dsn, { user, password: bad, minSize: 1 }),
);

// 2. A malformed DSN carrying a password.
await expectFailure(
  "bad-dsn-port",
  () => connect(`postgres://${user}:${encodeURIComponent(bad)}@127.0.0.1:notaport/db`),
);
await expectFailure("bad-dsn-sslmode", () => {
  const url = new URL(withAuth(dsn, user, bad));
  url.searchParams.set("sslmode", "bogus");
  return connect(url.toString());
});
await expectFailure(
  "bad-dsn-percent",
  () => connect(`postgres://${user}:${encodeURIComponent(bad)}%zz@127.0.0.1/db`),
);

// 3. A connect timeout and a refused connect with the password in the DSN.
const hole = net.createServer((s) => {
  s.on("error", () => {});
  s.resume();
});
await new Promise<void>((r) => hole.listen(0, "127.0.0.1", r));
const holePort = (hole.address() as net.AddressInfo).port;
const holeDsn = `postgres://${user}:${encodeURIComponent(bad)}@127.0.0.1:${holePort}/db?connect_timeout=0.3`;
await expectFailure("connect-timeout", () => connect(holeDsn));
await expectFailure("connect-timeout-pool", async () => {
  const pool = new Pool(holeDsn, { minSize: 0, maxSize: 1 });
  await pool.init();
  console.log(String(pool), inspect(pool));
  try {
    await pool.acquire();
  } finally {
    pool.terminate();
  }
});
hole.close();
const refused = new net.Server();
await new Promise<void>((r) => refused.listen(0, "127.0.0.1", r));
const refusedPort = (refused.address() as net.AddressInfo).port;
await new Promise<void>((r) => refused.close(() => r()));
await expectFailure(
  "refused",
  () => connect(`postgres://${user}:${encodeURIComponent(bad)}@127.0.0.1:${refusedPort}/db`),
);

// 4. String() and inspect of a working pool, proxy and connection opened with the right password.
const pool = await createPool(withAuth(dsn, user, good), { minSize: 1, maxSize: 2 });
const pool2 = await createPool(dsn, { user, password: good, minSize: 1, maxSize: 1 });
console.log("STEP inspect");
console.log(String(pool), inspect(pool, { depth: 10, showHidden: true }), JSON.stringify(pool));
console.log(pool2);
console.dir(pool, { depth: 10 });
const con = await pool.acquire();
console.log(String(con), inspect(con, { depth: 10, showHidden: true }));
console.log(con);
const raw = await connect(dsn, { user, password: good });
console.log(String(raw), inspect(raw, { depth: 10, showHidden: true }));
console.log(raw);
await raw.close();

// 5. Default warnings (console.warn) with the connection attached.
console.log("STEP warnings");
await con.execute("BEGIN");
await con.addListener("secret_channel", () => {});
await pool.release(con);
const released = con;
console.log(String(released), inspect(released));

// 6. A query error and a use-after-release error from a password pool.
await expectFailure("query-error", () => pool.fetchVal("SELECT * FROM no_such_table_secret"));
await expectFailure("released-use", async () => await released.fetchVal("SELECT 1"));
await pool.close();
await pool2.close();
console.log(String(pool), inspect(pool));

// 7. End like a failing suite: an uncaught error from a password pool.
console.log("STEP uncaught");
await createPool(withAuth(dsn, user, bad), { minSize: 1 });

/**
 * Throwaway TLS material for tests, made with the `openssl` command line tool:
 * a test CA, a server certificate it signs (for `localhost` and `127.0.0.1`),
 * and a second, unrelated CA that must never verify the server.
 *
 * @module
 */

import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Paths and PEM text of the generated material. */
export interface TestCerts {
  /** The directory holding every file; removed by {@linkcode TestCerts.remove}. */
  dir: string;
  /** The CA that signed the server certificate. */
  ca: { certFile: string; pem: string };
  /** A CA that did not sign anything the server uses. */
  otherCa: { certFile: string; pem: string };
  /** The server certificate (SAN `DNS:localhost`, `IP:127.0.0.1`) and its key. */
  server: { certFile: string; keyFile: string; pem: string };
  /** Deletes the directory. */
  remove(): Promise<void>;
}

/** Removes `dir` when the process (or, under Deno, the test file's isolate) ends, even after a failure. */
function removeAtExit(dir: string): void {
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  if ("Deno" in globalThis) globalThis.addEventListener("unload", remove);
  process.on("exit", remove);
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (cause) {
    throw new Error(`openssl ${args[0]} failed: ${(cause as Error).message}`, { cause });
  }
}

async function makeCa(dir: string, name: string, subject: string): Promise<string> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    subject,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
  ], dir);
  return join(dir, `${name}.crt`);
}

/**
 * Creates a fresh temporary directory with a CA, a server certificate signed
 * by it, and a second unrelated CA. When running as root, the server key is
 * handed to the `postgres` user (PostgreSQL refuses keys it cannot read or
 * that others can read).
 *
 * @example
 * ```ts ignore
 * const certs = await makeTestCerts();
 * // start a server with certs.server.certFile / certs.server.keyFile
 * await certs.remove();
 * ```
 */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), "pgpool-tls-"));
  removeAtExit(dir);
  await chmod(dir, 0o755);
  const caFile = await makeCa(dir, "ca", "/CN=pgpool test CA");
  const otherCaFile = await makeCa(dir, "other_ca", "/CN=pgpool unrelated CA");
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  ], dir);
  await writeFile(
    join(dir, "server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "",
    ].join("\n"),
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "server.ext",
    "-out",
    "server.crt",
  ], dir);
  const keyFile = join(dir, "server.key");
  const certFile = join(dir, "server.crt");
  await chmod(keyFile, 0o600);
  await chmod(certFile, 0o644);
  if (typeof process.getuid === "function" && process.getuid() === 0) {
    const { stdout } = await run("id", ["-u", "postgres"]).catch(() => ({ stdout: "" }));
    const { stdout: gid } = await run("id", ["-g", "postgres"]).catch(() => ({ stdout: "" }));
    if (stdout.trim() !== "" && gid.trim() !== "") {
      await chown(keyFile, Number(stdout.trim()), Number(gid.trim()));
    }
  }
  return {
    dir,
    ca: { certFile: caFile, pem: await readFile(caFile, "utf8") },
    otherCa: { certFile: otherCaFile, pem: await readFile(otherCaFile, "utf8") },
    server: { certFile, keyFile, pem: await readFile(certFile, "utf8") },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Password authentication: cleartext, md5 and SCRAM-SHA-256 (RFC 5802/7677)
 * with WebCrypto for PBKDF2, HMAC and SHA-256.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { ConnectionError } from "../../core/errors.ts";

const enc = new TextEncoder();

/**
 * The md5 password response: `"md5" + md5(md5(password + user) + salt)`.
 *
 * @example
 * ```ts
 * import { md5Password } from "./auth.ts";
 * console.log(md5Password("u", "p", new Uint8Array(4)).startsWith("md5")); // true
 * ```
 */
export function md5Password(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash("md5").update(password + user).digest("hex");
  return "md5" + createHash("md5").update(inner).update(salt).digest("hex");
}

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
    ],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(data)));
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * One SCRAM-SHA-256 exchange: {@linkcode ScramSession.first}, then
 * {@linkcode ScramSession.final} with the server's first message, then
 * {@linkcode ScramSession.verify} with the server's final message.
 *
 * @example
 * ```ts
 * import { ScramSession } from "./auth.ts";
 * const s = new ScramSession("secret");
 * console.log(s.first().startsWith("n,,n=*,r=")); // true
 * ```
 */
export class ScramSession {
  readonly #password: string;
  readonly #nonce: string;
  #authMessage = "";
  #serverSignature = "";

  /** @param password The role's password. */
  constructor(password: string) {
    this.#password = password;
    this.#nonce = b64(crypto.getRandomValues(new Uint8Array(18)));
  }

  /** The client-first message. */
  first(): string {
    return `n,,n=*,r=${this.#nonce}`;
  }

  /** The client-final message answering the server-first message. */
  async final(serverFirst: string): Promise<string> {
    const attrs = new Map(serverFirst.split(",").map((p) => [p[0], p.slice(2)] as const));
    const nonce = attrs.get("r") ?? "";
    const salt = attrs.get("s");
    const iterations = Number(attrs.get("i"));
    if (!nonce.startsWith(this.#nonce) || salt === undefined || !(iterations > 0)) {
      throw new ConnectionError("PROTOCOL_VIOLATION", "The server sent an invalid SCRAM challenge");
    }
    const key = await crypto.subtle.importKey(
      "raw",
      enc.encode(this.#password.normalize("NFKC")),
      "PBKDF2",
      false,
      [
        "deriveBits",
      ],
    );
    const salted = new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "PBKDF2", salt: unb64(salt) as BufferSource, iterations, hash: "SHA-256" },
        key,
        256,
      ),
    );
    const clientKey = await hmac(salted, "Client Key");
    const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey as BufferSource));
    const withoutProof = `c=biws,r=${nonce}`;
    this.#authMessage = `n=*,r=${this.#nonce},${serverFirst},${withoutProof}`;
    const signature = await hmac(storedKey, this.#authMessage);
    const proof = clientKey.map((b, i) => b ^ signature[i]!);
    this.#serverSignature = b64(await hmac(await hmac(salted, "Server Key"), this.#authMessage));
    return `${withoutProof},p=${b64(proof)}`;
  }

  /** Checks the server-final message; throws when the server proved nothing. */
  verify(serverFinal: string): void {
    if (serverFinal.trim() !== `v=${this.#serverSignature}`) {
      throw new ConnectionError("PROTOCOL_VIOLATION", "The server's SCRAM signature does not match");
    }
  }
}

/**
 * Just enough of the PostgreSQL wire protocol to drive a raw
 * {@linkcode Transport} in tests: the startup and `SSLRequest` messages, a
 * message splitter, a simple-query session, and the connector of the runtime
 * the tests run on.
 *
 * @module
 */

import type {
  Connector,
  Transport,
  TransportHandlers,
  TransportTarget,
} from "../../src/runtime/transport.ts";

/** Which adapter the running runtime uses, and its connector. */
export interface RuntimeConnector {
  /** `deno`, `bun` or `node`. */
  name: "deno" | "bun" | "node";
  /** The connector. */
  connector: Connector;
}

/** The connector of the runtime the tests run on: Deno's, Bun's, else node:net's. */
export async function runtimeConnector(): Promise<RuntimeConnector> {
  if ("Deno" in globalThis) {
    return { name: "deno", connector: (await import("../../src/runtime/deno.ts")).denoConnector };
  }
  if ("Bun" in globalThis) {
    return { name: "bun", connector: (await import("../../src/runtime/bun.ts")).bunConnector };
  }
  return { name: "node", connector: (await import("../../src/runtime/node.ts")).nodeConnector };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The `SSLRequest` message. */
export const SSL_REQUEST: Uint8Array = new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]);

/** A `StartupMessage` (protocol 3.0) for `user` and `database`. */
export function startupMessage(user: string, database: string): Uint8Array {
  const params = encoder.encode(`user\0${user}\0database\0${database}\0\0`);
  const out = new Uint8Array(8 + params.length);
  const view = new DataView(out.buffer);
  view.setInt32(0, out.length);
  view.setInt32(4, 196608);
  out.set(params, 8);
  return out;
}

/** A frontend message: type byte, length, body. */
export function frontendMessage(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

/** A simple `Query` message. */
export function queryMessage(sql: string): Uint8Array {
  return frontendMessage("Q", encoder.encode(`${sql}\0`));
}

/** The `Terminate` message. */
export const TERMINATE: Uint8Array = frontendMessage("X", new Uint8Array(0));

/** One backend message. */
export interface BackendMessage {
  /** The type character, e.g. `R`, `Z`, `D`. */
  type: string;
  /** The body without type and length. */
  body: Uint8Array;
}

/** Splits a byte stream into backend messages. */
export class MessageSplitter {
  #buffer = new Uint8Array(0);

  /** Adds bytes; returns the messages now complete. */
  push(chunk: Uint8Array): BackendMessage[] {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    const out: BackendMessage[] = [];
    let offset = 0;
    while (joined.length - offset >= 5) {
      const length = new DataView(joined.buffer, joined.byteOffset + offset + 1, 4).getInt32(0);
      if (joined.length - offset < 1 + length) break;
      out.push({
        type: String.fromCharCode(joined[offset]!),
        body: joined.slice(offset + 5, offset + 1 + length),
      });
      offset += 1 + length;
    }
    this.#buffer = joined.slice(offset);
    return out;
  }
}

/** Handlers that record what a transport reports, with promises to wait on. */
export class Recorder implements TransportHandlers {
  /** Every chunk, in order. */
  readonly chunks: Uint8Array[] = [];
  /** Total bytes received. */
  bytes = 0;
  /** How often `drain` was called. */
  drains = 0;
  /** How often `close` was called. */
  closes = 0;
  /** The `close` argument. */
  closeError: Error | undefined;
  /** Resolves with the `close` argument. */
  readonly closed: Promise<Error | undefined>;
  #resolveClosed!: (error: Error | undefined) => void;
  #waiters: { test: () => boolean; resolve: () => void }[] = [];
  #drainWaiters: (() => void)[] = [];

  constructor() {
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  data(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.#check();
  }

  drain(): void {
    this.drains++;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  close(error?: Error): void {
    this.closes++;
    this.closeError = error;
    this.#resolveClosed(error);
    this.#check();
  }

  /** Resolves once `test()` holds after some event; rejects when the transport closed first. */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ test, resolve });
      void this.closed.then((e) => {
        if (!test()) reject(new Error(`Transport closed while waiting: ${e?.message ?? "no error"}`));
      });
    });
  }

  /** Resolves at the next `drain`. */
  nextDrain(): Promise<void> {
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }
}

/** A raw protocol session over a transport (trust auth, simple queries). */
export class RawSession {
  readonly recorder: Recorder;
  transport!: Transport;
  /** The backend pid from `BackendKeyData`. */
  pid = 0;
  readonly messages: BackendMessage[] = [];
  #splitter = new MessageSplitter();
  #seen = 0;

  constructor() {
    const recorder = new Recorder();
    const push = recorder.data.bind(recorder);
    recorder.data = (chunk: Uint8Array): void => {
      for (const m of this.#splitter.push(chunk)) this.messages.push(m);
      push(chunk);
    };
    this.recorder = recorder;
  }

  /** Connects and completes the startup; returns all messages up to `ReadyForQuery`. */
  static async open(
    connector: Connector,
    target: TransportTarget,
    login: { user: string; database: string },
  ): Promise<RawSession> {
    const session = new RawSession();
    session.transport = await connector(target, session.recorder, {});
    await session.startup(login);
    return session;
  }

  /** Forgets every byte and message seen so far (after the one-byte `SSLRequest` answer). */
  discardReceived(): void {
    this.#splitter = new MessageSplitter();
    this.messages.length = 0;
    this.#seen = 0;
  }

  /** Sends the startup message and waits for `ReadyForQuery`. */
  async startup(login: { user: string; database: string }): Promise<BackendMessage[]> {
    this.transport.write(startupMessage(login.user, login.database));
    const messages = await this.untilReady();
    const key = messages.find((m) => m.type === "K");
    if (key) this.pid = new DataView(key.body.buffer, key.body.byteOffset).getInt32(0);
    return messages;
  }

  /** Waits for the next `ReadyForQuery`; returns the messages since the last one. */
  async untilReady(): Promise<BackendMessage[]> {
    await this.recorder.until(() => this.messages.slice(this.#seen).some((m) => m.type === "Z"));
    const end = this.messages.findIndex((m, i) => i >= this.#seen && m.type === "Z");
    const out = this.messages.slice(this.#seen, end + 1);
    this.#seen = end + 1;
    return out;
  }

  /** Runs a simple query; returns its rows as text (null for NULL). Rejects on ErrorResponse. */
  async query(sql: string): Promise<(string | null)[][]> {
    this.transport.write(queryMessage(sql));
    const messages = await this.untilReady();
    const error = messages.find((m) => m.type === "E");
    if (error) throw new Error(`Query failed: ${errorText(error.body)}`);
    return messages.filter((m) => m.type === "D").map((m) => dataRow(m.body));
  }

  /** Sends Terminate and ends the transport; resolves with the close argument. */
  async close(): Promise<Error | undefined> {
    this.transport.write(TERMINATE);
    this.transport.end();
    return await this.recorder.closed;
  }
}

/** The fields of a `DataRow` body as text. */
export function dataRow(body: Uint8Array): (string | null)[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getInt16(0);
  const out: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = view.getInt32(offset);
    offset += 4;
    if (length < 0) {
      out.push(null);
      continue;
    }
    out.push(decoder.decode(body.subarray(offset, offset + length)));
    offset += length;
  }
  return out;
}

/** The message field (`M`) of an `ErrorResponse` body, with its SQLSTATE. */
export function errorText(body: Uint8Array): string {
  const fields = decoder.decode(body).split("\0");
  const message = fields.find((f) => f.startsWith("M"))?.slice(1) ?? "";
  const code = fields.find((f) => f.startsWith("C"))?.slice(1) ?? "";
  return `${code} ${message}`;
}

/**
 * A loopback TCP proxy for fault tests, placed between a pool and a real
 * PostgreSQL. On command it can black-hole traffic, reset connections, refuse
 * new ones, add latency, or cut a connection after a number of bytes. Built on
 * `node:net`, so it runs unchanged under Deno, Bun and Node.
 *
 * Faults, and what a client sees:
 * - `blackHole()`: established connections stall (nothing moves in either
 *   direction; bytes wait in the kernel buffers, as on a path whose packets are
 *   dropped and retransmitted), new connections are accepted and never answered.
 *   `heal()` lets the stalled connections carry on; the ones accepted during the
 *   outage stay silent until their client closes them.
 * - `resetAll()`: every proxied connection is dropped abruptly (an RST where the
 *   runtime can send one). `refuseNew(true)`: each new connection is reset
 *   as soon as it is accepted.
 * - `setLatency(ms)`: every chunk, both ways, is delivered `ms` later (order kept).
 * - `cutAfterBytes(n)`: each connection is dropped after `n` more bytes
 *   (counted in both directions together) have gone through; the bytes before the
 *   cut are delivered.
 * - `holdCancelRequests(true)`: a new connection whose first message is a
 *   `CancelRequest` is held: its bytes are in flight but not delivered, and the
 *   server never closes it, until `releaseCancelRequests()` delivers them (even if
 *   the client gave up and closed meanwhile: bytes once sent are not taken back).
 *   That forces a cancel to reach the server as late as a test wants.
 *
 * @example
 * ```ts ignore
 * const proxy = await FaultProxy.start({ host: "127.0.0.1", port: 5432 });
 * const pool = await createPool(proxy.dsnFrom("postgres://postgres@127.0.0.1:5432/postgres"));
 * proxy.blackHole(); // queries now hang until their deadlines fire
 * proxy.heal();
 * await proxy.close();
 * ```
 *
 * @module
 */

import net from "node:net";

/** Where the proxy forwards to. */
export interface ProxyTarget {
  /** Host name or address of the server. */
  host: string;
  /** Its TCP port. */
  port: number;
}

/** Counters a test can read to see what the proxy did. */
export interface ProxyStats {
  /** Connections accepted since the start. */
  accepted: number;
  /** Connections accepted while black-holed (never answered). */
  swallowed: number;
  /** Connections reset by `resetAll()`, `refuseNew()` or a byte cut. */
  reset: number;
  /** Bytes forwarded client → server. */
  bytesUp: number;
  /** Bytes forwarded server → client. */
  bytesDown: number;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Bytes left before a cut; `Infinity` when no cut is armed. */
  budget: number;
  /** Latency chain: the time the last chunk (per direction) is delivered. */
  lastUp: number;
  lastDown: number;
  /** Accepted during a black hole: never forwarded. */
  swallowed: boolean;
  closed: boolean;
  /** Whether the first client bytes were looked at (for a `CancelRequest`). */
  classified: boolean;
  /** Client bytes of a held `CancelRequest` connection, not yet delivered. */
  held: Uint8Array[] | undefined;
  /** The client closed a held connection: once released, the upstream is ended after delivery. */
  clientGone: boolean;
}

/** The `CancelRequest` code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

function isCancelRequest(chunk: Uint8Array): boolean {
  if (chunk.byteLength < 8) return false;
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return view.getInt32(0) === 16 && view.getInt32(4) === CANCEL_REQUEST_CODE;
}

function hardClose(socket: net.Socket | undefined): void {
  if (socket === undefined || socket.destroyed) return;
  const s = socket as net.Socket & { resetAndDestroy?: () => net.Socket };
  try {
    if (typeof s.resetAndDestroy === "function") s.resetAndDestroy();
    else s.destroy();
  } catch {
    s.destroy();
  }
}

/** A fault-injecting TCP proxy on 127.0.0.1. */
export class FaultProxy {
  #server: net.Server;
  #target: ProxyTarget;
  #links = new Set<Link>();
  #port = 0;
  #blackHoled = false;
  #refuse = false;
  #latencyMs = 0;
  #cutAfter: number | undefined;
  #holdCancels = false;
  #heldCancels = new Set<Link>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #stats: ProxyStats = { accepted: 0, swallowed: 0, reset: 0, bytesUp: 0, bytesDown: 0 };

  private constructor(target: ProxyTarget) {
    this.#target = { ...target };
    this.#server = net.createServer({ pauseOnConnect: false }, (client) => this.#accept(client));
    this.#server.on("error", () => {});
  }

  /** Starts a proxy on a free loopback port, forwarding to `target`. */
  static async start(target: ProxyTarget): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(0, "127.0.0.1", () => resolve());
    });
    proxy.#port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** The proxy's port on 127.0.0.1. */
  get port(): number {
    return this.#port;
  }

  /** The proxy's host, `127.0.0.1`. */
  get host(): string {
    return "127.0.0.1";
  }

  /** Connections currently open through the proxy (swallowed ones included). */
  get connections(): number {
    return this.#links.size;
  }

  /** A copy of the counters. */
  stats(): ProxyStats {
    return { ...this.#stats };
  }

  /** `dsn` with its host and port replaced by the proxy's (the rest kept). */
  dsnFrom(dsn: string): string {
    const url = new URL(dsn);
    url.hostname = this.host;
    url.port = String(this.#port);
    return url.toString();
  }

  /** Forwards new connections somewhere else from now on (existing ones are untouched). */
  retarget(target: ProxyTarget): void {
    this.#target = { ...target };
  }

  /** Stalls every connection and swallows new ones until {@linkcode heal}. */
  blackHole(): void {
    this.#blackHoled = true;
    for (const link of this.#links) {
      link.client.pause();
      link.upstream?.pause();
    }
  }

  /** Ends a black hole: stalled connections carry on, new ones are forwarded. */
  heal(): void {
    this.#blackHoled = false;
    for (const link of this.#links) {
      if (link.swallowed) continue;
      link.client.resume();
      link.upstream?.resume();
    }
  }

  /** Whether the proxy is black-holed. */
  get blackHoled(): boolean {
    return this.#blackHoled;
  }

  /** Drops every open connection abruptly, in both directions. */
  resetAll(): number {
    let n = 0;
    for (const link of [...this.#links]) {
      this.#kill(link);
      n++;
    }
    return n;
  }

  /** While `on`, each new connection is reset as soon as it is accepted. */
  refuseNew(on: boolean): void {
    this.#refuse = on;
  }

  /** Delays every chunk, both ways, by `ms` milliseconds (0 turns it off). */
  setLatency(ms: number): void {
    this.#latencyMs = Math.max(0, ms);
  }

  /**
   * Arms a cut: each connection (open ones included) is dropped after `bytes`
   * more bytes have gone through it. `undefined` disarms it.
   */
  cutAfterBytes(bytes: number | undefined): void {
    this.#cutAfter = bytes;
    for (const link of this.#links) link.budget = bytes ?? Infinity;
  }

  /**
   * While `on`, each new connection that opens with a `CancelRequest` is held
   * (not delivered, never answered) until {@linkcode releaseCancelRequests}.
   */
  holdCancelRequests(on: boolean): void {
    this.#holdCancels = on;
  }

  /** `CancelRequest` connections held now. */
  get heldCancels(): number {
    return this.#heldCancels.size;
  }

  /** Delivers every held `CancelRequest` to the server; returns how many. */
  releaseCancelRequests(): number {
    const links = [...this.#heldCancels];
    this.#heldCancels.clear();
    for (const link of links) {
      const chunks = link.held ?? [];
      link.held = undefined;
      for (const chunk of chunks) link.upstream?.write(chunk);
      if (link.clientGone) link.upstream?.end();
    }
    return links.length;
  }

  /** Back to a plain pass-through: heals, no latency, no cut, no refusal. */
  clearFaults(): void {
    this.setLatency(0);
    this.cutAfterBytes(undefined);
    this.refuseNew(false);
    this.holdCancelRequests(false);
    this.releaseCancelRequests();
    this.heal();
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.resetAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #kill(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    this.#heldCancels.delete(link);
    this.#stats.reset++;
    hardClose(link.client);
    hardClose(link.upstream);
  }

  /** Ends the connection after what was written to `to` has left; the other side is dropped. */
  #cut(link: Link, to: net.Socket): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    this.#stats.reset++;
    const other = to === link.client ? link.upstream : link.client;
    other?.destroy();
    to.end();
    const timer = setTimeout(() => to.destroy(), 1000);
    (timer as { unref?: () => void }).unref?.();
  }

  #finish(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    this.#heldCancels.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  }

  #accept(client: net.Socket): void {
    this.#stats.accepted++;
    client.on("error", () => {});
    client.setNoDelay(true);
    const link: Link = {
      client,
      upstream: undefined,
      budget: this.#cutAfter ?? Infinity,
      lastUp: 0,
      lastDown: 0,
      swallowed: false,
      closed: false,
      classified: false,
      held: undefined,
      clientGone: false,
    };
    this.#links.add(link);
    if (this.#refuse) {
      this.#kill(link);
      return;
    }
    if (this.#blackHoled) {
      // Accept, never answer: read and drop, so a client that gives up is noticed.
      link.swallowed = true;
      this.#stats.swallowed++;
      client.on("data", () => {});
      client.on("close", () => this.#finish(link));
      return;
    }
    const upstream = net.connect(this.#target.port, this.#target.host);
    link.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on("error", () => this.#kill(link));
    client.on("close", () => {
      // a held cancel's bytes are in flight: the client closing does not take them back
      if (link.held !== undefined) link.clientGone = true;
      else if (link.clientGone) return; // released after the client left: the server ends it
      else this.#finish(link);
    });
    upstream.on("close", () => this.#finish(link));
    client.on("data", (chunk: Uint8Array) => this.#forward(link, chunk, "up"));
    upstream.on("data", (chunk: Uint8Array) => this.#forward(link, chunk, "down"));
    // Until the upstream connects, net.Socket buffers what is written to it.
  }

  #forward(link: Link, chunk: Uint8Array, dir: "up" | "down"): void {
    if (link.closed) return;
    if (dir === "up" && !link.classified) {
      link.classified = true;
      if (this.#holdCancels && isCancelRequest(chunk)) {
        link.held = [];
        this.#heldCancels.add(link);
      }
    }
    if (dir === "up" && link.held !== undefined) {
      link.held.push(chunk);
      return;
    }
    let data = chunk;
    let cut = false;
    if (data.byteLength >= link.budget) {
      data = data.subarray(0, link.budget);
      cut = true;
    }
    link.budget -= data.byteLength;
    const to = dir === "up" ? link.upstream! : link.client;
    if (dir === "up") this.#stats.bytesUp += data.byteLength;
    else this.#stats.bytesDown += data.byteLength;
    const deliver = (): void => {
      if (link.closed) return;
      if (data.byteLength > 0) to.write(data);
      if (cut) this.#cut(link, to);
    };
    if (this.#latencyMs === 0) {
      deliver();
      return;
    }
    const now = Date.now();
    const key = dir === "up" ? "lastUp" : "lastDown";
    const at = Math.max(now + this.#latencyMs, link[key]);
    link[key] = at;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      deliver();
    }, at - now);
    this.#timers.add(timer);
  }
}

/**
 * The drivers' timing rules, as small functions on a {@linkcode Watchdog}
 * (so they run on the driver's injectable clock and are unit-tested with a
 * fake one): how long a cancelled query may take, how long
 * a graceful close may take, and how a `CancelRequest` is delivered.
 *
 * @module
 */

import { PoolTimeoutError } from "../core/errors.ts";
import type { Watchdog } from "../core/watchdog.ts";
import type { Connector, TransportTarget } from "../runtime/transport.ts";

/** How long to wait for the server to close a cancel request's socket after it was written. */
export const CANCEL_CLOSE_WAIT_MS = 1000;
/** The `CancelRequest` code (1234 << 16 | 5678). */
const CANCEL_CODE = 80877102;
const noop = (): void => {};

/** What ended the wait for a cancelled query. */
export type CancelOutcome = "done" | "progress" | "stuck";

/**
 * Waits, after a `CancelRequest` was delivered, for the cancelled work to end
 * (`finished`), for the server to finish one more statement (`progress`: the
 * cancel hit that one, and the next may need its own), or for `graceMs` to
 * pass (`"stuck"`: the caller terminates the connection).
 *
 * @example
 * ```ts
 * import { systemClock } from "../core/clock.ts";
 * import { Watchdog } from "../core/watchdog.ts";
 * import { awaitCancelled } from "./timing.ts";
 * const outcome = await awaitCancelled(Watchdog.of(systemClock), 5000, Promise.resolve(), new Promise(() => {}));
 * console.log(outcome); // "done"
 * ```
 */
export function awaitCancelled(
  watchdog: Watchdog,
  graceMs: number,
  finished: Promise<unknown>,
  progress: Promise<unknown>,
): Promise<CancelOutcome> {
  return new Promise<CancelOutcome>((resolve) => {
    const alarm = watchdog.after(graceMs, () => resolve("stuck"));
    const end = (outcome: CancelOutcome) => (): void => {
      alarm.cancel();
      resolve(outcome);
    };
    finished.then(end("done"), end("done"));
    progress.then(end("progress"), end("progress"));
  });
}

/**
 * Resolves once any of `endings` settles (a graceful close finished, or the
 * transport went away) or `ms` passed, whichever comes first.
 *
 * @example
 * ```ts
 * import { systemClock } from "../core/clock.ts";
 * import { Watchdog } from "../core/watchdog.ts";
 * import { closeWithin } from "./timing.ts";
 * console.log(await closeWithin(Watchdog.of(systemClock), 10_000, [Promise.resolve()])); // "closed"
 * ```
 */
export function closeWithin(
  watchdog: Watchdog,
  ms: number,
  endings: readonly Promise<unknown>[],
): Promise<"closed" | "timeout"> {
  return new Promise<"closed" | "timeout">((resolve) => {
    const alarm = watchdog.after(ms, () => resolve("timeout"));
    const closed = (): void => {
      alarm.cancel();
      resolve("closed");
    };
    for (const ending of endings) ending.then(closed, closed);
  });
}

/** The part of a transport a cancel request uses. */
export interface CancelChannel {
  write(chunk: Uint8Array): unknown;
  destroy(): void;
}

/**
 * Delivers a `CancelRequest`: opens a channel with `open` (which calls
 * `onClose` when the server closes it), writes `message`, and resolves once
 * the server closed the channel (it acted on the request) or, when no close is
 * reported, `closeWaitMs` after the write (the channel is destroyed then).
 * Rejects with the open's error, or with `CONNECT_TIMEOUT` when nothing of it
 * finished within `limitMs` (a channel that opens later is destroyed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemClock } from "../core/clock.ts";
 * import { Watchdog } from "../core/watchdog.ts";
 * import { type CancelChannel, deliverCancel } from "./timing.ts";
 * // A stand-in for the socket the driver opens: its "server" closes it once the request came.
 * const sent: Uint8Array[] = [];
 * const open = (onClose: () => void): Promise<CancelChannel> =>
 *   Promise.resolve({
 *     write(chunk: Uint8Array): void {
 *       sent.push(chunk);
 *       queueMicrotask(onClose);
 *     },
 *     destroy(): void {},
 *   });
 * await deliverCancel(Watchdog.of(systemClock), open, new Uint8Array(16), 30_000, 1000);
 * assert.equal(sent.length, 1);
 * ```
 */
export function deliverCancel(
  watchdog: Watchdog,
  open: (onClose: () => void) => Promise<CancelChannel>,
  message: Uint8Array,
  limitMs: number,
  closeWaitMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let channel: CancelChannel | undefined;
    let settled = false;
    let closeWait: { cancel(): void } | undefined;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      limit.cancel();
      closeWait?.cancel();
      if (error === undefined) resolve();
      else reject(error);
    };
    const limit = watchdog.after(limitMs, () => {
      channel?.destroy();
      finish(new PoolTimeoutError("CONNECT_TIMEOUT", "Timed out sending a cancel request"));
    });
    open(() => finish()).then(
      (c) => {
        channel = c;
        if (settled) return c.destroy();
        c.write(message);
        // The server closes the socket once it acted on the request. Until then the request may
        // still be on its way, and would cancel whatever runs when it lands: a later caller's
        // statement. Unconfirmed in time, it fails, and the driver closes the connection.
        closeWait = watchdog.after(closeWaitMs, () => {
          c.destroy();
          finish(
            new PoolTimeoutError(
              "QUERY_TIMEOUT",
              "The server did not confirm a cancel request in time; the connection was closed so that it cannot cancel a later statement",
            ),
          );
        });
      },
      (error) => finish(error),
    );
  });
}

/**
 * Sends a `CancelRequest` for backend `pid` (with its `secret`) to `target`
 * over a new transport, and waits until the server closed it (see
 * {@linkcode deliverCancel} for the bounds and the errors).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemClock } from "../core/clock.ts";
 * import { Watchdog } from "../core/watchdog.ts";
 * import type { Connector } from "../runtime/transport.ts";
 * import { sendCancelRequest } from "./timing.ts";
 * // A stand-in connector: its "server" reads the request, then closes the socket.
 * const sent: Uint8Array[] = [];
 * const connector: Connector = (_target, handlers) =>
 *   Promise.resolve({
 *     write(chunk: Uint8Array): boolean {
 *       sent.push(chunk);
 *       queueMicrotask(() => handlers.close());
 *       return true;
 *     },
 *     pause(): void {},
 *     resume(): void {},
 *     end(): void {},
 *     destroy(): void {},
 *     startTls: () => Promise.resolve(),
 *     ref(): void {},
 *     unref(): void {},
 *   });
 * await sendCancelRequest(Watchdog.of(systemClock), connector, { kind: "tcp", hostname: "db", port: 5432 }, 42, 7, 30_000);
 * assert.deepEqual([...sent[0]!.subarray(8)], [0, 0, 0, 42, 0, 0, 0, 7]);
 * ```
 */
export function sendCancelRequest(
  watchdog: Watchdog,
  connector: Connector,
  target: TransportTarget,
  pid: number,
  secret: number,
  limitMs: number,
): Promise<void> {
  const message = new Uint8Array(16);
  const view = new DataView(message.buffer);
  view.setInt32(0, 16);
  view.setInt32(4, CANCEL_CODE);
  view.setInt32(8, pid);
  view.setInt32(12, secret);
  return deliverCancel(
    watchdog,
    (onClose) => connector(target, { data: noop, drain: noop, close: onClose }, {}),
    message,
    limitMs,
    CANCEL_CLOSE_WAIT_MS,
  );
}

/**
 * One checkout: what one acquire hands out, from the moment its slot is
 * reserved for it until its release ends. A slot points at the checkout that
 * holds it; a proxy points at its own checkout, so a stale proxy (of an earlier
 * checkout of the same slot) can never match the slot's current holder.
 *
 * A checkout never holds its proxy strongly: the pool's `FinalizationRegistry`
 * keeps the checkout (through the slot), and a forgotten proxy must stay
 * collectable so the pool can notice the leak and take the slot back.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import type { Release } from "./release.ts";
import type { Slot } from "./slot.ts";
import type { Alarm } from "./watchdog.ts";

/**
 * - `setup`: the proxy exists and `setup` runs on it; not yet handed out.
 * - `held`: handed out to the caller.
 * - `releasing`: its {@linkcode Release} runs.
 * - `over`: released, or dropped (setup failed, connection lost, pool terminated).
 */
export type CheckoutState = "setup" | "held" | "releasing" | "over";

/** One checkout of a slot. Internal. */
export class Checkout {
  /** The slot it holds while `held` or `releasing`. */
  readonly slot: Slot;
  /** The connection it was handed. */
  readonly con: Connection;
  /** The acquire's timeout (ms): the default bound of its release. */
  readonly timeoutMs: number | undefined;
  /** Where `acquire()` was called, while `leakDetectionThreshold` is on; else undefined (no stack captured). */
  readonly site: Error | undefined;
  /** The `leakDetectionThreshold` alarm while held. */
  leakAlarm: Alarm | undefined = undefined;
  /**
   * The last statement started through its proxy (statements on one connection
   * end in order): a forgotten proxy's connection is closed only after it ended.
   */
  lastStatement: Promise<unknown> | undefined = undefined;
  /** A `CONNECTION_LEAK` was reported for it (counted once). */
  leaked = false;
  /** Registered with the pool's leak registry (most checkouts end before they would be). */
  registered = false;
  /** Its release, once started. */
  release: Release | undefined = undefined;
  /** When it was handed out (clock ms); set only when the pool records metrics. */
  heldAt = 0;
  #state: CheckoutState;

  /**
   * @param slot The slot it holds.
   * @param con The slot's connection.
   * @param timeoutMs The acquire's timeout in ms, if any.
   * @param state `setup` when `setup` still has to run, else `held`.
   * @param site The `acquire()` call's stack, when leak detection is on.
   */
  constructor(
    slot: Slot,
    con: Connection,
    timeoutMs: number | undefined,
    state: "setup" | "held",
    site: Error | undefined,
  ) {
    this.slot = slot;
    this.con = con;
    this.timeoutMs = timeoutMs;
    this.#state = state;
    this.site = site;
  }

  /** Where it is. */
  get state(): CheckoutState {
    return this.#state;
  }

  /** The one transition function: `setup` → `held` → `releasing` → `over`; any state → `over`. */
  to(next: CheckoutState): void {
    const from = this.#state;
    if (
      next !== "over" &&
      !(from === "setup" && next === "held") &&
      !(from === "held" && next === "releasing")
    ) {
      throw new Error(`Checkout cannot move from ${from} to ${next}`);
    }
    this.#state = next;
  }
}

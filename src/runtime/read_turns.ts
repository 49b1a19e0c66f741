/**
 * Fair reading for an adapter whose runtime keeps serving one socket while it has data.
 *
 * Under Deno, a read that finds data waiting completes without the event loop going idle, and
 * the loop learns that other sockets became readable only when it does go idle. A connection
 * streaming a large result or `COPY` therefore kept every other connection's answers waiting
 * until the stream ended: a one-row query on another connection of the same pool took as long
 * as the whole stream (measured with a 150 MB `COPY`: 130–340 ms).
 *
 * {@linkcode ReadTurns} tells a read loop when to wait one timer turn: after it has read full
 * buffers back to back for a slice of time while another connection of the process waits for an
 * answer. A read that does not fill its buffer found the socket drained, so ordinary query
 * traffic never waits; a stream that no one else waits on never pauses; a stream that others wait
 * on pauses for one turn (about a millisecond) every slice.
 *
 * @module
 */

/** How long a stream of full reads goes on before its reader waits one turn, in milliseconds. */
export const READ_SLICE_MS = 5;

/** Connections of this process that wrote and have not read anything since: they wait for an answer. */
let awaitingAnswers = 0;

/**
 * Decides when a connection's read loop should let the event loop go round. One per connection.
 *
 * @example
 * ```ts
 * import { nextTurn, ReadTurns } from "./read_turns.ts";
 * const turns = new ReadTurns(() => performance.now());
 * turns.wrote(); // on every write
 * // in the read loop, after delivering a chunk of n bytes read into a buffer of `size`:
 * const n = 128 * 1024, size = 128 * 1024;
 * if (turns.afterRead(n >= size / 2)) await nextTurn();
 * turns.closed(); // once, when the connection closes
 * ```
 */
export class ReadTurns {
  readonly #now: () => number;
  readonly #sliceMs: number;
  /** When the current run of full reads began, or -1 outside one. */
  #since = -1;
  /** Wrote, and has read nothing since. */
  #awaiting = false;

  /**
   * @param now The time source, in milliseconds.
   * @param sliceMs How long a run of full reads may last before a turn.
   */
  constructor(now: () => number, sliceMs: number = READ_SLICE_MS) {
    this.#now = now;
    this.#sliceMs = sliceMs;
  }

  /** The connection wrote: it now waits for an answer (until its next read). */
  wrote(): void {
    if (this.#awaiting) return;
    this.#awaiting = true;
    awaitingAnswers++;
  }

  /**
   * Records a read; true when the reader should wait one turn before its next read.
   *
   * @param full Whether the read (nearly) filled its buffer, so more data is probably waiting.
   * @returns True at the end of a slice of back-to-back full reads while another connection waits
   *   for an answer.
   */
  afterRead(full: boolean): boolean {
    if (this.#awaiting) {
      this.#awaiting = false;
      awaitingAnswers--;
    }
    if (!full) {
      this.#since = -1;
      return false;
    }
    const now = this.#now();
    if (this.#since < 0) {
      this.#since = now;
      return false;
    }
    if (now - this.#since < this.#sliceMs) return false;
    this.#since = -1;
    return awaitingAnswers > 0;
  }

  /** The connection closed: it waits for nothing any more. */
  closed(): void {
    if (!this.#awaiting) return;
    this.#awaiting = false;
    awaitingAnswers--;
  }
}

/**
 * Resolves after one timer turn: the event loop goes idle for a moment and polls every socket
 * (a microtask, `setImmediate` or a `MessageChannel` message would not let it: measured).
 *
 * @returns A promise that resolves on the next timer turn.
 *
 * @example
 * ```ts
 * import { nextTurn } from "./read_turns.ts";
 * await nextTurn();
 * ```
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

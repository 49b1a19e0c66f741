/**
 * Small statistics helpers shared by the scenarios: percentiles over latency
 * samples and medians over repetitions.
 *
 * @module
 */

/** The value at quantile `q` (0..1) of an ascending-sorted array; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** Median of a list of numbers (NaN values ignored); NaN when nothing is left. */
export function median(values: readonly number[]): number {
  const xs = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** Mean of a list of numbers; NaN when empty. */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

/** A growable list of latencies in milliseconds, backed by a Float64Array. */
export class LatencyLog {
  #data = new Float64Array(1 << 16);
  #length = 0;

  /** Number of recorded values. */
  get length(): number {
    return this.#length;
  }

  /** Appends one value. */
  push(ms: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = ms;
  }

  /** The recorded values, sorted ascending (a copy). */
  sorted(): Float64Array {
    return this.#data.slice(0, this.#length).sort();
  }
}

/** Result of one timed repetition of one contender in one scenario. */
export interface Sample {
  /** Completed operations (checkouts, one-shots, transactions or HTTP requests). */
  ops: number;
  /** Wall-clock seconds the repetition took. */
  seconds: number;
  /** Median latency of one operation, ms. */
  p50: number;
  /** 99th percentile latency of one operation, ms. */
  p99: number;
  /** Scenario-specific figures (e.g. S5's acquire-wait statistics). */
  extra?: Record<string, number>;
}

/** Builds a {@linkcode Sample} from an operation count, elapsed time and latency log. */
export function sampleFrom(
  ops: number,
  seconds: number,
  log: LatencyLog,
  extra?: Record<string, number>,
): Sample {
  const sorted = log.sorted();
  return { ops, seconds, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), extra };
}

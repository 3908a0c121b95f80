/**
 * The arithmetic of the report: percentiles, the median and spread of a figure over rounds, and
 * the busiest window of a series of arrival times.
 */

/**
 * Latency percentiles, in milliseconds.
 */
export interface Latency {
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

/**
 * The `p`th percentile (0–100) of sorted values, nearest rank.
 */
export const percentile = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

/**
 * A growing list of numbers (latencies in ms) in a typed array.
 */
export class Samples {
  private values = new Float64Array(1 << 16)
  count = 0

  add(value: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.count++] = value
  }

  latency(): Latency {
    const sorted = this.values.slice(0, this.count).sort()
    let sum = 0
    for (const value of sorted) sum += value
    return {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      mean: sorted.length === 0 ? Number.NaN : sum / sorted.length
    }
  }
}

/**
 * A figure over several rounds: its median, its smallest and largest value, and the spread
 * `(max - min) / median`.
 */
export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  /** `(max - min) / median`, a fraction. */
  readonly spread: number
  readonly rounds: ReadonlyArray<number>
}

/**
 * The median of `values` (the mean of the middle two for an even count).
 */
export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2
}

/**
 * Summarises a figure measured once per round.
 */
export const summarize = (rounds: ReadonlyArray<number>): Summary => {
  const mid = median(rounds)
  const min = Math.min(...rounds)
  const max = Math.max(...rounds)
  return { median: mid, min, max, spread: mid === 0 ? 0 : (max - min) / mid, rounds }
}

/**
 * The most entries of `times` (ms, any order) that fall into one window `[t, t + windowMs)`, and
 * where that window starts. Every window that could hold the most starts at an entry, so only
 * those are tried.
 */
export const busiestWindow = (
  times: ReadonlyArray<number>,
  windowMs: number
): { readonly count: number; readonly start: number } => {
  const sorted = [...times].sort((a, b) => a - b)
  let best = { count: 0, start: Number.NaN }
  let end = 0
  for (let start = 0; start < sorted.length; start++) {
    const from = sorted[start] ?? 0
    while (end < sorted.length && (sorted[end] ?? 0) < from + windowMs) end++
    if (end - start > best.count) best = { count: end - start, start: from }
  }
  return best
}

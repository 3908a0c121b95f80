/**
 * The arithmetic of load runs and benchmarks: request durations kept as samples (exact percentiles
 * from the sorted samples, interpolated between neighbours as k6 does), what one load run measured
 * the way k6 keeps its built-in metrics ({@link Recorder}), a figure's median and spread over
 * rounds, and the busiest window of a series of arrival times.
 *
 * @since 0.0.0
 */

/**
 * A growable array of doubles: a few MB for a long run, where boxed numbers would be many more.
 *
 * @category samples
 */
export class Samples {
  private values = new Float64Array(1 << 16)
  private size = 0

  add(value: number): void {
    if (this.size === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.size++] = value
  }

  get count(): number {
    return this.size
  }

  sorted(): Float64Array {
    return this.values.slice(0, this.size).sort()
  }
}

/**
 * Summary statistics of a duration, in milliseconds (0 each when there are no samples).
 *
 * @category samples
 */
export interface Trend {
  readonly count: number
  readonly avg: number
  readonly min: number
  readonly med: number
  readonly max: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
}

/**
 * The `p`-th percentile (0–100) of sorted samples, interpolated between neighbours as k6 does.
 *
 * @category samples
 */
export const percentile = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return 0
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.min(sorted.length - 1, low + 1)
  const lowValue = sorted[low] ?? 0
  return lowValue + ((sorted[high] ?? lowValue) - lowValue) * (rank - low)
}

/**
 * The {@link Trend} of some samples.
 *
 * @category samples
 */
export const trendOf = (samples: Samples): Trend => {
  const sorted = samples.sorted()
  const sum = sorted.reduce((total, value) => total + value, 0)
  return {
    count: sorted.length,
    avg: sorted.length === 0 ? 0 : sum / sorted.length,
    min: sorted[0] ?? 0,
    med: percentile(sorted, 50),
    max: sorted[sorted.length - 1] ?? 0,
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99)
  }
}

/**
 * A percentile of a duration by number, for thresholds such as `p(99.9)<…`.
 *
 * @category samples
 */
export type PercentileOf = (p: number) => number

/**
 * The counters of one second, for a progress line.
 *
 * @category load
 */
export interface Window {
  readonly requests: number
  readonly failed: number
  readonly iterations: number
}

/**
 * What one load run measured, written to by its clients and read at the end: every request's
 * duration (exact percentiles come from the sorted samples; a two-minute run is well under ten
 * million of them), whether it failed (a network error or a status outside 200–399, as k6's
 * `http_req_failed` counts), checks, iterations, and a count per kind of error so a failing run
 * says why.
 *
 * @category load
 */
export class Recorder {
  private readonly durations = new Samples()
  private readonly durationsByName = new Map<string, Samples>()
  private failedCount = 0
  private networkErrorCount = 0
  private iterationCount = 0
  private interruptedCount = 0
  private checkPasses = 0
  private checkFails = 0
  private readonly errorCounts = new Map<string, number>()
  private window = { requests: 0, failed: 0, iterations: 0 }

  /** One request: its name (e.g. `POST /jobs`), duration and status (0 when it never got one). */
  request(name: string, millis: number, status: number, error?: string): void {
    this.durations.add(millis)
    let byName = this.durationsByName.get(name)
    if (byName === undefined) {
      byName = new Samples()
      this.durationsByName.set(name, byName)
    }
    byName.add(millis)
    this.window.requests++
    if (status < 200 || status > 399) {
      this.failedCount++
      this.window.failed++
      if (status === 0) this.networkErrorCount++
      const kind = status === 0 ? `${name}: ${error ?? "network error"}` : `${name}: ${status}`
      this.errorCounts.set(kind, (this.errorCounts.get(kind) ?? 0) + 1)
    }
  }

  /** One check, as k6's `check` records it. */
  check(passed: boolean): void {
    if (passed) this.checkPasses++
    else this.checkFails++
  }

  /** One iteration finished (or, when `interrupted`, cut off by the end of the run). */
  iteration(interrupted = false): void {
    if (interrupted) {
      this.interruptedCount++
      return
    }
    this.iterationCount++
    this.window.iterations++
  }

  /** The counters since the last call, for a once-a-second progress line. */
  takeWindow(): Window {
    const window = this.window
    this.window = { requests: 0, failed: 0, iterations: 0 }
    return window
  }

  get requests(): number {
    return this.durations.count
  }

  /** Requests that failed: no answer, or a status outside 200–399. */
  get failed(): number {
    return this.failedCount
  }

  /** Requests that got no answer (connect, read, write errors and timeouts). */
  get networkErrors(): number {
    return this.networkErrorCount
  }

  get iterations(): number {
    return this.iterationCount
  }

  get interrupted(): number {
    return this.interruptedCount
  }

  get checks(): { readonly passes: number; readonly fails: number } {
    return { passes: this.checkPasses, fails: this.checkFails }
  }

  /** Error kinds with their counts, most frequent first. */
  errors(): ReadonlyArray<{ readonly kind: string; readonly count: number }> {
    return [...this.errorCounts].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count)
  }

  /** The duration of every request, with a percentile function for thresholds. */
  duration(): Trend & { readonly percentile: PercentileOf } {
    const sorted = this.durations.sorted()
    return { ...trendOf(this.durations), percentile: (p) => percentile(sorted, p) }
  }

  /** The duration per request name. */
  durationByName(): ReadonlyArray<{ readonly name: string; readonly trend: Trend }> {
    return [...this.durationsByName].map(([name, samples]) => ({ name, trend: trendOf(samples) }))
  }
}

/**
 * A figure over several rounds: its median, its smallest and largest value, and the spread
 * `(max - min) / median`.
 *
 * @category rounds
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
 *
 * @category rounds
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
 *
 * @category rounds
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
 *
 * @category arrivals
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

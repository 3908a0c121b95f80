/**
 * What a load run measures, kept the way k6 keeps its built-in metrics: every request's duration
 * (exact percentiles come from the sorted samples; a two-minute run is well under ten million of
 * them), whether it failed (a network error or a status outside 200–399, as `http_req_failed`
 * counts), checks, iterations, and a count per kind of error so a failing run says why.
 */

/** A growable array of doubles: a few MB for a long run, where boxed numbers would be many more. */
class Samples {
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
 * Summary statistics of a duration metric, in milliseconds.
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
 * The `p`-th percentile of sorted samples, interpolated between neighbours as k6 does.
 */
export const percentile = (sorted: Float64Array, p: number): number => {
  if (sorted.length === 0) return 0
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.min(sorted.length - 1, low + 1)
  const lowValue = sorted[low] ?? 0
  return lowValue + ((sorted[high] ?? lowValue) - lowValue) * (rank - low)
}

const trendOf = (samples: Samples): Trend => {
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
 * A percentile of a duration metric by number, for thresholds such as `p(99.9)<…`.
 */
export type PercentileOf = (p: number) => number

/**
 * The counters of one second, for the progress line.
 */
export interface Window {
  readonly requests: number
  readonly failed: number
  readonly iterations: number
}

/**
 * Everything measured in one run, written to by the VUs and read at the end.
 */
export class Stats {
  private readonly durations = new Samples()
  private readonly durationsByName = new Map<string, Samples>()
  private failedCount = 0
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

  get failed(): number {
    return this.failedCount
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

  /** `http_req_duration` over every request, with a percentile function for thresholds. */
  duration(): Trend & { readonly percentile: PercentileOf } {
    const sorted = this.durations.sorted()
    return { ...trendOf(this.durations), percentile: (p) => percentile(sorted, p) }
  }

  /** `http_req_duration` per request name. */
  durationByName(): ReadonlyArray<{ readonly name: string; readonly trend: Trend }> {
    return [...this.durationsByName].map(([name, samples]) => ({ name, trend: trendOf(samples) }))
  }
}

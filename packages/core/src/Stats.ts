/**
 * Windowed statistics for the operator's dashboard (`GET /stats`): per vendor, the vendor calls and
 * job outcomes of the last 5 and 60 minutes, their rates, latency percentiles, and a short series
 * for the live charts.
 *
 * A collector keeps 10-second buckets for an hour, with latencies in log-spaced bins (each 4% wide)
 * so memory stays bounded however busy a vendor is: in the process ({@link makeMemory}), or in
 * Redis, shared by the server and every worker of a split deployment (`@vendorflow/redis`'s
 * `RedisStats`, over {@link makeWith}). The engine feeds it where it records outcomes
 * (`JobProcessor`, job completion); the server reads it.
 *
 * `Stats` is a reference whose default collects nothing, so a process that provides no collector
 * (the split deployment's server) still answers, with `collecting: false`.
 *
 * Offers {@link layerMemory} and {@link report} (assembles the API's answer).
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Option, Schema } from "effect"

/**
 * The width of one bucket.
 *
 * @category constants
 */
export const bucketMillis = 10_000

/**
 * The windows reported, in minutes; the longest is how long buckets are kept.
 *
 * @category constants
 */
export const windows = [5, 60] as const

/**
 * How far back the live-chart series goes, in minutes (one point per bucket).
 *
 * @category constants
 */
export const seriesMinutes = 5

/**
 * How many buckets a collector keeps: an hour's, and the one filling up.
 *
 * @category constants
 */
export const keptBuckets = (60 * 60_000) / bucketMillis + 1
const binBase = Math.log(1.04)
const binOf = (millis: number) => Math.floor(Math.log1p(Math.max(0, millis)) / binBase)
const valueOfBin = (bin: number) => Math.round(Math.expm1((bin + 0.5) * binBase))

// ---------------------------------------------------------------------------------------------
// Wire schemas
// ---------------------------------------------------------------------------------------------

/**
 * The 50th and 95th percentile of a latency, in milliseconds.
 *
 * @category schemas
 */
export const Percentiles = Schema.Struct({ p50: Schema.Number, p95: Schema.Number }).annotate({
  identifier: "Percentiles"
})

/**
 * One vendor over one window.
 *
 * @category schemas
 */
export const WindowStats = Schema.Struct({
  minutes: Schema.Int,
  /** Vendor calls answered (success or error); calls refused by an open circuit are not calls. */
  calls: Schema.Int,
  call_errors: Schema.Record(Schema.String, Schema.Int),
  /** Share of calls answered without error; absent when there were no calls. */
  call_success_rate: Schema.optionalKey(Schema.Number),
  completed: Schema.Int,
  failed: Schema.Int,
  failure_reasons: Schema.Record(Schema.String, Schema.Int),
  /** completed / (completed + failed); absent when no job finished. */
  success_rate: Schema.optionalKey(Schema.Number),
  failure_rate: Schema.optionalKey(Schema.Number),
  /** Jobs finished (completed or failed) per minute over the part of the window this process saw (a minute at least). */
  throughput_per_minute: Schema.Number,
  /** One vendor call, answer or error. */
  call_latency_ms: Schema.optionalKey(Percentiles),
  /** From `POST /jobs` to the job's completion. */
  end_to_end_ms: Schema.optionalKey(Percentiles)
}).annotate({ identifier: "WindowStats" })

/** @category schemas */
export type WindowStats = typeof WindowStats.Type

/**
 * One point of a vendor's live-chart series: one bucket.
 *
 * @category schemas
 */
export const Point = Schema.Struct({
  /** The bucket's start, in milliseconds since the epoch. */
  at: Schema.Number,
  calls: Schema.Int,
  completed: Schema.Int,
  failed: Schema.Int,
  call_p95_ms: Schema.optionalKey(Schema.Number)
}).annotate({ identifier: "StatsPoint" })

/** @category schemas */
export type Point = typeof Point.Type

/**
 * A vendor's rate limit and how much of it the last minute's calls used.
 *
 * @category schemas
 */
export const RateLimitUse = Schema.Struct({
  limit: Schema.Number,
  window_ms: Schema.Number,
  /** The limit as calls per second. */
  limit_per_second: Schema.Number,
  /** Calls per second over the last minute (as seen by this process). */
  used_per_second: Schema.Number,
  /** used_per_second / limit_per_second. */
  use: Schema.Number,
  /**
   * Whether the limit is learned (`auto`): then `limit` is what was learned, per second, shared by
   * every worker (the configured ceiling until something is learned, 0 without one).
   */
  learned: Schema.optionalKey(Schema.Boolean),
  /** Where a learned limit came from: the vendor's headers (`advertised`) or its 429s (`probed`). */
  source: Schema.optionalKey(Schema.Literals(["none", "advertised", "probed"])),
  /** How long the vendor stays paused after a 429, for every worker; absent when it is not. */
  paused_ms: Schema.optionalKey(Schema.Number)
}).annotate({ identifier: "RateLimitUse" })

/**
 * A vendor's calls in flight across every worker, against its cap (`VENDOR_<NAME>_MAX_IN_FLIGHT`).
 *
 * @category schemas
 */
export const InFlight = Schema.Struct({
  calls: Schema.Int,
  max: Schema.Int
}).annotate({ identifier: "InFlight" })

/**
 * One vendor's stats.
 *
 * @category schemas
 */
export const VendorStats = Schema.Struct({
  vendor: Schema.String,
  mode: Schema.Literals(["sync", "async"]),
  /** Jobs waiting for the vendor (queued, in flight, waiting to be retried); absent if unknown. */
  backlog: Schema.optionalKey(Schema.Int),
  /** `Closed`, `Open`, `HalfOpen`, or `Unknown` when this process cannot see the circuit. */
  circuit: Schema.String,
  rate_limit: Schema.optionalKey(RateLimitUse),
  in_flight: Schema.optionalKey(InFlight),
  windows: Schema.Array(WindowStats),
  series: Schema.Array(Point)
}).annotate({ identifier: "VendorStats" })

/** @category schemas */
export type VendorStats = typeof VendorStats.Type

/** @category schemas */
export type RateLimitUse = typeof RateLimitUse.Type

/**
 * The answer to `GET /stats`.
 *
 * @category schemas
 */
export const Report = Schema.Struct({
  generated_at: Schema.String,
  /** Whether this process records outcomes (it runs the engine); if not, windows are empty. */
  collecting: Schema.Boolean,
  bucket_seconds: Schema.Int,
  vendors: Schema.Array(VendorStats)
}).annotate({ identifier: "StatsReport" })

/** @category schemas */
export type Report = typeof Report.Type

// ---------------------------------------------------------------------------------------------
// Collector
// ---------------------------------------------------------------------------------------------

/**
 * What one vendor's calls and jobs added up to over a window.
 *
 * @category models
 */
export interface Summary {
  readonly calls: number
  readonly callErrors: Readonly<Record<string, number>>
  readonly completed: number
  readonly failed: number
  readonly failureReasons: Readonly<Record<string, number>>
  readonly callLatency?: { readonly p50: number; readonly p95: number } | undefined
  readonly endToEnd?: { readonly p50: number; readonly p95: number } | undefined
  /** How much of the window the collector saw (it may have started later), in milliseconds. */
  readonly observedMillis: number
}

/**
 * A collector of outcomes.
 *
 * @category models
 */
export interface Collector {
  /** False for the default, which drops everything. */
  readonly collecting: boolean
  /** One vendor call that was answered: `ok`, or the error's reason. */
  readonly recordCall: (vendor: string, outcome: string, millis: number) => Effect.Effect<void>
  /** A job completed, `millis` after it was submitted. */
  readonly recordCompleted: (vendor: string, millis: number) => Effect.Effect<void>
  /** A job failed for good. */
  readonly recordFailed: (vendor: string, reason: string) => Effect.Effect<void>
  /** One vendor's totals over the last `minutes`. */
  readonly summary: (vendor: string, minutes: number) => Effect.Effect<Summary>
  /** One vendor's buckets over the last `minutes`, oldest first, empty ones included. */
  readonly series: (vendor: string, minutes: number) => Effect.Effect<ReadonlyArray<Point>>
}

const empty: Summary = { calls: 0, callErrors: {}, completed: 0, failed: 0, failureReasons: {}, observedMillis: 0 }

/**
 * The collector that records nothing: the default of {@link Stats}.
 *
 * @category constructors
 */
export const disabled: Collector = {
  collecting: false,
  recordCall: () => Effect.void,
  recordCompleted: () => Effect.void,
  recordFailed: () => Effect.void,
  summary: () => Effect.succeed(empty),
  series: () => Effect.succeed([])
}

/**
 * The process's collector; by default {@link disabled}.
 *
 * @category services
 */
export const Stats = Context.Reference<Collector>("@vendorflow/core/Stats", { defaultValue: () => disabled })

/**
 * One vendor's figures over one bucket's 10 seconds, as collectors keep them: counts, and latencies
 * as counts per log-spaced bin.
 *
 * @category buckets
 */
export interface Bucket {
  readonly index: number
  calls: number
  readonly callErrors: Map<string, number>
  completed: number
  failed: number
  readonly failureReasons: Map<string, number>
  readonly callLatency: Map<number, number>
  readonly endToEnd: Map<number, number>
}

/**
 * An empty bucket; `index` is its start time divided by {@link bucketMillis}.
 *
 * @category buckets
 */
export const emptyBucket = (index: number): Bucket => ({
  index,
  calls: 0,
  callErrors: new Map(),
  completed: 0,
  failed: 0,
  failureReasons: new Map(),
  callLatency: new Map(),
  endToEnd: new Map()
})

const bump = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by)

const add = <K>(into: Map<K, number>, from: Map<K, number>) => {
  for (const [key, n] of from) bump(into, key, n)
}

/**
 * Adds `from`'s figures into `into` (for a collector that merges buckets from several processes).
 *
 * @category buckets
 */
export const addBucket = (into: Bucket, from: Bucket): void => {
  into.calls += from.calls
  into.completed += from.completed
  into.failed += from.failed
  add(into.callErrors, from.callErrors)
  add(into.failureReasons, from.failureReasons)
  add(into.callLatency, from.callLatency)
  add(into.endToEnd, from.endToEnd)
}

const percentiles = (bins: Map<number, number>): { p50: number; p95: number } | undefined => {
  let total = 0
  for (const n of bins.values()) total += n
  if (total === 0) return undefined
  const sorted = [...bins.entries()].sort(([a], [b]) => a - b)
  const at = (q: number) => {
    const rank = Math.ceil(q * total)
    let seen = 0
    for (const [bin, n] of sorted) {
      seen += n
      if (seen >= rank) return valueOfBin(bin)
    }
    return valueOfBin(sorted[sorted.length - 1]?.[0] ?? 0)
  }
  return { p50: at(0.5), p95: at(0.95) }
}

/**
 * Where a collector keeps its buckets: in the process ({@link makeMemory}), or shared by every
 * process (`@vendorflow/redis`'s `RedisStats`).
 *
 * @category buckets
 */
export interface BucketStore {
  /** Applies `change` to the vendor's bucket at `now`. */
  readonly update: (vendor: string, now: number, change: (bucket: Bucket) => void) => Effect.Effect<void>
  /** The vendor's buckets with indexes from `first` to `last`, by index (missing ones are empty). */
  readonly read: (vendor: string, first: number, last: number) => Effect.Effect<ReadonlyMap<number, Bucket>>
  /** Since when the store has been collecting (ms), for rates over a window it saw only part of. */
  readonly startedAt: Effect.Effect<number>
}

/**
 * A collector over a bucket store.
 *
 * @category constructors
 */
export const makeWith = (store: BucketStore): Collector => {
  const update = (vendor: string, change: (bucket: Bucket) => void) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.update(vendor, now, change))

  const within = (vendor: string, minutes: number, now: number) => {
    const first = Math.floor((now - minutes * 60_000) / bucketMillis) + 1
    const last = Math.floor(now / bucketMillis)
    return Effect.map(store.read(vendor, first, last), (buckets) => ({ first, last, buckets }))
  }

  return {
    collecting: true,
    recordCall: (vendor, outcome, millis) =>
      update(vendor, (bucket) => {
        bucket.calls += 1
        if (outcome !== "ok") bump(bucket.callErrors, outcome)
        bump(bucket.callLatency, binOf(millis))
      }),
    recordCompleted: (vendor, millis) =>
      update(vendor, (bucket) => {
        bucket.completed += 1
        bump(bucket.endToEnd, binOf(millis))
      }),
    recordFailed: (vendor, reason) =>
      update(vendor, (bucket) => {
        bucket.failed += 1
        bump(bucket.failureReasons, reason)
      }),
    summary: (vendor, minutes) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const startedAt = yield* store.startedAt
        const { buckets } = yield* within(vendor, minutes, now)
        // A process up for seconds would extrapolate a few jobs into a rate: a minute is the least.
        const observedMillis = Math.min(minutes * 60_000, Math.max(60_000, now - startedAt))
        const total = emptyBucket(0)
        for (const bucket of buckets.values()) addBucket(total, bucket)
        return {
          calls: total.calls,
          callErrors: Object.fromEntries(total.callErrors),
          completed: total.completed,
          failed: total.failed,
          failureReasons: Object.fromEntries(total.failureReasons),
          callLatency: percentiles(total.callLatency),
          endToEnd: percentiles(total.endToEnd),
          observedMillis
        }
      }),
    series: (vendor, minutes) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const { first, last, buckets } = yield* within(vendor, minutes, now)
        const points: Array<Point> = []
        for (let index = first; index <= last; index++) {
          const bucket = buckets.get(index)
          const p95 = bucket === undefined ? undefined : percentiles(bucket.callLatency)?.p95
          points.push({
            at: index * bucketMillis,
            calls: bucket?.calls ?? 0,
            completed: bucket?.completed ?? 0,
            failed: bucket?.failed ?? 0,
            ...(p95 === undefined ? {} : { call_p95_ms: p95 })
          })
        }
        return points
      })
  }
}

/**
 * A collector in memory, for one process.
 *
 * @category constructors
 */
export const makeMemory: Effect.Effect<Collector> = Effect.gen(function* () {
  const startedAt = yield* Clock.currentTimeMillis
  const vendors = new Map<string, Map<number, Bucket>>()
  return makeWith({
    update: (vendor, now, change) =>
      Effect.sync(() => {
        const index = Math.floor(now / bucketMillis)
        let buckets = vendors.get(vendor)
        if (buckets === undefined) {
          buckets = new Map()
          vendors.set(vendor, buckets)
        }
        let bucket = buckets.get(index)
        if (bucket === undefined) {
          bucket = emptyBucket(index)
          buckets.set(index, bucket)
          // Buckets come into being in time order, so the first keys are the oldest.
          for (const old of buckets.keys()) {
            if (old > index - keptBuckets) break
            buckets.delete(old)
          }
        }
        change(bucket)
      }),
    read: (vendor, first, last) =>
      Effect.sync(() => {
        const found = new Map<number, Bucket>()
        for (const [index, bucket] of vendors.get(vendor) ?? []) {
          if (index >= first && index <= last) found.set(index, bucket)
        }
        return found
      }),
    startedAt: Effect.succeed(startedAt)
  })
})

/**
 * The in-memory collector as the process's {@link Stats}.
 *
 * @category layers
 */
export const layerMemory = Layer.effect(Stats, makeMemory)

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

/**
 * Records a vendor call's exit: success is `ok`, a typed error with a `reason` is that reason; a
 * refusal by the circuit breaker or an interruption is not a call and is not recorded.
 *
 * @category recording
 */
export const recordCallExit = (
  collector: Collector,
  options: { readonly vendor: string; readonly startedAt: number },
  exit: Exit.Exit<unknown, { readonly _tag: string; readonly reason?: unknown }>
): Effect.Effect<void> => {
  if (!collector.collecting) return Effect.void
  const outcome = Exit.isSuccess(exit)
    ? Option.some("ok")
    : Option.flatMap(Cause.findErrorOption(exit.cause), (error) =>
        error._tag === "VendorError" && typeof error.reason === "string" ? Option.some(error.reason) : Option.none()
      )
  if (Option.isNone(outcome)) return Effect.void
  return Effect.flatMap(Clock.currentTimeMillis, (now) =>
    collector.recordCall(options.vendor, outcome.value, now - options.startedAt)
  )
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/**
 * What the report needs to know of a vendor besides the collector's figures.
 *
 * @category models
 */
export interface VendorInfo {
  readonly name: string
  readonly mode: "sync" | "async"
  readonly rateLimit?:
    | { readonly limit: number; readonly window: Duration.Input; readonly learn?: boolean | undefined }
    | undefined
  readonly maxInFlight?: number | undefined
}

/**
 * What the shared rate-limit store knows of a vendor now: `RateLimitStore.Snapshot`.
 *
 * @category models
 */
export interface LimitState {
  readonly learnedPerSecond: number | undefined
  readonly source: "none" | "advertised" | "probed"
  readonly pausedForMillis: number
  readonly inFlight: number
}

// A vendor's rate limit and its use over the last minute, as `/stats` shows it.
const rateLimitUse = (
  rateLimit: NonNullable<VendorInfo["rateLimit"]>,
  state: LimitState | undefined,
  usedPerSecond: number
): RateLimitUse => {
  const windowMillis = Duration.toMillis(Duration.fromInputUnsafe(rateLimit.window))
  const ceiling = rateLimit.limit / (windowMillis / 1000)
  const learned = rateLimit.learn === true
  const perSecond = learned ? (state?.learnedPerSecond ?? (Number.isFinite(ceiling) ? ceiling : 0)) : ceiling
  return {
    limit: learned ? perSecond : rateLimit.limit,
    window_ms: learned ? 1000 : windowMillis,
    limit_per_second: perSecond,
    used_per_second: usedPerSecond,
    use: perSecond === 0 ? 0 : usedPerSecond / perSecond,
    ...(learned ? { learned, source: state?.source ?? "none" } : {}),
    ...(state !== undefined && state.pausedForMillis > 0 ? { paused_ms: state.pausedForMillis } : {})
  }
}

const rate = (part: number, whole: number) => (whole === 0 ? undefined : part / whole)

const toWindow = (minutes: number, summary: Summary): WindowStats => {
  const finished = summary.completed + summary.failed
  const callSuccess = rate(summary.calls - Object.values(summary.callErrors).reduce((a, b) => a + b, 0), summary.calls)
  const success = rate(summary.completed, finished)
  const failure = rate(summary.failed, finished)
  return {
    minutes,
    calls: summary.calls,
    call_errors: summary.callErrors,
    ...(callSuccess === undefined ? {} : { call_success_rate: callSuccess }),
    completed: summary.completed,
    failed: summary.failed,
    failure_reasons: summary.failureReasons,
    ...(success === undefined ? {} : { success_rate: success }),
    ...(failure === undefined ? {} : { failure_rate: failure }),
    throughput_per_minute: finished / (summary.observedMillis / 60_000),
    ...(summary.callLatency === undefined ? {} : { call_latency_ms: summary.callLatency }),
    ...(summary.endToEnd === undefined ? {} : { end_to_end_ms: summary.endToEnd })
  }
}

/**
 * The `GET /stats` answer: the collector's figures for each vendor, with its backlog and circuit
 * as the given functions read them (`undefined` backlog when it cannot be read).
 *
 * @category report
 */
export const report = Effect.fnUntraced(function* (options: {
  readonly vendors: ReadonlyArray<VendorInfo>
  readonly backlog: (vendor: string) => Effect.Effect<number | undefined>
  readonly circuit: (vendor: string) => Effect.Effect<string>
  /** The shared rate-limit state of a vendor; undefined when this process cannot read it. */
  readonly limits?: ((vendor: string) => Effect.Effect<LimitState | undefined>) | undefined
}) {
  const collector = yield* Stats
  const now = yield* Clock.currentTimeMillis
  const vendors = yield* Effect.forEach(
    options.vendors,
    Effect.fnUntraced(function* (vendor) {
      const summaries = yield* Effect.forEach(windows, (minutes) => collector.summary(vendor.name, minutes))
      const backlog = yield* options.backlog(vendor.name)
      const circuit = yield* options.circuit(vendor.name)
      const series = yield* collector.series(vendor.name, seriesMinutes)
      const lastMinute = yield* collector.summary(vendor.name, 1)
      const rateLimit = vendor.rateLimit
      const state =
        options.limits === undefined || (rateLimit === undefined && vendor.maxInFlight === undefined)
          ? undefined
          : yield* options.limits(vendor.name)
      const usedPerSecond = lastMinute.calls / (lastMinute.observedMillis / 1000)
      const stats: VendorStats = {
        vendor: vendor.name,
        mode: vendor.mode,
        ...(backlog === undefined ? {} : { backlog }),
        circuit,
        ...(rateLimit === undefined ? {} : { rate_limit: rateLimitUse(rateLimit, state, usedPerSecond) }),
        ...(vendor.maxInFlight === undefined
          ? {}
          : { in_flight: { calls: state?.inFlight ?? 0, max: vendor.maxInFlight } }),
        windows: summaries.map((summary, i) => toWindow(windows[i] ?? 0, summary)),
        series
      }
      return stats
    })
  )
  const answer: Report = {
    generated_at: new Date(now).toISOString(),
    collecting: collector.collecting,
    bucket_seconds: bucketMillis / 1000,
    vendors
  }
  return answer
})

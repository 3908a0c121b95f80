/**
 * What vendorflow counts and times, as Effect metrics; the server and each worker publish them in
 * Prometheus text format at `GET /metrics` (`effect/observability/PrometheusMetrics`).
 *
 * Named as Prometheus expects: counters end in `_total`, histograms time in seconds (`_seconds`),
 * and the gauges sample a level (a vendor's backlog, whether its circuit is open, its rate limit as
 * configured or learned, its calls in flight). 429s are `vendorflow_vendor_answers_total` with
 * `outcome="RateLimited"`. Every series carries the `vendor`. The engine measures in milliseconds; {@link observe} records in seconds.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, Metric, Schedule } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { JobQueue } from "./JobQueue.ts"
import { RateLimiter } from "./RateLimiter.ts"
import * as VendorCircuit from "./VendorCircuit.ts"
import { VendorRegistry } from "./VendorRegistry.ts"

// Durations are recorded in seconds, Prometheus's base unit: 1 ms to about 65 s, doubling.
const durationBoundaries = Metric.exponentialBoundaries({ start: 0.001, factor: 2, count: 18 })

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

const durations = (name: string, description: string) =>
  Metric.histogram(name, { description, boundaries: durationBoundaries })

/** @category counters */
export const jobsCreated = counter("vendorflow_jobs_created_total", "Jobs accepted by POST /jobs")

/** @category counters */
export const jobsCompleted = counter("vendorflow_jobs_completed_total", "Jobs completed with a cleaned result")

/** @category counters */
export const jobsFailed = counter("vendorflow_jobs_failed_total", "Jobs failed, by reason")

/** @category counters */
export const retries = counter("vendorflow_retries_total", "Vendor calls scheduled again after a transient error")

/** @category counters */
export const deadLetters = counter(
  "vendorflow_dead_letters_total",
  "Deliveries given up on and recorded as dead letters"
)

/** @category counters */
export const vendorAnswers = counter(
  "vendorflow_vendor_answers_total",
  "Vendor calls by outcome: ok, or the error's reason"
)

/** @category counters */
export const webhooksRejected = counter("vendorflow_webhooks_rejected_total", "Webhooks refused, by reason")

/** @category histograms */
export const queueWait = durations(
  "vendorflow_queue_wait_seconds",
  "From a job's last change (creation, retry) to a worker taking it"
)

/** @category histograms */
export const vendorCall = durations("vendorflow_vendor_call_seconds", "One vendor call, answer or error")

/** @category histograms */
export const endToEnd = durations("vendorflow_job_end_to_end_seconds", "From POST /jobs to the job's completion")

/** @category histograms */
export const rateLimitWait = durations(
  "vendorflow_rate_limit_wait_seconds",
  "Time a call waited for its vendor's rate limit"
)

/** @category gauges */
export const queueDepth = Metric.gauge("vendorflow_queue_depth", {
  description: "Jobs waiting for a vendor: queued, in flight and waiting to be retried"
})

/** @category gauges */
export const rateLimit = Metric.gauge("vendorflow_rate_limit_per_second", {
  description: "A vendor's rate limit in calls per second: configured, or learned and shared by every worker"
})

/** @category gauges */
export const callsInFlight = Metric.gauge("vendorflow_vendor_calls_in_flight", {
  description: "Calls to a vendor in flight across every worker (vendors with a cap on calls in flight)"
})

/** @category gauges */
export const circuitOpen = Metric.gauge("vendorflow_circuit_open", {
  description: "1 while a vendor's circuit is open or half-open, else 0"
})

/**
 * A series' labels.
 *
 * @category models
 */
export type Labels = Readonly<Record<string, string>>

// One handle per metric and label set, kept: a handle made by `Metric.withAttributes` works out its
// series key (the labels sorted, as JSON) on its first update and keeps it, and the worker records
// several updates per job. Label values are vendor names and failure reasons, so there are as many
// handles as series.
const handles = new WeakMap<Metric.Metric<number, unknown>, Map<string, Metric.Metric<number, unknown>>>()
const labeled = <State>(metric: Metric.Metric<number, State>, labels: Labels): Metric.Metric<number, State> => {
  let byLabels = handles.get(metric)
  if (byLabels === undefined) handles.set(metric, (byLabels = new Map()))
  let key = ""
  for (const name in labels) key += `${name}\u0000${labels[name]}\u0000`
  let handle = byLabels.get(key)
  if (handle === undefined) byLabels.set(key, (handle = Metric.withAttributes(metric, labels)))
  return handle as Metric.Metric<number, State>
}

/**
 * Adds to a counter (one by default), with labels.
 *
 * @category recording
 */
export const count = (metric: Metric.Counter<number>, labels: Labels, by = 1): Effect.Effect<void> =>
  Metric.update(labeled(metric, labels), by)

/**
 * Records a duration measured in milliseconds in a histogram, with labels, in seconds (the
 * histograms' unit).
 *
 * @category recording
 */
export const observe = (metric: Metric.Histogram<number>, labels: Labels, millis: number): Effect.Effect<void> =>
  Metric.update(labeled(metric, labels), millis / 1000)

/**
 * Sets a gauge, with labels.
 *
 * @category recording
 */
export const set = (metric: Metric.Gauge<number>, labels: Labels, value: number): Effect.Effect<void> =>
  Metric.update(labeled(metric, labels), value)

/**
 * Samples the gauges once: each vendor's backlog, whether its circuit is open and, where the
 * process has the rate limiter, its limit and calls in flight.
 *
 * @category sampling
 */
export const sample = Effect.gen(function* () {
  const queue = yield* JobQueue
  const registry = yield* VendorRegistry
  const breaker = yield* CircuitBreaker.CircuitBreaker
  const limiter = yield* Effect.serviceOption(RateLimiter)
  yield* Effect.forEach(
    registry.vendors,
    (vendor) =>
      Effect.gen(function* () {
        const labels = { vendor: vendor.name }
        const depth = yield* queue.depth(vendor.name).pipe(Effect.option)
        if (depth._tag === "Some") yield* set(queueDepth, labels, depth.value)
        const state = yield* breaker.state(VendorCircuit.key(vendor.name)).pipe(Effect.option)
        if (state._tag === "Some") yield* set(circuitOpen, labels, state.value._tag === "Closed" ? 0 : 1)
        const { maxInFlight, rateLimit: limit } = vendor
        if (limiter._tag === "None" || (limit === undefined && maxInFlight === undefined)) return
        const limits = yield* limiter.value.snapshot(vendor.name).pipe(Effect.option)
        if (limits._tag === "None") return
        if (maxInFlight !== undefined) yield* set(callsInFlight, labels, limits.value.inFlight)
        if (limit === undefined) return
        const configured = limit.limit / (Duration.toMillis(Duration.fromInputUnsafe(limit.window)) / 1000)
        const perSecond = limit.learn === true ? limits.value.learnedPerSecond : configured
        if (perSecond !== undefined && Number.isFinite(perSecond)) yield* set(rateLimit, labels, perSecond)
      }),
    { discard: true }
  )
})

/**
 * Samples the gauges every 5 seconds for the life of the layer.
 *
 * @category layers
 */
export const layerSampler = Layer.effectDiscard(
  Effect.forkScoped(sample.pipe(Effect.repeat(Schedule.spaced("5 seconds"))))
)

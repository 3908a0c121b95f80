/**
 * What vendorflow counts and times, as Effect metrics; the server and each worker publish them in
 * Prometheus text format at `GET /metrics` (`effect/observability/PrometheusMetrics`).
 *
 * Counters count events, histograms time them (milliseconds), and the two gauges sample a level
 * (a vendor's backlog, whether its circuit is open). Every series carries the `vendor`.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Metric, Schedule } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { JobQueue } from "./JobQueue.ts"
import * as VendorCircuit from "./VendorCircuit.ts"
import { VendorRegistry } from "./VendorRegistry.ts"

const latencyBoundaries = Metric.exponentialBoundaries({ start: 1, factor: 2, count: 18 })

/** @category counters */
export const jobsCreated = Metric.counter("vendorflow_jobs_created_total", {
  description: "Jobs accepted by POST /jobs",
  incremental: true
})

/** @category counters */
export const jobsCompleted = Metric.counter("vendorflow_jobs_completed_total", {
  description: "Jobs completed with a cleaned result",
  incremental: true
})

/** @category counters */
export const jobsFailed = Metric.counter("vendorflow_jobs_failed_total", {
  description: "Jobs failed, by reason",
  incremental: true
})

/** @category counters */
export const retries = Metric.counter("vendorflow_retries_total", {
  description: "Vendor calls scheduled again after a transient error",
  incremental: true
})

/** @category counters */
export const deadLetters = Metric.counter("vendorflow_dead_letters_total", {
  description: "Deliveries given up on and recorded as dead letters",
  incremental: true
})

/** @category counters */
export const vendorAnswers = Metric.counter("vendorflow_vendor_answers_total", {
  description: "Vendor calls by outcome: ok, or the error's reason",
  incremental: true
})

/** @category counters */
export const webhooksRejected = Metric.counter("vendorflow_webhooks_rejected_total", {
  description: "Webhooks refused, by reason",
  incremental: true
})

/** @category histograms */
export const queueWait = Metric.histogram("vendorflow_queue_wait_ms", {
  description: "From a job's last change (creation, retry) to a worker taking it",
  boundaries: latencyBoundaries
})

/** @category histograms */
export const vendorCall = Metric.histogram("vendorflow_vendor_call_ms", {
  description: "One vendor call, answer or error",
  boundaries: latencyBoundaries
})

/** @category histograms */
export const endToEnd = Metric.histogram("vendorflow_job_end_to_end_ms", {
  description: "From POST /jobs to the job's completion",
  boundaries: latencyBoundaries
})

/** @category histograms */
export const rateLimitWait = Metric.histogram("vendorflow_rate_limit_wait_ms", {
  description: "Time a call waited for its vendor's rate limit",
  boundaries: latencyBoundaries
})

/** @category gauges */
export const queueDepth = Metric.gauge("vendorflow_queue_depth", {
  description: "Jobs waiting for a vendor: queued, in flight and waiting to be retried"
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

// One handle per metric and label set. A handle made by `Metric.withAttributes` works out its
// series key (the labels sorted, as JSON) on its first update and keeps it; making a new handle
// for every update, as the worker records several per job, worked it out every time. Label values
// are vendor names and failure reasons, so there are as many handles as series.
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
 * Records an observation in a histogram, with labels.
 *
 * @category recording
 */
export const observe = (metric: Metric.Histogram<number>, labels: Labels, value: number): Effect.Effect<void> =>
  Metric.update(labeled(metric, labels), value)

/**
 * Sets a gauge, with labels.
 *
 * @category recording
 */
export const set = (metric: Metric.Gauge<number>, labels: Labels, value: number): Effect.Effect<void> =>
  Metric.update(labeled(metric, labels), value)

/**
 * Samples the gauges once: each vendor's backlog and whether its circuit is open.
 *
 * @category sampling
 */
export const sample = Effect.gen(function* () {
  const queue = yield* JobQueue
  const registry = yield* VendorRegistry
  const breaker = yield* CircuitBreaker.CircuitBreaker
  yield* Effect.forEach(
    registry.vendors,
    (vendor) =>
      Effect.gen(function* () {
        const labels = { vendor: vendor.name }
        const depth = yield* queue.depth(vendor.name).pipe(Effect.option)
        if (depth._tag === "Some") yield* set(queueDepth, labels, depth.value)
        const state = yield* breaker.state(VendorCircuit.key(vendor.name)).pipe(Effect.option)
        if (state._tag === "Some") yield* set(circuitOpen, labels, state.value._tag === "Closed" ? 0 : 1)
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

/**
 * The recovery sweeper: finds jobs that nothing will move on by itself and sends them round again.
 *
 * - A job stored as `pending` but never queued (the process died between the two writes), or whose
 *   queue entry was lost, is still `pending` long after it was last touched: it is queued again.
 * - A `processing` job whose worker died after its queue entry was acknowledged, or whose entry is
 *   gone, is `processing` (not awaiting a callback) long after it was last touched: it is queued
 *   again, and the engine starts a new attempt that fences the abandoned one off.
 *
 * - An async job still waiting for its vendor's callback past the adapter's deadline is handed to
 *   the engine's `expire`: asked after with `checkStatus`, resubmitted, or failed with
 *   `callback_timeout`.
 *
 * Before queuing, the sweeper touches the job with a compare-and-set (a same-status update), so when
 * several workers sweep at once only one of them queues it. A job that is in a long but healthy
 * backlog may be queued twice; the engine drops the extra delivery. So the thresholds should be
 * longer than a job normally waits: by default 10 minutes.
 *
 * @since 0.1.0
 */
import { Clock, Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import type { Job } from "./Job.ts"
import * as JobProcessor from "./JobProcessor.ts"
import { JobQueue } from "./JobQueue.ts"
import { JobStore } from "./JobStore.ts"
import { VendorRegistry } from "./VendorRegistry.ts"

/**
 * When the sweeper runs and what it counts as stuck.
 *
 * @category models
 */
export interface Options {
  /** How often to sweep; default 30 seconds. */
  readonly interval?: Duration.Input | undefined
  /** A pending job untouched this long is queued again; default 10 minutes. */
  readonly pendingAfter?: Duration.Input | undefined
  /** A processing job (not awaiting a callback) untouched this long is queued again; default 10 minutes. */
  readonly processingAfter?: Duration.Input | undefined
  /** Jobs looked at per status and sweep; default 500. */
  readonly batch?: number | undefined
}

// One job's failure is logged and the sweep goes on with the others.
const logFailure = (error: { readonly message: string }) => Effect.logWarning(`sweeper: ${error.message}`)

/**
 * Sweeps once; returns how many jobs it queued again or found overdue.
 *
 * @category sweeping
 */
export const sweepOnce = Effect.fn("Sweeper.sweepOnce")(function* (options: Options = {}) {
  const store = yield* JobStore
  const queue = yield* JobQueue
  const registry = yield* VendorRegistry
  const processor = yield* JobProcessor.JobProcessor
  const now = yield* Clock.currentTimeMillis
  const batch = options.batch ?? 500
  const before = (after: Duration.Input | undefined) =>
    new Date(now - Duration.toMillis(Duration.fromInputUnsafe(after ?? Duration.minutes(10))))

  const requeue = (job: Job) =>
    store.transition({ id: job.id, from: job.status, to: job.status, expectedVersion: job.version }).pipe(
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.succeed(0),
          onSome: (touched) =>
            Effect.as(queue.enqueue(touched.vendor, touched.id).pipe(Effect.retry(JobProcessor.requeueRetry)), 1)
        })
      ),
      Effect.catch((error) => Effect.as(logFailure(error), 0))
    )

  const pending = yield* store.listStale({
    status: "pending",
    updatedBefore: before(options.pendingAfter),
    limit: batch
  })
  const processing = yield* store.listStale({
    status: "processing",
    updatedBefore: before(options.processingAfter),
    limit: batch
  })
  const stuck = [...pending, ...processing.filter((job) => job.awaitingCallback !== true)]
  const counts = yield* Effect.forEach(stuck, requeue)
  const requeued = counts.reduce((sum, n) => sum + n, 0)
  if (requeued > 0) yield* Effect.logWarning(`sweeper: queued ${requeued} stuck job(s) again`)

  const deadlineOf = (vendor: string) =>
    Duration.toMillis(
      registry.vendors.find((v) => v.name === vendor)?.callbackDeadline ?? JobProcessor.defaultCallbackDeadline
    )
  const shortest = Math.min(
    Duration.toMillis(JobProcessor.defaultCallbackDeadline),
    ...registry.vendors.map((vendor) => deadlineOf(vendor.name))
  )
  const waiting = yield* store.listStale({
    status: "processing",
    updatedBefore: new Date(now - shortest),
    limit: batch
  })
  const overdue = waiting.filter(
    (job) => job.awaitingCallback === true && now - Date.parse(job.updatedAt) >= deadlineOf(job.vendor)
  )
  yield* Effect.forEach(overdue, (job) => Effect.catch(processor.expire(job), logFailure), { discard: true })
  if (overdue.length > 0)
    yield* Effect.logWarning(`sweeper: ${overdue.length} async job(s) past their callback deadline`)
  return requeued + overdue.length
})

/**
 * Sweeps every `interval` until interrupted; an outage is logged and the next sweep tries again.
 *
 * @category sweeping
 */
export const run = (options: Options = {}) =>
  sweepOnce(options).pipe(
    Effect.catch((error) => Effect.as(logFailure(error), 0)),
    Effect.repeat(Schedule.spaced(options.interval ?? Duration.seconds(30))),
    Effect.asVoid
  )

/**
 * The sweeper's options from `SWEEP_INTERVAL`, `SWEEP_PENDING_AFTER` and `SWEEP_PROCESSING_AFTER`.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  interval: Config.Duration("SWEEP_INTERVAL").pipe(Config.withDefault(Duration.seconds(30))),
  pendingAfter: Config.Duration("SWEEP_PENDING_AFTER").pipe(Config.withDefault(Duration.minutes(10))),
  processingAfter: Config.Duration("SWEEP_PROCESSING_AFTER").pipe(Config.withDefault(Duration.minutes(10)))
})

/**
 * The sweeper, forked into the layer's scope.
 *
 * @category layers
 */
export const layer = (options: Options = {}) => Layer.effectDiscard(Effect.forkScoped(run(options)))

/**
 * The sweeper configured from the environment (see {@link config}).
 *
 * @category layers
 */
export const layerConfig = Layer.unwrap(Effect.map(config, layer))

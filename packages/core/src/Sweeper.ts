/**
 * The recovery sweeper: moves on the jobs that nothing else will. It lists them through the store's
 * overdue index (`JobStore.listOverdue`), most overdue first; every unfinished job carries
 * `overdueAt`, set by whatever last moved it:
 *
 * - pending: when it is due in its queue (now, or its retry's time) plus `SWEEP_PENDING_AFTER`.
 *   Past it, the job may never have reached the queue (its process died between the two writes, or
 *   the queue write failed) or its entry was lost: it is queued again.
 * - processing, held by an attempt: the attempt's lease, which its worker renews while it waits and
 *   calls. Past it, the worker died or hung: the job goes back to pending and is queued again; the
 *   engine's next claim fences the abandoned attempt off.
 * - processing, awaiting a callback: the callback deadline. Past it, the job goes to the engine's
 *   `expire`: asked after with `checkStatus`, resubmitted, or failed with `callback_timeout`.
 *
 * Each move is a compare-and-set that also moves `overdueAt` on, so when several workers sweep at
 * once only one of them queues a job, and a job once moved leaves the list. Only what is overdue is
 * listed, so no number of healthy jobs (a deep backlog, async jobs inside their deadline) can hide
 * a stuck one. A job queued again while it still waits in a backlog older than
 * `SWEEP_PENDING_AFTER` is delivered twice: the engine starts one attempt and lets the other
 * delivery go (it finds the job under a live lease, or finished), so it costs a read, not a call.
 *
 * @since 0.1.0
 */
import { Clock, Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import * as Job from "./Job.ts"
import * as JobProcessor from "./JobProcessor.ts"
import { JobStore } from "./JobStore.ts"

/**
 * When the sweeper runs and what it counts as stuck.
 *
 * @category models
 */
export interface Options {
  /** How often to sweep; default 30 seconds. */
  readonly interval?: Duration.Input | undefined
  /** How long a job the sweeper queues again may wait in its queue before it is overdue again; default 10 minutes. */
  readonly pendingAfter?: Duration.Input | undefined
  /** Overdue jobs moved per sweep at most; default 500. */
  readonly batch?: number | undefined
}

// One job's failure is logged and the sweep goes on with the others.
const logFailure = (error: { readonly message: string }) => Effect.logWarning(`sweeper: ${error.message}`)

/**
 * Sweeps once; returns how many overdue jobs it moved on (queued again, or handed to `expire`).
 *
 * @category sweeping
 */
export const sweepOnce = Effect.fn("Sweeper.sweepOnce")(function* (options: Options = {}) {
  const store = yield* JobStore
  const processor = yield* JobProcessor.JobProcessor
  const now = yield* Clock.currentTimeMillis
  const overdue = yield* store.listOverdue({ before: new Date(now), limit: options.batch ?? 500 })
  const waiting = overdue.filter((job) => job.status === "processing" && job.awaitingCallback === true)
  const stuck = overdue.filter((job) => !waiting.includes(job))
  const requeued = (yield* Effect.forEach(stuck, (job) => requeue(store, job, now, options.pendingAfter))).reduce(
    (sum, n) => sum + n,
    0
  )
  if (requeued > 0) {
    const abandoned = stuck.filter((job) => job.status === "processing").length
    yield* Effect.logWarning(
      `sweeper: queued ${requeued} overdue job(s) again (${abandoned} of ${stuck.length} abandoned by their worker)`
    )
  }
  yield* Effect.forEach(waiting, (job) => Effect.catch(processor.expire(job), logFailure), { discard: true })
  if (waiting.length > 0) {
    yield* Effect.logWarning(`sweeper: ${waiting.length} async job(s) past their callback deadline`)
  }
  return requeued + waiting.length
})

// Back to pending (a pending job stays so), overdue `pendingAfter` after `now`, then queued: 1 when
// this sweep moved the job, 0 when something else moved it first or the move failed.
const requeue = (store: JobStore["Service"], job: Job.Job, now: number, pendingAfter: Duration.Input | undefined) =>
  store
    .transition({
      id: job.id,
      from: job.status,
      to: "pending",
      expectedVersion: job.version,
      set: { overdueAt: Job.pendingOverdueAt(now, pendingAfter) }
    })
    .pipe(
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.succeed(0),
          onSome: (moved) => Effect.as(JobProcessor.enqueuePending(moved), 1)
        })
      ),
      Effect.catch((error) => Effect.as(logFailure(error), 0))
    )

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
 * The sweeper's options from `SWEEP_INTERVAL` and `SWEEP_PENDING_AFTER`.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  interval: Config.Duration("SWEEP_INTERVAL").pipe(Config.withDefault(Duration.seconds(30))),
  pendingAfter: Job.pendingAfterConfig
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

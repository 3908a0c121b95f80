/**
 * How an attempt of the engine (`JobProcessor`) ends, each a write of the job's new state: complete,
 * awaiting its vendor's callback, back to pending (a retry, or handed back before its call), or
 * failed and dead-lettered. Every write is a compare-and-set at the version the attempt last left;
 * only an attempt that won it acts on it (queues the job again, dead-letters, counts), and one that
 * lost just lets its delivery go: the attempt that took the job over has its own.
 */
import { Clock, Duration, Effect, Option, Schedule, type Schema } from "effect"
import { isFinished, type Job, type JobSummary, pendingOverdueAt } from "../Job.ts"
import type { Delivery, JobQueue } from "../JobQueue.ts"
import { type JobStore, JobStoreError, type Patch } from "../JobStore.ts"
import * as Metrics from "../Metrics.ts"
import type { Collector } from "../Stats.ts"
import { VendorError } from "../Vendor.ts"
import { type CompletionServices, completeJob, failureOf } from "./completion.ts"
import type { Attempt, Lease } from "./lease.ts"

/** What writing an outcome uses: the engine's services and settings, read once. */
export interface Outcomes {
  readonly store: JobStore["Service"]
  readonly queue: JobQueue["Service"]
  readonly completion: CompletionServices
  /** The dashboard's windowed stats (`Stats.ts`); records nothing unless the process provides a collector. */
  readonly stats: Collector
  readonly outcomeRetry: OutcomeRetry
  /** How long a job made pending again may wait in its queue before it is overdue. */
  readonly pendingAfter: Duration.Input | undefined
}

/** A sync vendor's answer: cleaned and stored. */
export const complete = (
  outcomes: Pick<Outcomes, "completion" | "outcomeRetry">,
  attempt: Attempt,
  data: Schema.Json
) =>
  persisted(
    outcomes.outcomeRetry,
    completeJob(outcomes.completion, {
      job: attempt.job,
      vendor: attempt.vendor,
      data,
      expectedVersion: attempt.job.version
    })
  )

/**
 * An async vendor accepted the job: it awaits the callback for `deadlineMillis`. The callback may
 * have completed the job already; then the version moved and this is a no-op.
 */
export const awaitCallback = (
  outcomes: Pick<Outcomes, "store" | "outcomeRetry">,
  attempt: Attempt,
  deadlineMillis: number
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    persisted(
      outcomes.outcomeRetry,
      outcomes.store.transition({
        id: attempt.job.id,
        from: "processing",
        to: "processing",
        expectedVersion: attempt.job.version,
        set: { awaitingCallback: true, overdueAt: new Date(now + deadlineMillis).toISOString() }
      })
    )
  )

/**
 * A transient error with attempts left: back to pending with the error shown, delivered again
 * after `delayMillis` (the vendor's Retry-After, or a jittered backoff).
 */
export const retry = Effect.fnUntraced(function* (
  outcomes: Pick<Outcomes, "store" | "queue" | "completion" | "outcomeRetry" | "pendingAfter">,
  attempt: Attempt,
  error: VendorError,
  delayMillis: number
) {
  const due = (yield* Clock.currentTimeMillis) + delayMillis
  const parked = yield* backToPending(outcomes, attempt.job, due, {
    error: yield* failureOf(outcomes.completion.cleaner, error),
    nextRetryAt: new Date(due).toISOString()
  })
  yield* whenWon(outcomes.queue, attempt, parked, () =>
    Effect.andThen(
      outcomes.queue.retryLater(attempt.delivery, delayMillis),
      Metrics.count(Metrics.retries, { vendor: attempt.vendor.name })
    )
  )
})

/**
 * Fails a job (a compare-and-set at the version it was read or last written at) and, if that
 * won, dead-letters it and counts the failure. The delivery it came in, if any, is let go.
 */
export const fail = Effect.fnUntraced(function* (
  outcomes: Pick<Outcomes, "store" | "queue" | "completion" | "stats" | "outcomeRetry">,
  options: {
    readonly job: JobSummary
    readonly error: { readonly reason: string; readonly message: string }
    readonly delivery?: Delivery | undefined
  }
) {
  const { job, error, delivery } = options
  // A vendor's error text may quote its body: cleaned as its data is before it is kept.
  const failure = error instanceof VendorError ? yield* failureOf(outcomes.completion.cleaner, error) : error
  const failed = yield* persisted(
    outcomes.outcomeRetry,
    outcomes.store.transition({
      id: job.id,
      from: job.status,
      to: "failed",
      expectedVersion: job.version,
      set: { error: { reason: failure.reason, message: failure.message } },
      unset: ["awaitingCallback", "nextRetryAt"]
    })
  )
  if (Option.isNone(failed)) return delivery === undefined ? undefined : yield* outcomes.queue.ack(delivery)
  const deadLetter = `${failure.reason}: ${failure.message}`
  yield* outcomes.queue.deadLetter(delivery ?? { vendor: job.vendor, jobId: job.id }, deadLetter)
  yield* Metrics.count(Metrics.jobsFailed, { vendor: job.vendor, reason: failure.reason })
  yield* Metrics.count(Metrics.deadLetters, { vendor: job.vendor })
  yield* outcomes.stats.recordFailed(job.vendor, failure.reason)
  yield* Effect.logWarning(`job failed: ${deadLetter}`)
})

/**
 * A store that refuses a delivery's read or write for good (a result too large for it, a
 * validator, missing privileges) would refuse it on every delivery, and each delivery would call
 * the vendor again: the job fails with the store's reason where the store lets that be written,
 * and the delivery goes to the dead letters either way.
 */
export const failRejected = Effect.fnUntraced(function* (
  outcomes: Pick<Outcomes, "store" | "queue" | "stats">,
  delivery: Delivery,
  error: JobStoreError
) {
  const failure = { reason: "StoreRejected", message: error.message }
  yield* Effect.logError(`job failed: the store refused it: ${error.message}`)
  yield* outcomes.store.getMany([delivery.jobId]).pipe(
    Effect.flatMap(([found]) =>
      found !== undefined && Option.isSome(found) && !isFinished(found.value.status)
        ? outcomes.store.transition({
            id: found.value.id,
            from: found.value.status,
            to: "failed",
            expectedVersion: found.value.version,
            set: { error: failure },
            unset: ["awaitingCallback", "nextRetryAt"]
          })
        : Effect.succeedNone
    ),
    Effect.catch((cause: JobStoreError) => Effect.logWarning(`the job's failure could not be stored: ${cause.message}`))
  )
  yield* outcomes.queue.deadLetter(delivery, `${failure.reason}: ${failure.message}`)
  yield* Metrics.count(Metrics.jobsFailed, { vendor: delivery.vendor, reason: failure.reason })
  yield* Metrics.count(Metrics.deadLetters, { vendor: delivery.vendor })
  yield* outcomes.stats.recordFailed(delivery.vendor, failure.reason)
})

/**
 * Returns a claimed job to pending and delivers it again after `delayMillis`. An attempt whose
 * call never began is undone (its count and its delivery's): a job held back by an open circuit
 * through many openings must not reach its attempt or delivery limit while its record says pending.
 */
export const handBack = (
  outcomes: Pick<Outcomes, "store" | "queue" | "outcomeRetry" | "pendingAfter">,
  attempt: Attempt,
  delayMillis: number
) =>
  Effect.gen(function* () {
    const { job, delivery } = attempt
    const undo = attempt.called ? 0 : 1
    const due = (yield* Clock.currentTimeMillis) + delayMillis
    const back = yield* backToPending(outcomes, job, due, { attempts: job.attempts - undo })
    yield* whenWon(outcomes.queue, attempt, back, () =>
      outcomes.queue.retryLater({ ...delivery, deliveryCount: Math.max(0, delivery.deliveryCount - undo) }, delayMillis)
    )
  })

// Moves the attempt's job back to pending, to be delivered again at `due`.
const backToPending = (
  outcomes: Pick<Outcomes, "store" | "outcomeRetry" | "pendingAfter">,
  job: Job,
  due: number,
  set: Patch
) =>
  persisted(
    outcomes.outcomeRetry,
    outcomes.store.transition({
      id: job.id,
      from: "processing",
      to: "pending",
      expectedVersion: job.version,
      set: { ...set, overdueAt: pendingOverdueAt(due, outcomes.pendingAfter) }
    })
  )

// Acts only on the outcome of a compare-and-set this attempt won; a fenced attempt just lets
// its delivery go.
const whenWon = <A, E, R>(
  queue: JobQueue["Service"],
  attempt: Attempt,
  written: Option.Option<Job>,
  then: (job: Job) => Effect.Effect<A, E, R>
) => (Option.isSome(written) ? Effect.asVoid(then(written.value)) : queue.ack(attempt.delivery))

/**
 * How a write after the call is tried again while the store is away: for as long as a lease
 * lasts, since a call whose outcome a store blip threw away would be made again by whoever takes
 * the job over. The compare-and-set keeps a late write from undoing such a takeover.
 */
export const outcomeRetryFor = (lease: Lease) =>
  Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("1 second")]).pipe(
    Schedule.upTo({ duration: Duration.millis(lease.millis) })
  )

/** The schedule of {@link outcomeRetryFor}. */
export type OutcomeRetry = ReturnType<typeof outcomeRetryFor>

const persisted = <A, E, R>(schedule: OutcomeRetry, write: Effect.Effect<A, E, R>) =>
  Effect.retry(write, {
    schedule,
    while: (error) => error instanceof JobStoreError && error.isRetryable
  })

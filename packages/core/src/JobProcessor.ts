/**
 * The job engine: takes one delivery from the queue through to a stored outcome.
 *
 * pending → processing → wait for the vendor's rate limit → call the adapter → clean → complete
 * (sync), or mark the job as awaiting the vendor's callback (async); a vendor error fails the job
 * with its reason and dead-letters the delivery. The delivery is acknowledged only after the job's
 * new state is stored. Plain orchestration over the services: no Redis, Mongo or HTTP here.
 *
 * One live attempt per job. Claiming a job (a compare-and-set that bumps its version) leases it to
 * the attempt until `overdueAt`; while the attempt waits on the circuit, the rate limit and the
 * call, it renews the lease and its delivery (`JobQueue.renew`) every third of the queue's
 * visibility timeout. A delivery of a job whose lease is live starts nothing and is acknowledged:
 * the attempt that holds the job finishes it, or stops renewing and is taken over. Every later
 * write of an attempt is a compare-and-set at the version its last write left, and only an attempt
 * that won it calls, retries, dead-letters, counts or hands back; one that lost just lets its
 * delivery go.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Config,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Random,
  Redacted,
  Request,
  RequestResolver,
  Schedule
} from "effect"
import { CircuitBreaker } from "effect/persistence"
import { Cleaner } from "./Cleaner.ts"
import { completeJob, failureOf } from "./internal/completion.ts"
import { traceIdOf, withSpanUnder } from "./internal/traceContext.ts"
import { isFinished, type Job, type JobId, type JobSummary, pendingAfterConfig, pendingOverdueAt } from "./Job.ts"
import { type Delivery, JobQueue, type JobQueueError } from "./JobQueue.ts"
import { JobStore, JobStoreError, type Patch } from "./JobStore.ts"
import * as Port from "./Port.ts"
import { RateLimiter } from "./RateLimiter.ts"
import * as Stats from "./Stats.ts"
import * as Metrics from "./Metrics.ts"
import { type Vendor, VendorError, type VendorRequest } from "./Vendor.ts"
import * as VendorCircuit from "./VendorCircuit.ts"
import { VendorRegistry } from "./VendorRegistry.ts"
import * as WebhookSignature from "./WebhookSignature.ts"

/**
 * The engine's settings.
 *
 * @category models
 */
export interface Options {
  /** Our public base URL; async vendors post to `<base>/vendor-webhook/<vendor>`. */
  readonly webhookBaseUrl: string
  /** How long to wait before handing a job back when the rate-limit store is unreachable. */
  readonly retryDelayMillis?: number | undefined
  /** How long a job made pending again may wait in its queue before it is overdue; default 10 minutes. */
  readonly pendingAfter?: Duration.Input | undefined
}

/**
 * How long an accepted async job waits for its callback when the adapter names no deadline.
 *
 * @category constants
 */
export const defaultCallbackDeadline = Duration.minutes(5)

/**
 * Attempts per job when the adapter names none.
 *
 * @category constants
 */
export const defaultMaxAttempts = 5

/**
 * The backoff before retry number `attempt` (1-based): "full jitter", a uniform draw from zero to
 * `min(60 s, 1 s × 2^(attempt - 1))`, so that jobs failed together do not retry together.
 * Retries go back through the queue (they must outlive the worker), so the delay is computed per
 * attempt rather than by a `Schedule` driving an in-process loop.
 *
 * @category retries
 */
export const backoff = (attempt: number): Effect.Effect<number> =>
  Random.nextIntBetween(0, Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1)))

/**
 * How a queue write that nothing else would repeat soon is tried again: exponential from 100 ms, at
 * most 5 s apart, for up to a minute. A job the store already holds as `pending` and that never
 * reached the queue otherwise waits for the sweeper's `SWEEP_PENDING_AFTER` (10 minutes).
 *
 * @category retries
 */
export const requeueRetry = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")]).pipe(
  Schedule.upTo({ duration: Duration.minutes(1) })
)

/**
 * Queues a job just made pending (as that write left it), retrying as {@link requeueRetry} says.
 * If the queue stays away, the job is made overdue at once (unless something moved it meanwhile),
 * so the next sweep queues it, rather than the one after `SWEEP_PENDING_AFTER`.
 *
 * @category retries
 */
export const enqueuePending = Effect.fnUntraced(function* (job: Job) {
  const queue = yield* JobQueue
  const store = yield* JobStore
  yield* queue.enqueue(job.vendor, job.id).pipe(
    Effect.retry(requeueRetry),
    Effect.tapError(() =>
      Effect.flatMap(Clock.currentTimeMillis, (failedAt) =>
        store.transition({
          id: job.id,
          from: "pending",
          to: "pending",
          expectedVersion: job.version,
          set: { overdueAt: new Date(failedAt).toISOString() }
        })
      )
    )
  )
})

// A delivery's read of its job, batched with the reads of the deliveries started with it.
interface ReadJob extends Request.Request<Option.Option<JobSummary>, JobStoreError> {
  readonly id: JobId
}
const ReadJob = Request.of<ReadJob>()

/**
 * The job processor service.
 *
 * @category services
 */
export class JobProcessor extends Context.Service<
  JobProcessor,
  {
    /** Runs one delivery to a stored outcome. Fails only when the store or queue is unreachable. */
    readonly process: (delivery: Delivery) => Effect.Effect<void, JobStoreError | JobQueueError>
    /**
     * Deals with an async job whose callback is overdue: asks the vendor (`checkStatus`) where it
     * can, else resubmits it under the same idempotency key or fails it with `callback_timeout`, as
     * the adapter's `onCallbackTimeout` says. The sweeper calls it.
     */
    readonly expire: (job: Job) => Effect.Effect<void, JobStoreError | JobQueueError>
  }
>()("@vendorflow/core/JobProcessor") {}

// The attempt lost its job before its call began: another attempt took the job over, or it was
// finished meanwhile. Raised inside the circuit, which ignores it.
class Fenced extends Data.TaggedError("Fenced") {}

// What a worker knows of an attempt it started. `job` is the record as the attempt last stored it:
// its version is the one the attempt's next compare-and-set names. `fenced`: the attempt lost the
// job, and may no longer call, retry, dead-letter, count or hand back. `called`: its vendor call
// began, so the attempt is spent even if it is cut short.
interface Attempt {
  readonly delivery: Delivery
  readonly vendor: Vendor
  job: Job
  fenced: boolean
  called: boolean
}

/**
 * The processor over the services in context.
 *
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.gen(function* () {
    const store = yield* JobStore
    const queue = yield* JobQueue
    const registry = yield* VendorRegistry
    const limiter = yield* RateLimiter
    const breaker = yield* CircuitBreaker.CircuitBreaker
    // The dashboard's windowed stats (`Stats.ts`); records nothing unless the process provides a collector.
    const stats = yield* Stats.Stats
    const completion = { cleaner: yield* Cleaner, store, stats }
    const services = Context.make(JobQueue, queue).pipe(Context.add(JobStore, store))
    const webhookBase = options.webhookBaseUrl.replace(/\/+$/, "")
    const retryDelay = options.retryDelayMillis ?? 1000
    // The secret the server checks callback tokens with, from the one setting both read.
    const callbackSecret = Redacted.value(yield* WebhookSignature.callbackSecret)
    // An attempt holds its job by a lease in the store as long as the queue keeps a delivery with
    // its taker, and renews both a third of the way through: only an attempt that stopped renewing
    // (its worker died or hung) loses them.
    const leaseMillis = Math.max(3, Duration.toMillis(queue.visibilityTimeout))
    const renewEvery = leaseMillis / 3
    const leaseFrom = (now: number) => new Date(now + leaseMillis).toISOString()
    const overdueFrom = (due: number) => pendingOverdueAt(due, options.pendingAfter)
    // What the adapter gets for this attempt of this job. The webhook URL is where the vendor posts
    // its callback: the token in it lets only this job's current run be completed through it. It is
    // made when read, since only async vendors read it and it costs an HMAC and a URL parse.
    const requestFor = (vendor: Vendor, job: Job): VendorRequest => ({
      jobId: job.id,
      payload: job.payload,
      attempt: job.attempts,
      get webhookUrl() {
        return WebhookSignature.withCallbackToken(
          `${webhookBase}/vendor-webhook/${encodeURIComponent(vendor.name)}`,
          WebhookSignature.callbackToken({ secret: callbackSecret, jobId: job.id, run: job.run })
        )
      }
    })
    const maxAttemptsOf = (vendor: Vendor) => vendor.maxAttempts ?? defaultMaxAttempts

    // A write after the call, tried again while the store is away, for as long as a lease lasts:
    // a call whose outcome a store blip threw away would be made again by whoever takes the job
    // over. The compare-and-set keeps a late write from undoing such a takeover.
    const outcomeRetry = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("1 second")]).pipe(
      Schedule.upTo({ duration: Duration.millis(leaseMillis) })
    )
    const persisted = <A, E, R>(write: Effect.Effect<A, E, R>) =>
      Effect.retry(write, {
        schedule: outcomeRetry,
        while: (error) => error instanceof JobStoreError && error.isRetryable
      })

    // Extends the attempt's lease by a compare-and-set at its version, which fails (fencing the
    // attempt) once another attempt has taken the job or it finished. Uninterruptible, so stopping
    // the renewals waits for one in flight and the attempt's next write names the version it left.
    const renewLease = (attempt: Attempt) =>
      Effect.gen(function* () {
        const renewed = yield* store.transition({
          id: attempt.job.id,
          from: "processing",
          to: "processing",
          expectedVersion: attempt.job.version,
          set: { overdueAt: leaseFrom(yield* Clock.currentTimeMillis) }
        })
        if (Option.isSome(renewed)) attempt.job = renewed.value
        else attempt.fenced = true
      }).pipe(Effect.uninterruptible)

    const logRenewal = (what: string) => (error: { readonly message: string }) =>
      Effect.logWarning(`renewing the ${what} failed; the next renewal tries again: ${error.message}`)

    // Renews the lease and the delivery every `renewEvery` until the attempt is fenced.
    const keepLease = (attempt: Attempt) =>
      Effect.all(
        [
          renewLease(attempt).pipe(Effect.catch(logRenewal("job's lease"))),
          queue.renew(attempt.delivery).pipe(Effect.catch(logRenewal("delivery")))
        ],
        { concurrency: 2, discard: true }
      ).pipe(Effect.delay(Duration.millis(renewEvery)), Effect.repeat({ while: () => !attempt.fenced }))

    // Runs `effect` (the waits and the call) while the attempt's lease is kept; ends the renewals
    // before the attempt writes its outcome.
    const whileLeased = <A, E, R>(attempt: Attempt, effect: Effect.Effect<A, E, R>) =>
      Effect.scoped(Effect.andThen(Effect.forkScoped(keepLease(attempt)), effect))

    // Right before the call: the attempt still holds its job, with a lease that outlasts the next
    // renewal (renewed now if the renewals fell behind, as in a store outage).
    const startCall = (attempt: Attempt) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (!attempt.fenced && Date.parse(attempt.job.overdueAt ?? "") - now <= renewEvery) {
          yield* renewLease(attempt)
        }
        if (attempt.fenced) return yield* new Fenced()
        attempt.called = true
      })

    // Acts only on the outcome of a compare-and-set this attempt won; a fenced attempt just lets
    // its delivery go (the attempt that took the job over has its own).
    const whenWon = <A, E, R>(
      attempt: Attempt,
      written: Option.Option<Job>,
      then: (job: Job) => Effect.Effect<A, E, R>
    ) => (Option.isSome(written) ? Effect.asVoid(then(written.value)) : queue.ack(attempt.delivery))

    // Fails a job (a compare-and-set at the version it was read or last written at) and, if that
    // won, dead-letters it and counts the failure. The delivery it came in, if any, is let go.
    const failJob = Effect.fnUntraced(function* (options: {
      readonly job: JobSummary
      readonly error: { readonly reason: string; readonly message: string }
      readonly delivery?: Delivery | undefined
    }) {
      const { job, error, delivery } = options
      // A vendor's error text may quote its body: cleaned as its data is before it is kept.
      const failure = error instanceof VendorError ? yield* failureOf(completion.cleaner, error) : error
      const failed = yield* persisted(
        store.transition({
          id: job.id,
          from: job.status,
          to: "failed",
          expectedVersion: job.version,
          set: { error: { reason: failure.reason, message: failure.message } },
          unset: ["awaitingCallback", "nextRetryAt"]
        })
      )
      if (Option.isNone(failed)) return delivery === undefined ? undefined : yield* queue.ack(delivery)
      const deadLetter = `${failure.reason}: ${failure.message}`
      yield* queue.deadLetter(delivery ?? { vendor: job.vendor, jobId: job.id }, deadLetter)
      yield* Metrics.count(Metrics.jobsFailed, { vendor: job.vendor, reason: failure.reason })
      yield* Metrics.count(Metrics.deadLetters, { vendor: job.vendor })
      yield* stats.recordFailed(job.vendor, failure.reason)
      yield* Effect.logWarning(`job failed: ${deadLetter}`)
    })

    // Moves the attempt's job back to pending, to be delivered again at `due`.
    const backToPending = (job: Job, due: number, set: Patch) =>
      persisted(
        store.transition({
          id: job.id,
          from: "processing",
          to: "pending",
          expectedVersion: job.version,
          set: { ...set, overdueAt: overdueFrom(due) }
        })
      )

    // A transient error with attempts left: back to pending with the error shown, due again after
    // the vendor's Retry-After or a jittered backoff.
    const retryOrFail = (attempt: Attempt, error: VendorError) =>
      Effect.gen(function* () {
        const { job, vendor, delivery } = attempt
        if (!error.isRetryable || job.attempts >= maxAttemptsOf(vendor)) return yield* failJob({ job, error, delivery })
        const delay = error.retryAfterMillis ?? (yield* backoff(job.attempts))
        const due = (yield* Clock.currentTimeMillis) + delay
        const parked = yield* backToPending(job, due, {
          error: yield* failureOf(completion.cleaner, error),
          nextRetryAt: new Date(due).toISOString()
        })
        yield* whenWon(attempt, parked, () =>
          Effect.andThen(queue.retryLater(delivery, delay), Metrics.count(Metrics.retries, { vendor: vendor.name }))
        )
      })

    // Returns a claimed job to pending and delivers it again later. An attempt whose call never
    // began is undone (its count and its delivery's): a job held back by an open circuit through
    // many openings must not reach its attempt or delivery limit while its record says pending.
    const handBack = (attempt: Attempt, delayMillis: number) =>
      Effect.gen(function* () {
        const { job, delivery } = attempt
        const undo = attempt.called ? 0 : 1
        const due = (yield* Clock.currentTimeMillis) + delayMillis
        const back = yield* backToPending(job, due, { attempts: job.attempts - undo })
        yield* whenWon(attempt, back, () =>
          queue.retryLater({ ...delivery, deliveryCount: Math.max(0, delivery.deliveryCount - undo) }, delayMillis)
        )
      })

    // Waits for the vendor's rate-limit slot, if it has a limit.
    const pace = (vendor: Vendor) =>
      vendor.rateLimit === undefined
        ? Effect.void
        : Effect.flatMap(limiter.wait(vendor.name, vendor.rateLimit), (waited) =>
            Metrics.observe(Metrics.rateLimitWait, { vendor: vendor.name }, Duration.toMillis(waited))
          )

    // The circuit's admission, the rate-limit wait and the call, under the attempt's lease.
    const callVendor = (attempt: Attempt) => {
      const { vendor } = attempt
      // The circuit admits the call first, then the call waits for its rate-limit slot: nothing
      // (such as the breaker's round trip to a shared store) comes between the slot and the call,
      // which would bunch calls that left the limiter evenly paced; and a call the circuit turns
      // away spends no slot.
      const call = pace(vendor).pipe(
        Effect.andThen(startCall(attempt)),
        Effect.andThen(Clock.currentTimeMillis),
        Effect.flatMap((callStarted) =>
          vendor.call(requestFor(vendor, attempt.job)).pipe(
            // A bug in the adapter fails this job (not the worker), and is not retried.
            Effect.catchDefect((defect) =>
              Effect.fail(
                new VendorError({
                  vendor: vendor.name,
                  reason: "InvalidResponse",
                  message: `the ${vendor.name} adapter crashed: ${String(defect)}`
                })
              )
            ),
            Effect.ensuring(
              Effect.flatMap(Clock.currentTimeMillis, (now) =>
                Metrics.observe(Metrics.vendorCall, { vendor: vendor.name }, now - callStarted)
              )
            ),
            Effect.onExit((exit) => Stats.recordCallExit(stats, { vendor: vendor.name, startedAt: callStarted }, exit))
          )
        )
      )
      return whileLeased(
        attempt,
        breaker.execute(call, { key: VendorCircuit.key(vendor.name), classify: VendorCircuit.classify })
      ).pipe(
        Effect.tap(() => Metrics.count(Metrics.vendorAnswers, { vendor: vendor.name, outcome: "ok" })),
        Effect.tapError((error) =>
          error._tag === "VendorError"
            ? Metrics.count(Metrics.vendorAnswers, { vendor: vendor.name, outcome: error.reason })
            : Effect.void
        )
      )
    }

    // One attempt from its call to its stored outcome and the delivery's acknowledgement.
    const runAttempt = (attempt: Attempt) =>
      Effect.gen(function* () {
        const outcome = yield* callVendor(attempt)
        // Read after the call: the lease's renewals moved the version on.
        const { job, vendor } = attempt
        if (outcome._tag === "Completed") {
          yield* persisted(completeJob(completion, { job, vendor, data: outcome.result, expectedVersion: job.version }))
        } else {
          // The callback may have completed the job already; then the version moved and this is a no-op.
          const now = yield* Clock.currentTimeMillis
          const deadline = Duration.toMillis(vendor.callbackDeadline ?? defaultCallbackDeadline)
          yield* persisted(
            store.transition({
              id: job.id,
              from: "processing",
              to: "processing",
              expectedVersion: job.version,
              set: { awaitingCallback: true, overdueAt: new Date(now + deadline).toISOString() }
            })
          )
        }
        yield* queue.ack(attempt.delivery)
      }).pipe(
        Effect.catchTags({
          VendorError: (error) => retryOrFail(attempt, error),
          // The vendor's circuit is open (or another worker is probing it): the job waits, no attempt spent.
          CircuitBreakerError: (error) =>
            handBack(
              attempt,
              error.reason._tag === "CircuitOpen" ? Duration.toMillis(error.reason.retryAfter) : retryDelay
            ),
          // The rate-limit store is unreachable: no call without a slot; the job waits, no attempt spent.
          RateLimiterError: (error) =>
            Effect.logWarning("rate-limit store unreachable; handing the job back", error).pipe(
              Effect.andThen(handBack(attempt, retryDelay))
            ),
          Fenced: () => queue.ack(attempt.delivery)
        })
      )

    // Whether a delivery may start an attempt on `job` at `now`: a pending job, or a processing one
    // whose attempt stopped renewing its lease (its worker died). Not a finished job, one awaiting
    // its vendor's callback, or one whose live attempt is held elsewhere: a second attempt would
    // call the vendor again.
    const claimable = (job: JobSummary, now: number) =>
      job.status === "pending" ||
      (job.status === "processing" &&
        job.awaitingCallback !== true &&
        (job.overdueAt === undefined || Date.parse(job.overdueAt) <= now))

    // A new attempt. Bumping the version fences the abandoned attempt it may take over off.
    const claim = (job: JobSummary, now: number) =>
      store.transition({
        id: job.id,
        from: job.status,
        to: "processing",
        expectedVersion: job.version,
        set: { attempts: job.attempts + 1, overdueAt: leaseFrom(now) },
        unset: ["nextRetryAt"]
      })

    // The reads of deliveries started together (the consumer starts a take's deliveries in one
    // turn) go to the store as one `getMany`: Effect's request batching collects them.
    const reads = RequestResolver.make<ReadJob>((entries) =>
      Effect.map(store.getMany(entries.map((entry) => entry.request.id)), (found) => {
        entries.forEach((entry, i) => entry.completeUnsafe(Exit.succeed(found[i] ?? Option.none())))
      })
    )

    // A store that refuses a delivery's read or write for good (a result too large for it, a
    // validator, missing privileges) would refuse it on every delivery, and each delivery would call
    // the vendor again: the job fails with the store's reason where the store lets that be written,
    // and the delivery goes to the dead letters either way.
    const failRejected = Effect.fnUntraced(function* (delivery: Delivery, error: JobStoreError) {
      const failure = { reason: "StoreRejected", message: error.message }
      yield* Effect.logError(`job failed: the store refused it: ${error.message}`)
      yield* store.getMany([delivery.jobId]).pipe(
        Effect.flatMap(([found]) =>
          found !== undefined && Option.isSome(found) && !isFinished(found.value.status)
            ? store.transition({
                id: found.value.id,
                from: found.value.status,
                to: "failed",
                expectedVersion: found.value.version,
                set: { error: failure },
                unset: ["awaitingCallback", "nextRetryAt"]
              })
            : Effect.succeedNone
        ),
        Effect.catch((cause: JobStoreError) =>
          Effect.logWarning(`the job's failure could not be stored: ${cause.message}`)
        )
      )
      yield* queue.deadLetter(delivery, `${failure.reason}: ${failure.message}`)
      yield* Metrics.count(Metrics.jobsFailed, { vendor: delivery.vendor, reason: failure.reason })
      yield* Metrics.count(Metrics.deadLetters, { vendor: delivery.vendor })
      yield* stats.recordFailed(delivery.vendor, failure.reason)
    })

    // One delivery, in the job's own trace (the span that submitted it, `Job.traceparent`).
    const process = (delivery: Delivery) =>
      Effect.flatMap(Effect.request(ReadJob({ id: delivery.jobId }), reads), (found) => {
        const traceparent = Option.isSome(found) ? found.value.traceparent : undefined
        return processFound(delivery, found).pipe(
          withSpanUnder("JobProcessor.process", traceparent, {
            "job.id": delivery.jobId,
            "job.vendor": delivery.vendor
          }),
          Effect.annotateLogs(traceparent === undefined ? {} : { trace_id: traceIdOf(traceparent) })
        )
      }).pipe(
        Effect.catchIf(
          (error): error is JobStoreError => error._tag === "JobStoreError" && error.reason === "Rejected",
          (error) => failRejected(delivery, error)
        )
      )

    const processFound = Effect.fnUntraced(function* (delivery: Delivery, found: Option.Option<JobSummary>) {
      const now = yield* Clock.currentTimeMillis
      // Unknown, finished, waiting for its vendor's callback, or held by a live attempt elsewhere:
      // nothing for this delivery to do.
      if (Option.isNone(found) || !claimable(found.value, now)) return yield* queue.ack(delivery)
      const job = found.value
      // The queue's delivery limit is used up (a job that crashed its workers before they could
      // claim it): the job is given up on, never run again.
      if (delivery.exhausted === true) {
        const times = delivery.deliveryCount - 1
        return yield* failJob({
          job,
          error: { reason: "DeliveryLimit", message: `handed to workers ${times} times without an outcome` },
          delivery: { ...delivery, deliveryCount: times }
        })
      }
      const vendor = yield* registry.get(job.vendor).pipe(Effect.option)
      if (Option.isNone(vendor)) {
        return yield* failJob({
          job,
          error: { reason: "UnknownVendor", message: `vendor ${job.vendor} is not loaded in this worker` },
          delivery
        })
      }
      // Every attempt of this run began a call and none ended with an outcome (their workers died
      // mid-call): the limit counts calls per job, however many queue entries led to them.
      const limit = maxAttemptsOf(vendor.value)
      if (job.attempts >= limit) {
        return yield* failJob({
          job,
          error: {
            reason: "DeliveryLimit",
            message: `called ${job.attempts} times (its attempt limit) without an outcome`
          },
          delivery
        })
      }
      const claimed = yield* claim(job, now)
      if (Option.isNone(claimed)) return yield* queue.ack(delivery)
      const attempt: Attempt = { delivery, vendor: vendor.value, job: claimed.value, fenced: false, called: false }
      yield* Metrics.observe(
        Metrics.queueWait,
        { vendor: job.vendor },
        Date.parse(claimed.value.updatedAt) - Date.parse(job.updatedAt)
      )
      yield* runAttempt(attempt).pipe(
        // Shutdown ran out of grace mid-attempt: the job goes back (its attempt spent if the call began).
        Effect.onInterrupt(() => Effect.ignore(handBack(attempt, 0)))
      )
    })

    const timedOut = (vendor: Vendor) => ({
      reason: "callback_timeout",
      message: `no callback from ${vendor.name} within ${Duration.format(vendor.callbackDeadline ?? defaultCallbackDeadline)}`
    })

    const expire = Effect.fnUntraced(function* (job: Job) {
      const vendor = yield* registry.get(job.vendor).pipe(Effect.option)
      if (Option.isNone(vendor) || job.status !== "processing" || job.awaitingCallback !== true) return
      const deadline = Duration.toMillis(vendor.value.callbackDeadline ?? defaultCallbackDeadline)
      if (vendor.value.checkStatus !== undefined) {
        const status = yield* vendor.value.checkStatus(requestFor(vendor.value, job)).pipe(Effect.option)
        if (Option.isSome(status) && status.value._tag === "Completed") {
          yield* completeJob(completion, {
            job,
            vendor: vendor.value,
            data: status.value.result,
            expectedVersion: job.version
          }).pipe(
            // An answer that cannot be stored fails the job with why; asking again would not help.
            Effect.catchTag("VendorError", (error) => failJob({ job, error }))
          )
          return
        }
        if (Option.isSome(status)) {
          // Still working on it: another deadline's grace.
          const now = yield* Clock.currentTimeMillis
          yield* store.transition({
            id: job.id,
            from: "processing",
            to: "processing",
            expectedVersion: job.version,
            set: { overdueAt: new Date(now + deadline).toISOString() }
          })
          return
        }
      }
      if (vendor.value.onCallbackTimeout === "fail" || job.attempts >= maxAttemptsOf(vendor.value)) {
        return yield* failJob({ job, error: timedOut(vendor.value) })
      }
      const now = yield* Clock.currentTimeMillis
      const resubmitted = yield* store.transition({
        id: job.id,
        from: "processing",
        to: "pending",
        expectedVersion: job.version,
        set: { error: timedOut(vendor.value), overdueAt: overdueFrom(now) },
        unset: ["awaitingCallback"]
      })
      if (Option.isSome(resubmitted)) yield* enqueuePending(resubmitted.value).pipe(Effect.provide(services))
    })

    return JobProcessor.of({
      // Every log line of a delivery's run names its job and vendor.
      process: (delivery) =>
        process(delivery).pipe(Effect.annotateLogs({ job_id: delivery.jobId, vendor: delivery.vendor })),
      expire: (job) =>
        expire(job).pipe(
          withSpanUnder("JobProcessor.expire", job.traceparent, { "job.id": job.id, "job.vendor": job.vendor }),
          Effect.annotateLogs({ job_id: job.id, vendor: job.vendor })
        )
    })
  })

/**
 * The processor with explicit options; the callback tokens' secret is `CALLBACK_TOKEN_SECRET`, as
 * the server that checks them reads it.
 *
 * @category layers
 */
export const layer = (options: Options) => Layer.effect(JobProcessor, make(options))

/**
 * The processor configured from `PUBLIC_URL` (default `http://127.0.0.1:<PORT or 8000>`) and
 * `SWEEP_PENDING_AFTER`.
 *
 * @category layers
 */
export const layerConfig = Layer.unwrap(
  Effect.gen(function* () {
    const port = yield* Port.config("PORT", 8000)
    const webhookBaseUrl = yield* Config.String("PUBLIC_URL").pipe(Config.withDefault(`http://127.0.0.1:${port}`))
    return layer({ webhookBaseUrl, pendingAfter: yield* pendingAfterConfig })
  })
)

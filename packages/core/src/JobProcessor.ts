/**
 * The job engine: takes one delivery from the queue through to a stored outcome.
 *
 * pending → processing → wait for the vendor's rate limit → call the adapter → clean → complete
 * (sync), or mark the job as awaiting the vendor's callback (async); a vendor error fails the job
 * with its reason and dead-letters the delivery. The delivery is acknowledged only after the job's
 * new state is stored. Plain orchestration over the services: no Redis, Mongo or HTTP here.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Config,
  Context,
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
import { isFinished, type Job, type JobId, type JobSummary } from "./Job.ts"
import { type Delivery, JobQueue, type JobQueueError } from "./JobQueue.ts"
import { JobStore, type JobStoreError } from "./JobStore.ts"
import { portConfig } from "./Listen.ts"
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
    const webhookBase = options.webhookBaseUrl.replace(/\/+$/, "")
    const retryDelay = options.retryDelayMillis ?? 1000
    // The secret the server checks callback tokens with, from the one setting both read.
    const callbackSecret = Redacted.value(yield* WebhookSignature.callbackSecret)
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

    const fail = (job: Job, delivery: Delivery, error: VendorError) =>
      Effect.gen(function* () {
        const failure = yield* failureOf(completion.cleaner, error)
        yield* store.transition({
          id: job.id,
          from: "processing",
          to: "failed",
          expectedVersion: job.version,
          set: { error: failure },
          unset: ["awaitingCallback", "nextRetryAt"]
        })
        yield* queue.deadLetter(delivery, `${failure.reason}: ${failure.message}`)
        yield* Metrics.count(Metrics.jobsFailed, { vendor: job.vendor, reason: error.reason })
        yield* Metrics.count(Metrics.deadLetters, { vendor: job.vendor })
        yield* stats.recordFailed(job.vendor, error.reason)
      })

    // A transient error with attempts left: back to pending with the error shown, due again after
    // the vendor's Retry-After or a jittered backoff.
    const retryOrFail = (job: Job, vendor: Vendor, delivery: Delivery, error: VendorError) =>
      Effect.gen(function* () {
        if (!error.isRetryable || job.attempts >= (vendor.maxAttempts ?? defaultMaxAttempts)) {
          return yield* fail(job, delivery, error)
        }
        const delay = error.retryAfterMillis ?? (yield* backoff(job.attempts))
        const now = yield* Clock.currentTimeMillis
        yield* store.transition({
          id: job.id,
          from: "processing",
          to: "pending",
          expectedVersion: job.version,
          set: {
            error: yield* failureOf(completion.cleaner, error),
            nextRetryAt: new Date(now + delay).toISOString()
          }
        })
        yield* queue.retryLater(delivery, delay)
        yield* Metrics.count(Metrics.retries, { vendor: vendor.name })
      })

    // Waits for the vendor's rate-limit slot, if it has a limit.
    const pace = (vendor: Vendor) =>
      vendor.rateLimit === undefined
        ? Effect.void
        : Effect.flatMap(limiter.wait(vendor.name, vendor.rateLimit), (waited) =>
            Metrics.observe(Metrics.rateLimitWait, { vendor: vendor.name }, Duration.toMillis(waited))
          )

    const callVendor = (job: Job, vendor: Vendor, delivery: Delivery) =>
      Effect.gen(function* () {
        // The circuit admits the call first, then the call waits for its rate-limit slot: nothing
        // (such as the breaker's round trip to a shared store) comes between the slot and the call,
        // which would bunch calls that left the limiter evenly paced; and a call the circuit turns
        // away spends no slot.
        const call = Effect.flatMap(Effect.andThen(pace(vendor), Clock.currentTimeMillis), (callStarted) =>
          vendor.call(requestFor(vendor, job)).pipe(
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
        const outcome = yield* breaker
          .execute(call, { key: VendorCircuit.key(vendor.name), classify: VendorCircuit.classify })
          .pipe(
            Effect.tap(() => Metrics.count(Metrics.vendorAnswers, { vendor: vendor.name, outcome: "ok" })),
            Effect.tapError((error) =>
              error._tag === "VendorError"
                ? Metrics.count(Metrics.vendorAnswers, { vendor: vendor.name, outcome: error.reason })
                : Effect.void
            )
          )
        if (outcome._tag === "Completed") {
          yield* completeJob(completion, { job, vendor, data: outcome.result, expectedVersion: job.version })
        } else {
          // The callback may have completed the job already; then the version moved and this is a no-op.
          yield* store.transition({
            id: job.id,
            from: "processing",
            to: "processing",
            expectedVersion: job.version,
            set: { awaitingCallback: true }
          })
        }
        yield* queue.ack(delivery)
      }).pipe(
        Effect.catchTags({
          VendorError: (error) => retryOrFail(job, vendor, delivery, error),
          // The vendor's circuit is open (or another worker is probing it): the job waits, no attempt spent.
          CircuitBreakerError: (error) =>
            handBack(
              job,
              delivery,
              error.reason._tag === "CircuitOpen" ? Duration.toMillis(error.reason.retryAfter) : retryDelay
            ),
          // The rate-limit store is unreachable: no call without a slot; the job waits, no attempt spent.
          RateLimiterError: (error) =>
            Effect.logWarning("rate-limit store unreachable; handing the job back", error).pipe(
              Effect.andThen(handBack(job, delivery, retryDelay))
            )
        })
      )

    // Returns a claimed job to pending, undoing its attempt count, and delivers it again later.
    // Nor does it count as a delivery: a job held back by an open circuit through many openings must
    // not reach the queue's delivery limit and be dead-lettered while its record says pending.
    const handBack = (job: Job, delivery: Delivery, delayMillis: number) =>
      store
        .transition({
          id: job.id,
          from: "processing",
          to: "pending",
          expectedVersion: job.version,
          set: { attempts: job.attempts - 1 }
        })
        .pipe(
          Effect.andThen(
            queue.retryLater({ ...delivery, deliveryCount: Math.max(0, delivery.deliveryCount - 1) }, delayMillis)
          )
        )

    // A new attempt: from pending (the usual case), or from processing when an earlier attempt was
    // abandoned (its worker died; its delivery was reclaimed, or the sweeper sent the job round
    // again). Bumping the version fences the abandoned attempt off. `None`: nothing to do.
    const claim = (job: JobSummary) =>
      job.status === "pending" || (job.status === "processing" && job.awaitingCallback !== true)
        ? store.transition({
            id: job.id,
            from: job.status,
            to: "processing",
            expectedVersion: job.version,
            set: { attempts: job.attempts + 1 },
            unset: ["nextRetryAt"]
          })
        : Effect.succeedNone

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

    // The queue's delivery limit is used up (a job that crashed its workers, or was handed out
    // more often than the limit allows): the job is given up on, never run again.
    const giveUp = Effect.fnUntraced(function* (delivery: Delivery, found: Option.Option<JobSummary>) {
      const job = Option.getOrUndefined(found)
      const reason = `handed to workers ${delivery.deliveryCount - 1} times without an outcome`
      if (job !== undefined && !isFinished(job.status) && job.awaitingCallback !== true) {
        const failed = yield* store.transition({
          id: job.id,
          from: job.status,
          to: "failed",
          expectedVersion: job.version,
          set: { error: { reason: "DeliveryLimit", message: reason } },
          unset: ["awaitingCallback", "nextRetryAt"]
        })
        if (Option.isSome(failed)) {
          yield* Metrics.count(Metrics.jobsFailed, { vendor: job.vendor, reason: "DeliveryLimit" })
          yield* Effect.logWarning(`job failed: ${reason}`)
        }
      }
      yield* queue.deadLetter({ ...delivery, deliveryCount: delivery.deliveryCount - 1 }, `DeliveryLimit: ${reason}`)
      yield* Metrics.count(Metrics.deadLetters, { vendor: delivery.vendor })
    })

    const processFound = Effect.fnUntraced(function* (delivery: Delivery, found: Option.Option<JobSummary>) {
      if (delivery.exhausted === true) return yield* giveUp(delivery, found)
      // Unknown, or finished, or waiting for its vendor's callback: nothing left to do here.
      const started = Option.isSome(found) ? yield* claim(found.value) : Option.none()
      if (Option.isNone(started)) return yield* queue.ack(delivery)
      const job = started.value
      const waitedSince = Option.isSome(found) ? Date.parse(found.value.updatedAt) : Date.parse(job.updatedAt)
      yield* Metrics.observe(Metrics.queueWait, { vendor: job.vendor }, Date.parse(job.updatedAt) - waitedSince)
      const vendor = yield* registry.get(job.vendor).pipe(Effect.option)
      if (Option.isNone(vendor)) {
        yield* store.transition({
          id: job.id,
          from: "processing",
          to: "failed",
          expectedVersion: job.version,
          set: { error: { reason: "UnknownVendor", message: `vendor ${job.vendor} is not loaded in this worker` } }
        })
        return yield* queue.deadLetter(delivery, `UnknownVendor: ${job.vendor}`)
      }
      yield* callVendor(job, vendor.value, delivery).pipe(
        // Shutdown ran out of grace mid-attempt: the attempt did not happen, the job goes back.
        Effect.onInterrupt(() => Effect.ignore(handBack(job, delivery, 0)))
      )
    })

    const timedOut = (vendor: Vendor) => ({
      reason: "callback_timeout",
      message: `no callback from ${vendor.name} within ${Duration.format(vendor.callbackDeadline ?? defaultCallbackDeadline)}`
    })

    const expire = Effect.fnUntraced(function* (job: Job) {
      const vendor = yield* registry.get(job.vendor).pipe(Effect.option)
      if (Option.isNone(vendor) || job.status !== "processing" || job.awaitingCallback !== true) return
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
            Effect.catchTag("VendorError", (error) =>
              Effect.flatMap(failureOf(completion.cleaner, error), (failure) =>
                store.transition({
                  id: job.id,
                  from: "processing",
                  to: "failed",
                  expectedVersion: job.version,
                  set: { error: failure },
                  unset: ["awaitingCallback"]
                })
              )
            )
          )
          return
        }
        if (Option.isSome(status)) {
          // Still working on it: another deadline's grace.
          yield* store.transition({ id: job.id, from: "processing", to: "processing", expectedVersion: job.version })
          return
        }
      }
      const error = timedOut(vendor.value)
      const exhausted = job.attempts >= (vendor.value.maxAttempts ?? defaultMaxAttempts)
      if (vendor.value.onCallbackTimeout === "fail" || exhausted) {
        yield* store.transition({
          id: job.id,
          from: "processing",
          to: "failed",
          expectedVersion: job.version,
          set: { error },
          unset: ["awaitingCallback"]
        })
        yield* Metrics.count(Metrics.jobsFailed, { vendor: job.vendor, reason: error.reason })
        return
      }
      const resubmitted = yield* store.transition({
        id: job.id,
        from: "processing",
        to: "pending",
        expectedVersion: job.version,
        set: { error },
        unset: ["awaitingCallback"]
      })
      if (Option.isNone(resubmitted)) return
      // Stored as pending but not queued yet: if the queue stays away past the retries, the job goes
      // back to awaiting its callback (unless something moved it meanwhile), so the next sweep
      // expires it again rather than leaving it for the stale-pending sweep.
      yield* queue.enqueue(job.vendor, job.id).pipe(
        Effect.retry(requeueRetry),
        Effect.tapError(() =>
          store.transition({
            id: job.id,
            from: "pending",
            to: "processing",
            expectedVersion: resubmitted.value.version,
            set: { awaitingCallback: true }
          })
        )
      )
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
 * The processor configured from `PUBLIC_URL` (default `http://127.0.0.1:<PORT or 8000>`).
 *
 * @category layers
 */
export const layerConfig = Layer.unwrap(
  Effect.gen(function* () {
    const port = yield* portConfig("PORT", 8000)
    const webhookBaseUrl = yield* Config.String("PUBLIC_URL").pipe(Config.withDefault(`http://127.0.0.1:${port}`))
    return layer({ webhookBaseUrl })
  })
)

/**
 * The job engine: takes one delivery from the queue through to a stored outcome. Plain
 * orchestration over the services: no Redis, Mongo or HTTP here.
 *
 * A delivery's life, in the order of the steps below `make`:
 *
 * 1. take: the consumer (`Consumer`) takes deliveries from the vendor's queue; the service's
 *    `process` runs each in its job's trace.
 * 2. claim: a job that may start an attempt (pending, or processing under a lease that ran out)
 *    and has attempts left is claimed, and so leased to the attempt (`internal/lease.ts`). A
 *    pending job, the common case, is claimed at once by the store's `claim` (the claims of one
 *    take go to the store together); when that does not apply, the job is read (the reads of one
 *    take go together too) and what its delivery does is decided from what it is.
 * 3. pace: under the lease, the vendor's circuit admits the call, then the call waits for the
 *    vendor's rate-limit slot.
 * 4. call: the adapter is called with the job's payload and, for an async vendor, its callback URL.
 * 5. complete: a sync vendor's data, cleaned, is stored; an async vendor's job awaits its callback
 *    (`Webhook`) until a deadline. Or retry: a transient error with attempts left puts the job back
 *    to pending, due again after a backoff. Or fail: a permanent error, or no attempts left, fails
 *    the job with its reason and dead-letters the delivery. (The writes: `internal/outcome.ts`.)
 * 6. acknowledge: the delivery is let go only once the job's new state is stored.
 *
 * Besides these, hand back: an attempt stopped before its outcome (an open circuit, an unreachable
 * rate-limit store, a shutdown) returns its job to pending, its attempt undone unless the call
 * began; and expire: the sweeper hands over an async job whose callback is overdue.
 *
 * One live attempt per job. Claiming a job (a compare-and-set that bumps its version) leases it to
 * the attempt until `overdueAt`; while the attempt waits on the circuit, the rate limit and the
 * call, it renews the lease and its delivery (`JobQueue.renew`) every third of the queue's
 * visibility timeout (one loop renews all the attempts a worker holds, see `internal/lease.ts`). A delivery of a job whose lease is live starts nothing and is acknowledged:
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
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Random,
  Redacted,
  Request,
  RequestResolver,
  Result,
  Schedule
} from "effect"
import { CircuitBreaker } from "effect/persistence"
import { Cleaner } from "./Cleaner.ts"
import { completeJob } from "./internal/completion.ts"
import {
  type Attempt,
  beginCall,
  type Holder,
  type Lease,
  leaseFor,
  leaseUntil,
  makeHolder,
  whileLeased
} from "./internal/lease.ts"
import {
  awaitCallback,
  complete,
  fail,
  failRejected,
  handBack,
  type Outcomes,
  outcomeRetryFor,
  retry
} from "./internal/outcome.ts"
import { traceIdOf, withSpanUnder } from "./internal/traceContext.ts"
import { type Job, type JobId, type JobSummary, pendingAfterConfig, pendingOverdueAt } from "./Job.ts"
import { type Delivery, JobQueue, type JobQueueError } from "./JobQueue.ts"
import { JobStore, type JobStoreError } from "./JobStore.ts"
import * as Port from "./Port.ts"
import { RateLimiter } from "./RateLimiter.ts"
import * as Stats from "./Stats.ts"
import * as Metrics from "./Metrics.ts"
import {
  AnswerHeaders,
  type RawAnswer,
  usableRetryAfter,
  type Vendor,
  VendorError,
  type VendorOutcome,
  type VendorRequest
} from "./Vendor.ts"
import * as VendorCircuit from "./VendorCircuit.ts"
import { VendorRegistry } from "./VendorRegistry.ts"
import * as Webhook from "./Webhook.ts"
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
  yield* enqueuePendingWith({ queue: yield* JobQueue, store: yield* JobStore }, job)
})

const enqueuePendingWith = (services: Pick<Engine, "queue" | "store">, job: Job) =>
  services.queue.enqueue(job.vendor, job.id).pipe(
    Effect.retry(requeueRetry),
    Effect.tapError(() =>
      Effect.flatMap(Clock.currentTimeMillis, (failedAt) =>
        services.store.transition({
          id: job.id,
          from: "pending",
          to: "pending",
          expectedVersion: job.version,
          set: { overdueAt: new Date(failedAt).toISOString() }
        })
      )
    )
  )

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

// What the steps use: the services, read once when the processor is made (a step takes them as an
// argument rather than from the context, which would cost a context merge per delivery), and the
// settings made from them. Each step names in its type the parts it reads.
interface Engine extends Outcomes {
  readonly registry: VendorRegistry["Service"]
  readonly limiter: RateLimiter["Service"]
  readonly breaker: CircuitBreaker.CircuitBreaker
  readonly lease: Lease
  /** The attempts this processor holds, their leases renewed together. */
  readonly holder: Holder
  readonly reads: RequestResolver.RequestResolver<ReadJob>
  /** Where async vendors post (no trailing slash) and the callback tokens' secret. */
  readonly callbacks: { readonly base: string; readonly secret: string }
  /** How long a job handed back because the rate-limit store is unreachable waits. */
  readonly retryDelay: number
}

/**
 * The processor over the services in context.
 *
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.gen(function* () {
    const store = yield* JobStore
    const stats = yield* Stats.Stats
    // An attempt holds its job by a lease in the store as long as the queue keeps a delivery with
    // its taker: both last the queue's visibility timeout.
    const queue = yield* JobQueue
    const lease = leaseFor(queue.visibilityTimeout)
    const engine: Engine = {
      store,
      queue,
      registry: yield* VendorRegistry,
      limiter: yield* RateLimiter,
      breaker: yield* CircuitBreaker.CircuitBreaker,
      stats,
      completion: { cleaner: yield* Cleaner, store, stats },
      lease,
      holder: makeHolder({ store, queue }, lease),
      outcomeRetry: outcomeRetryFor(lease),
      reads: readsFrom(store),
      // The secret the server checks callback tokens with, from the one setting both read.
      callbacks: {
        base: options.webhookBaseUrl.replace(/\/+$/, ""),
        secret: Redacted.value(yield* WebhookSignature.callbackSecret)
      },
      retryDelay: options.retryDelayMillis ?? 1000,
      pendingAfter: options.pendingAfter
    }
    return JobProcessor.of({
      // Every log line of a delivery's run names its job and vendor.
      process: (delivery) =>
        process(engine, delivery).pipe(Effect.annotateLogs({ job_id: delivery.jobId, vendor: delivery.vendor })),
      expire: (job) =>
        expire(engine, job).pipe(
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

// ─── 1. take: read the delivery's job ──────────────────────────────────────────────────────────

// A delivery's read of its job, batched with the reads of the deliveries started with it.
interface ReadJob extends Request.Request<Option.Option<JobSummary>, JobStoreError> {
  readonly id: JobId
}
const ReadJob = Request.of<ReadJob>()

// The reads of deliveries started together (the consumer starts a take's deliveries in one
// turn) go to the store as one `getMany`: Effect's request batching collects them.
const readsFrom = (store: JobStore["Service"]) =>
  RequestResolver.make<ReadJob>((entries) =>
    Effect.map(store.getMany(entries.map((entry) => entry.request.id)), (found) => {
      entries.forEach((entry, i) => entry.completeUnsafe(Exit.succeed(found[i] ?? Option.none())))
    })
  )

// One delivery. The common one (a pending job that may have another attempt) is claimed at once,
// without reading the job first (`claimAtOnce`); any other reads the job and decides what its
// delivery does (`startAttempt`). Either way the attempt runs in the job's own trace (the span
// that submitted it, `Job.traceparent`).
const process = (engine: Engine, delivery: Delivery) =>
  Effect.flatMap(claimAtOnce(engine, delivery), (claimed) =>
    Option.isSome(claimed)
      ? inJobTrace(delivery, claimed.value.job.traceparent, runClaimed(engine, { delivery, ...claimed.value }))
      : Effect.flatMap(Effect.request(ReadJob({ id: delivery.jobId }), engine.reads), (found) =>
          inJobTrace(
            delivery,
            Option.isSome(found) ? found.value.traceparent : undefined,
            startAttempt(engine, delivery, found)
          )
        )
  ).pipe(
    Effect.catchIf(
      (error): error is JobStoreError => error._tag === "JobStoreError" && error.reason === "Rejected",
      (error) => failRejected(engine, delivery, error)
    )
  )

const inJobTrace = <A, E, R>(delivery: Delivery, traceparent: string | undefined, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    withSpanUnder("JobProcessor.process", traceparent, { "job.id": delivery.jobId, "job.vendor": delivery.vendor }),
    Effect.annotateLogs(traceparent === undefined ? {} : { trace_id: traceIdOf(traceparent) })
  )

// ─── 2. claim: start an attempt, if the job may have one ───────────────────────────────────────

// Starts an attempt on the delivery's job, or lets the delivery go (or fails the job) when it may
// not have one.
const startAttempt = Effect.fnUntraced(function* (
  engine: Engine,
  delivery: Delivery,
  found: Option.Option<JobSummary>
) {
  const now = yield* Clock.currentTimeMillis
  // Unknown, finished, waiting for its vendor's callback, or held by a live attempt elsewhere:
  // nothing for this delivery to do.
  if (Option.isNone(found) || !claimable(found.value, now)) return yield* engine.queue.ack(delivery)
  const job = found.value
  // The queue's delivery limit is used up (a job that crashed its workers before they could
  // claim it): the job is given up on, never run again.
  if (delivery.exhausted === true) {
    const times = delivery.deliveryCount - 1
    return yield* fail(engine, {
      job,
      error: { reason: "DeliveryLimit", message: `handed to workers ${times} times without an outcome` },
      delivery: { ...delivery, deliveryCount: times }
    })
  }
  const vendor = yield* engine.registry.get(job.vendor).pipe(Effect.option)
  if (Option.isNone(vendor)) {
    return yield* fail(engine, {
      job,
      error: { reason: "UnknownVendor", message: `vendor ${job.vendor} is not loaded in this worker` },
      delivery
    })
  }
  // Every attempt of this run began a call and none ended with an outcome (their workers died
  // mid-call): the limit counts calls per job, however many queue entries led to them.
  if (job.attempts >= maxAttemptsOf(vendor.value)) {
    return yield* fail(engine, {
      job,
      error: {
        reason: "DeliveryLimit",
        message: `called ${job.attempts} times (its attempt limit) without an outcome`
      },
      delivery
    })
  }
  const claimed = yield* claim(engine, job, now)
  if (Option.isNone(claimed)) return yield* engine.queue.ack(delivery)
  yield* runClaimed(engine, { delivery, vendor: vendor.value, job: claimed.value, waitingSince: job.updatedAt })
})

// A delivery whose job may have a new attempt, claimed at once by the store's `claim` (which
// applies only to a pending job of the delivery's vendor with attempts left), with the vendor to
// call; `None` when the claim does not apply, or the delivery must fail its job whatever it is
// (used up, or its vendor not loaded here).
const claimAtOnce = (engine: Pick<Engine, "registry" | "store" | "lease">, delivery: Delivery) =>
  delivery.exhausted === true
    ? Effect.succeedNone
    : Effect.flatMap(Effect.option(engine.registry.get(delivery.vendor)), (vendor) =>
        Option.isNone(vendor)
          ? Effect.succeedNone
          : Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.map(
                engine.store.claim({
                  id: delivery.jobId,
                  vendor: vendor.value.name,
                  maxAttempts: maxAttemptsOf(vendor.value),
                  overdueAt: leaseUntil(engine.lease, now)
                }),
                Option.map((claimed) => ({ ...claimed, vendor: vendor.value }))
              )
            )
      )

// Runs the attempt a claim started on `job`, which waited in the queue since `waitingSince`.
const runClaimed = (
  engine: Engine,
  claimed: { readonly delivery: Delivery; readonly vendor: Vendor; readonly job: Job; readonly waitingSince: string }
) => {
  const { delivery, vendor, job } = claimed
  const attempt: Attempt = { delivery, vendor, job, fenced: false, called: false, answer: undefined, settled: false }
  return Metrics.observe(
    Metrics.queueWait,
    { vendor: job.vendor },
    Date.parse(job.updatedAt) - Date.parse(claimed.waitingSince)
  ).pipe(
    Effect.andThen(runAttempt(engine, attempt)),
    // Shutdown ran out of grace mid-attempt. An outcome being written is left to finish; an answer
    // the vendor gave is stored as it would have been; otherwise the job goes back to its queue,
    // its attempt spent if the call began.
    Effect.onInterrupt(() =>
      attempt.settled
        ? Effect.void
        : Effect.ignore(
            attempt.answer === undefined ? stopped(engine, attempt) : settle(engine, attempt, attempt.answer)
          )
    )
  )
}

// An attempt stopped before its vendor answered: the job goes back to its queue.
const stopped = (engine: Engine, attempt: Attempt) =>
  Effect.andThen(
    attempt.called
      ? Effect.logWarning("stopped mid-call: the job goes back to its queue and will be called again")
      : Effect.void,
    handBack(engine, attempt, 0)
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

// A new attempt, leased until the lease runs out. Bumping the version fences the abandoned
// attempt it may take over off.
const claim = (engine: Pick<Engine, "store" | "lease">, job: JobSummary, now: number) =>
  engine.store.transition({
    id: job.id,
    from: job.status,
    to: "processing",
    expectedVersion: job.version,
    set: { attempts: job.attempts + 1, overdueAt: leaseUntil(engine.lease, now) },
    unset: ["nextRetryAt"]
  })

const maxAttemptsOf = (vendor: Vendor) => vendor.maxAttempts ?? defaultMaxAttempts

const callbackDeadlineOf = (vendor: Vendor) => Duration.toMillis(vendor.callbackDeadline ?? defaultCallbackDeadline)

// ─── 3 to 6: the attempt, from its call to its stored outcome and acknowledgement ──────────────

// The wait and the call may be cut short by a shutdown; what follows them may not. Once the vendor
// has answered, the answer is stored and the delivery let go (or the job retried or failed, as the
// answer says) even if the worker is stopping: that write costs no more than handing the job back,
// which would have the vendor called again for an answer already in hand.
const runAttempt = (engine: Engine, attempt: Attempt) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.matchEffect(restore(paceAndCall(engine, attempt)), {
      onSuccess: (outcome) => settle(engine, attempt, Result.succeed(outcome)),
      onFailure: (error) => settle(engine, attempt, Result.fail(error))
    })
  )

// How an attempt's pace and call ended: the vendor's answer, or why there was none.
type Ended = Result.Result<VendorOutcome, Effect.Error<ReturnType<typeof paceAndCall>>>

// Writes the attempt's outcome and lets its delivery go.
const settle = (engine: Engine, attempt: Attempt, ended: Ended) =>
  Effect.suspend(() => {
    attempt.settled = true
    if (Result.isSuccess(ended)) {
      const outcome = ended.success
      return (
        outcome._tag === "Completed"
          ? complete(engine, attempt, outcome.result)
          : awaitCallback(engine, attempt, callbackDeadlineOf(attempt.vendor))
      ).pipe(
        Effect.andThen(engine.queue.ack(attempt.delivery)),
        // An answer that cannot be cleaned or stored fails the job, as a vendor's error would.
        Effect.catchTag("VendorError", (error) => retryOrFail(engine, attempt, error))
      )
    }
    const error = ended.failure
    switch (error._tag) {
      case "VendorError":
        return retryOrFail(engine, attempt, error)
      // The vendor's circuit is open (or another worker is probing it): the job waits, no attempt spent.
      case "CircuitBreakerError":
        return handBack(
          engine,
          attempt,
          error.reason._tag === "CircuitOpen" ? Duration.toMillis(error.reason.retryAfter) : engine.retryDelay
        )
      // The rate-limit store is unreachable: no call without a slot; the job waits, no attempt spent.
      case "RateLimiterError":
        return Effect.logWarning("rate-limit store unreachable; handing the job back", error).pipe(
          Effect.andThen(handBack(engine, attempt, engine.retryDelay))
        )
      case "Fenced":
        return engine.queue.ack(attempt.delivery)
      // The store was away when the lease was renewed before the call: the delivery stays, and
      // comes back once the lease runs out.
      case "JobStoreError":
        return Effect.fail(error)
    }
  })

// ─── 3. pace, 4. call ──────────────────────────────────────────────────────────────────────────

// The circuit's admission, the rate-limit wait and the call, under the attempt's lease. The
// circuit admits the call first, then the call waits for its rate-limit slot: nothing (such as the
// breaker's round trip to a shared store) comes between the slot and the call, which would bunch
// calls that left the limiter evenly paced; and a call the circuit turns away spends no slot.
const paceAndCall = (engine: Engine, attempt: Attempt) => {
  const { vendor } = attempt
  const paced = pace(
    engine.limiter,
    vendor,
    Effect.andThen(beginCall(engine.store, engine.lease, attempt), call(engine, attempt))
  )
  // A slot in flight is taken before the rate-limit slot, so that no rate-limit slot goes unused
  // while its call waits for room.
  const capped =
    vendor.maxInFlight === undefined ? paced : engine.limiter.withSlot(vendor.name, vendor.maxInFlight, paced)
  return whileLeased(
    engine.holder,
    attempt,
    engine.breaker.execute(capped, { key: VendorCircuit.key(vendor.name), classify: VendorCircuit.classify })
  ).pipe(
    Effect.tap(() => Metrics.count(Metrics.vendorAnswers, { vendor: vendor.name, outcome: "ok" })),
    Effect.tapError((error) =>
      error._tag === "VendorError"
        ? Metrics.count(Metrics.vendorAnswers, { vendor: vendor.name, outcome: error.reason })
        : Effect.void
    )
  )
}

// Makes the call in the vendor's rate-limit slot, if it has a limit.
const pace = <A, E, R>(limiter: RateLimiter["Service"], vendor: Vendor, call: Effect.Effect<A, E, R>) =>
  vendor.rateLimit === undefined
    ? call
    : limiter.paced(vendor.name, vendor.rateLimit, (waited) =>
        Effect.andThen(Metrics.observe(Metrics.rateLimitWait, { vendor: vendor.name }, Duration.toMillis(waited)), call)
      )

// Calls the adapter, timing the call for the metrics and the dashboard, and tells the limiter what
// the answer says of the vendor's limit: a 429 pauses the vendor for every worker, a learned limit
// takes what the headers advertise. (A store that cannot hear it now changes nothing for this job.)
const call = (engine: Pick<Engine, "callbacks" | "stats" | "limiter">, attempt: Attempt) => {
  const { vendor } = attempt
  const { rateLimit } = vendor
  let headers: RawAnswer["headers"] | undefined
  const request = vendor.call(requestFor(engine.callbacks, vendor, attempt.job)).pipe(
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
    // Kept on the attempt as it arrives, so that a stop landing after it (while the limiter is
    // told of a 429, say) still acts on the answer.
    Effect.onExit((exit) =>
      Effect.sync(() => {
        if (Exit.isSuccess(exit)) {
          attempt.answer = Result.succeed(exit.value)
        } else {
          // No typed error: the call was interrupted, and there is no answer.
          const error = Exit.findErrorOption(exit)
          if (Option.isSome(error)) attempt.answer = Result.fail(error.value)
        }
      })
    )
  )
  const heard =
    rateLimit?.learn === true
      ? request.pipe(
          Effect.provideService(AnswerHeaders, (answer) => {
            headers = answer
          }),
          Effect.ensuring(
            Effect.suspend(() =>
              headers === undefined ? Effect.void : Effect.ignore(engine.limiter.heard(vendor.name, rateLimit, headers))
            )
          )
        )
      : request
  return Effect.flatMap(Clock.currentTimeMillis, (callStarted) =>
    heard.pipe(
      Effect.tapError((error) =>
        error.reason === "RateLimited" && rateLimit !== undefined
          ? Effect.ignore(
              engine.limiter.limited(vendor.name, { limit: rateLimit, retryAfterMillis: error.retryAfterMillis })
            )
          : Effect.void
      ),
      Effect.ensuring(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Metrics.observe(Metrics.vendorCall, { vendor: vendor.name }, now - callStarted)
        )
      ),
      Effect.onExit((exit) => Stats.recordCallExit(engine.stats, { vendor: vendor.name, startedAt: callStarted }, exit))
    )
  )
}

// What the adapter gets for this attempt of this job. The webhook URL is where the vendor posts
// its callback: the token in it lets only this job's current run be completed through it. It is
// made when read, since only async vendors read it and it costs an HMAC and a URL parse.
const requestFor = (callbacks: Engine["callbacks"], vendor: Vendor, job: Job): VendorRequest => ({
  jobId: job.id,
  payload: job.payload,
  attempt: job.attempts,
  get webhookUrl() {
    return Webhook.callbackUrl({ ...callbacks, vendor: vendor.name, jobId: job.id, run: job.run })
  }
})

// ─── 5. complete, retry or fail (the writes are in `internal/outcome.ts`) ─────────────────────

// A transient error with attempts left is retried after the vendor's Retry-After or a jittered
// backoff; any other error fails the job.
const retryOrFail = (engine: Engine, attempt: Attempt, error: VendorError) =>
  !error.isRetryable || attempt.job.attempts >= maxAttemptsOf(attempt.vendor)
    ? fail(engine, { job: attempt.job, error, delivery: attempt.delivery })
    : Effect.suspend(() => {
        // An adapter's own Retry-After is taken as the limiter takes it: capped, and none if unusable.
        const retryAfter = usableRetryAfter(error.retryAfterMillis)
        return Effect.flatMap(
          retryAfter === undefined ? backoff(attempt.job.attempts) : Effect.succeed(retryAfter),
          (delay) => retry(engine, attempt, error, delay)
        )
      })

// ─── expire: an async job whose callback is overdue ────────────────────────────────────────────

const expire = Effect.fnUntraced(function* (engine: Engine, job: Job) {
  const vendor = yield* engine.registry.get(job.vendor).pipe(Effect.option)
  if (Option.isNone(vendor) || job.status !== "processing" || job.awaitingCallback !== true) return
  if (vendor.value.checkStatus !== undefined) {
    const status = yield* vendor.value.checkStatus(requestFor(engine.callbacks, vendor.value, job)).pipe(Effect.option)
    if (Option.isSome(status) && status.value._tag === "Completed") {
      yield* completeJob(engine.completion, {
        job,
        vendor: vendor.value,
        data: status.value.result,
        expectedVersion: job.version
      }).pipe(
        // An answer that cannot be stored fails the job with why; asking again would not help.
        Effect.catchTag("VendorError", (error) => fail(engine, { job, error }))
      )
      return
    }
    if (Option.isSome(status)) {
      // Still working on it: another deadline's grace.
      const now = yield* Clock.currentTimeMillis
      yield* engine.store.transition({
        id: job.id,
        from: "processing",
        to: "processing",
        expectedVersion: job.version,
        set: { overdueAt: new Date(now + callbackDeadlineOf(vendor.value)).toISOString() }
      })
      return
    }
  }
  if (vendor.value.onCallbackTimeout === "fail" || job.attempts >= maxAttemptsOf(vendor.value)) {
    return yield* fail(engine, { job, error: timedOut(vendor.value) })
  }
  const now = yield* Clock.currentTimeMillis
  const resubmitted = yield* engine.store.transition({
    id: job.id,
    from: "processing",
    to: "pending",
    expectedVersion: job.version,
    set: { error: timedOut(vendor.value), overdueAt: pendingOverdueAt(now, engine.pendingAfter) },
    unset: ["awaitingCallback"]
  })
  if (Option.isSome(resubmitted)) yield* enqueuePendingWith(engine, resubmitted.value)
})

const timedOut = (vendor: Vendor) => ({
  reason: "callback_timeout",
  message: `no callback from ${vendor.name} within ${Duration.format(vendor.callbackDeadline ?? defaultCallbackDeadline)}`
})

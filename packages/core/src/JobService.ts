/**
 * The job service: what a client (over HTTP, or a Node app in-process) does with jobs: submit one or many, read
 * them back, list them, send a failed one round again, wait for one to finish, and hand in a
 * vendor's callback (received by `Webhook`).
 *
 * Submitting, step by step: route each submission to its vendor, refuse a vendor whose backlog is
 * too deep, store the pending jobs, queue them (in one write where the backend offers
 * {@link StoreAndQueue}). A job once stored is accepted and will run: where the queue write is a
 * write of its own and fails, the job is made overdue at once, and the sweeper queues it.
 *
 * Layers: `layer`, over a store, a queue, a registry and a cleaner.
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Duration, Effect, Exit, Layer, Option, Result, Schedule, Schema } from "effect"
import * as Request from "effect/Request"
import * as RequestResolver from "effect/RequestResolver"
import { currentTraceparent } from "./internal/traceContext.ts"
import * as Job from "./Job.ts"
import { JobQueue, type JobQueueError } from "./JobQueue.ts"
import { JobStore, type JobStoreError, type ListQuery, type Page } from "./JobStore.ts"
import * as Metrics from "./Metrics.ts"
import { type UnknownVendor, VendorRegistry } from "./VendorRegistry.ts"
import * as Webhook from "./Webhook.ts"

/**
 * No job has this id, or none its reader may see (`Job.JobNotFound`).
 *
 * @category errors
 */
export { JobNotFound } from "./Job.ts"

/**
 * What receiving a callback refuses a genuine one with, and how often it tries a job that keeps
 * changing: `Webhook.CallbackNotApplied` and `Webhook.callbackApplyRounds`.
 *
 * @category errors
 */
export { CallbackNotApplied, callbackApplyRounds } from "./Webhook.ts"

/**
 * Only a failed job can be sent round again.
 *
 * @category errors
 */
export class NotRetryable extends Schema.TaggedError<NotRetryable>()("NotRetryable", {
  id: Schema.String,
  status: Schema.String
}) {
  override get message(): string {
    return `job ${this.id} is ${this.status}; only a failed job can be sent round again`
  }
}

/**
 * An `Idempotency-Key` used before with another body (or for another vendor).
 *
 * @category errors
 */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  idempotencyKey: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `the idempotency key ${JSON.stringify(this.idempotencyKey)} was used for another request (job ${this.id})`
  }
}

/**
 * The vendor's backlog is past the configured depth: new jobs for it are refused until it drains.
 *
 * @category errors
 */
export class Backlogged extends Schema.TaggedError<Backlogged>()("Backlogged", {
  vendor: Schema.String,
  depth: Schema.Number,
  limit: Schema.Number
}) {
  override get message(): string {
    return `vendor ${this.vendor} has ${this.depth} jobs waiting (the limit is ${this.limit}); try again later`
  }
}

/**
 * How deep a vendor's backlog may grow before new jobs are refused, from `MAX_BACKLOG`.
 *
 * @category config
 */
export const maxBacklogConfig = Config.Int("MAX_BACKLOG").pipe(Config.withDefault(100_000))

/**
 * How long a backlog reading is reused, so that checking it costs `POST /jobs` no round trip.
 *
 * @category constants
 */
export const backlogReadingTtlMillis = 250

/**
 * One job to submit without an idempotency key (see `JobService.submitMany`).
 *
 * @category models
 */
export interface Submission {
  readonly payload: Job.JsonObject
  /** The vendor asked for (`?vendor=`); the payload's `vendor` field wins. */
  readonly vendor?: string | undefined
  /** The API key's name that submits it (`Access`); only it will see the job. */
  readonly owner?: string | undefined
}

/**
 * One job to read (see `JobService.getMany`).
 *
 * @category models
 */
export interface Read {
  readonly id: Job.JobId
  /** The API key's name that reads it: another owner's job is not found. No owner: any job. */
  readonly owner?: string | undefined
}

/**
 * The job service.
 *
 * @category services
 */
export class JobService extends Context.Service<
  JobService,
  {
    /**
     * Stores a pending job for the routed vendor and queues it; the job is returned at once. A job
     * once stored is returned (it will run) even when the queue write fails: the sweeper queues it.
     * Submissions without an idempotency key made in the same turn (an app awaiting many at once)
     * are stored and queued together, as {@link submitMany} does, each with its own outcome and
     * its own span's trace.
     */
    readonly submit: (options: {
      readonly payload: Job.JsonObject
      readonly vendor?: string | undefined
      /**
       * The same key with the same payload and vendor returns the first job; with others, a conflict.
       * Keys are the owner's own: two owners may use the same key for different jobs.
       */
      readonly idempotencyKey?: string | undefined
      /** The API key's name that submits it (`Access`); only it will see the job. */
      readonly owner?: string | undefined
    }) => Effect.Effect<Job.Job, UnknownVendor | Backlogged | IdempotencyConflict | JobStoreError | JobQueueError>
    /**
     * Stores and queues submissions without an idempotency key together: one store write for the
     * lot and one queue write per vendor, where {@link submit} makes two writes a job. What the API
     * does with the plain `POST /jobs` that arrive in one turn of the event loop. Each submission's
     * outcome is in its place: its job, or why it was refused. The jobs share the call's span, so
     * their traces start at the same submission.
     */
    readonly submitMany: (
      submissions: ReadonlyArray<Submission>
    ) => Effect.Effect<ReadonlyArray<Result.Result<Job.Job, UnknownVendor | Backlogged>>, JobStoreError | JobQueueError>
    /** A job; another owner's job is not found, as if it did not exist. No owner: any job. */
    readonly get: (id: Job.JobId, owner?: string | undefined) => Effect.Effect<Job.Job, Job.JobNotFound | JobStoreError>
    /**
     * Several jobs, as {@link get} finds each but without their payloads, with one store read for the
     * lot: what the API does with the `GET /jobs/{id}` that arrive in one turn of the event loop.
     * Each read's outcome is in its place.
     */
    readonly getMany: (
      reads: ReadonlyArray<Read>
    ) => Effect.Effect<ReadonlyArray<Result.Result<Job.JobSummary, Job.JobNotFound>>, JobStoreError>
    /**
     * Verifies and applies an async vendor's callback: a callback of the job's current run is applied
     * whenever the job still waits for its vendor (pending or processing), and only then, or when it
     * finds the job complete already (a repeat, which changes nothing and returns the job as it
     * is), does this succeed: a success means the job holds a vendor's answer. A callback for a failed
     * job, or of an earlier run, is `CallbackNotApplied`.
     */
    readonly receiveWebhook: Webhook.Receive
    /** A page of jobs in a status (of one vendor, of one owner), most recently changed first. */
    readonly list: (query: ListQuery) => Effect.Effect<Page, JobStoreError>
    /**
     * Sends a failed job round again under the same id, as a new run: pending, attempts reset, the
     * run one more (callbacks of earlier runs are refused), queued.
     */
    readonly retry: (
      id: Job.JobId,
      owner?: string | undefined
    ) => Effect.Effect<Job.Job, Job.JobNotFound | NotRetryable | JobStoreError | JobQueueError>
    /** Polls until the job is complete or failed. */
    readonly awaitFinished: (id: Job.JobId) => Effect.Effect<Job.Job, Job.JobNotFound | JobStoreError>
  }
>()("@vendorflow/core/JobService") {}

/**
 * A backend's way to store new jobs and queue them in one write, for a backend whose job store and
 * queue live on one server that can do both at once (one Redis): a lot of submissions then costs
 * one round trip instead of two, and no crash of the caller comes between storing a job and
 * queueing it. None by default: the service stores the lot (`JobStore.createMany`), then queues
 * each vendor's share.
 *
 * @category services
 */
export const StoreAndQueue = Context.Reference<StoreAndQueueWrite | undefined>(
  "@vendorflow/core/JobService/StoreAndQueue",
  { defaultValue: () => undefined }
)

/**
 * What a backend provides as {@link StoreAndQueue}. It applies only to the job store and queue it
 * was made for: where either is replaced (a store-only backend over this one, see
 * `Backend.withJobStore`), the service stores, then queues.
 *
 * @category services
 */
export interface StoreAndQueueWrite {
  readonly store: JobStore["Service"]
  readonly queue: JobQueue["Service"]
  /**
   * Stores each vendor's new jobs and queues them. Answers the shares whose queue write failed
   * after their jobs were stored (as with two writes, the service makes those jobs overdue at once,
   * and the sweeper queues them), or `undefined`, having written nothing, when the server cannot
   * do both at once (the service then stores, then queues). Fails as `JobStore.createMany` does
   * (`Duplicate` when a job exists already: that one is neither stored again nor queued).
   */
  readonly write: (
    lot: ReadonlyArray<readonly [vendor: string, jobs: ReadonlyArray<Job.Job>]>
  ) => Effect.Effect<ReadonlyArray<Unqueued> | undefined, JobStoreError>
}

/**
 * A vendor's stored jobs that a queue write failed to queue, and why.
 *
 * @category models
 */
export type Unqueued = readonly [vendor: string, jobs: ReadonlyArray<Job.Job>, error: JobQueueError]

// What the service's steps use, read once when it is made. Each step names in its type the parts
// it reads.
interface Services {
  readonly store: JobStore["Service"]
  readonly queue: JobQueue["Service"]
  readonly registry: VendorRegistry["Service"]
  readonly backlog: Backlog
  /** How long a pending job may wait in its queue before it is overdue (`SWEEP_PENDING_AFTER`). */
  readonly pendingAfter: Duration.Input
  /** The backend's one write that stores and queues new jobs, if it has one for this store and queue. */
  readonly storeAndQueue: StoreAndQueueWrite["write"] | undefined
  /** The service's `get`: the other steps read jobs through it. */
  readonly get: JobService["Service"]["get"]
  /** Where {@link submit} sends a submission without an idempotency key, to go with the turn's others. */
  readonly plainSubmissions: RequestResolver.RequestResolver<PlainSubmission>
}

/**
 * The job service over the store, queue, registry and cleaner in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const store = yield* JobStore
  const queue = yield* JobQueue
  const partial: Omit<Services, "plainSubmissions"> = {
    store,
    queue,
    registry: yield* VendorRegistry,
    backlog: { queue, limit: yield* maxBacklogConfig, readings: new Map() },
    pendingAfter: yield* Job.pendingAfterConfig,
    storeAndQueue: writeFor(yield* StoreAndQueue, { store, queue }),
    get: get(store)
  }
  const services: Services = { ...partial, plainSubmissions: plainSubmissionsOf(partial) }
  const receiveWebhook = yield* Webhook.make
  return JobService.of({
    submit: submit(services),
    submitMany: submitMany(services),
    get: services.get,
    getMany: getMany(store),
    list: store.list,
    retry: retry(services),
    receiveWebhook,
    awaitFinished: awaitFinished(services.get)
  })
})

/**
 * The job service; needs a store, a queue, a registry and a cleaner.
 *
 * @category layers
 */
export const layer = Layer.effect(JobService, make)

const writeFor = (
  provided: StoreAndQueueWrite | undefined,
  services: Pick<Services, "store" | "queue">
): Services["storeAndQueue"] =>
  provided !== undefined && provided.store === services.store && provided.queue === services.queue
    ? provided.write
    : undefined

// ─── submit ────────────────────────────────────────────────────────────────────────────────────

const submit = (services: Services) =>
  Effect.fn("JobService.submit")(function* (options: Parameters<JobService["Service"]["submit"]>[0]) {
    const { idempotencyKey, owner } = options
    if (idempotencyKey === undefined) {
      const job = yield* Effect.request(
        PlainSubmission({ submission: { ...options, traceparent: yield* currentTraceparent } }),
        services.plainSubmissions
      )
      yield* Effect.annotateCurrentSpan({ "job.id": job.id, "job.vendor": job.vendor })
      return job
    }
    const vendor = yield* services.registry.route(options.payload, options.vendor)
    const job = Job.makePending({
      // A NUL cannot occur in an HTTP header, so no owner's key can pass for another's.
      id: Job.jobIdFor(owner === undefined ? idempotencyKey : `${owner}\u0000${idempotencyKey}`),
      vendor: vendor.name,
      payload: options.payload,
      owner,
      traceparent: yield* currentTraceparent,
      now: new Date(yield* Clock.currentTimeMillis),
      pendingAfter: services.pendingAfter
    })
    yield* Effect.annotateCurrentSpan({ "job.id": job.id, "job.vendor": vendor.name })
    const seen = yield* services.store.get(job.id)
    if (Option.isSome(seen)) return yield* replay(services.get, { idempotencyKey, job })
    yield* checkBacklog(services.backlog, vendor.name)
    const created = yield* services.store.create(job).pipe(
      Effect.as(true),
      // Two requests with one key at once: the store lets one create the job; the other replays it.
      Effect.catchIf(
        (error) => error.reason === "Duplicate",
        () => Effect.succeed(false)
      )
    )
    if (!created) return yield* replay(services.get, { idempotencyKey, job })
    yield* enqueueStored(services, vendor.name, [job])
    countQueued(services.backlog, vendor.name, 1)
    yield* Metrics.count(Metrics.jobsCreated, { vendor: vendor.name })
    return job
  })

// A submission without an idempotency key, from `submit`, with the trace of the `submit` span
// that made it (the batch it goes with runs outside that span).
interface PlainSubmission extends Request.Request<Job.Job, UnknownVendor | Backlogged | JobStoreError | JobQueueError> {
  readonly submission: Submission & { readonly traceparent: string | undefined }
}
const PlainSubmission = Request.of<PlainSubmission>()

// The plain submissions made in one turn (an app awaiting many `submit`s at once) are stored and
// queued together, as `submitMany` does with a list: one store write and one queue write per
// vendor for the lot, where each alone takes two. Each keeps its own outcome.
const plainSubmissionsOf = (services: Omit<Services, "plainSubmissions">) =>
  RequestResolver.make<PlainSubmission>((entries) =>
    storeAndQueue(
      services,
      entries.map((entry) => entry.request.submission)
    ).pipe(
      Effect.match({
        onFailure: (error) => entries.forEach((entry) => entry.completeUnsafe(Exit.fail(error))),
        onSuccess: (outcomes) =>
          entries.forEach((entry, i) => {
            const outcome = outcomes[i]!
            entry.completeUnsafe(Result.isSuccess(outcome) ? Exit.succeed(outcome.success) : Exit.fail(outcome.failure))
          })
      })
    )
  )

const submitMany = (services: Services) =>
  Effect.fn("JobService.submitMany")(function* (submissions: ReadonlyArray<Submission>) {
    yield* Effect.annotateCurrentSpan({ "jobs.count": submissions.length })
    return yield* storeAndQueue(services, submissions)
  })

// Routes, stores and queues submissions without an idempotency key: one store write for them all
// and one queue write per vendor. Inside the span of `submit` or `submitMany`, whose trace the
// jobs join. A vendor's backlog is checked once for its share of the lot.
const storeAndQueue = Effect.fnUntraced(function* (
  services: Omit<Services, "plainSubmissions">,
  submissions: ReadonlyArray<Submission & { readonly traceparent?: string | undefined }>
) {
  const spanTraceparent = yield* currentTraceparent
  const now = new Date(yield* Clock.currentTimeMillis)
  const outcomes: Array<Result.Result<Job.Job, UnknownVendor | Backlogged>> = []
  // Each vendor's jobs, and where their outcomes are.
  const byVendor = new Map<string, { readonly jobs: Array<Job.Job>; readonly at: Array<number> }>()
  for (const submission of submissions) {
    const vendor = yield* Effect.result(services.registry.route(submission.payload, submission.vendor))
    if (Result.isFailure(vendor)) {
      outcomes.push(Result.fail(vendor.failure))
      continue
    }
    const { name } = vendor.success
    const job = Job.makePending({
      vendor: name,
      payload: submission.payload,
      owner: submission.owner,
      // A `submit`'s own span, else the span the lot is submitted in.
      traceparent: "traceparent" in submission ? submission.traceparent : spanTraceparent,
      now,
      pendingAfter: services.pendingAfter
    })
    const share = byVendor.get(name) ?? { jobs: [], at: [] }
    byVendor.set(name, share)
    share.jobs.push(job)
    share.at.push(outcomes.length)
    outcomes.push(Result.succeed(job))
  }
  const accepted: Array<readonly [vendor: string, jobs: ReadonlyArray<Job.Job>]> = []
  for (const [vendor, { jobs, at }] of byVendor) {
    const refused = yield* checkBacklog(services.backlog, vendor).pipe(
      Effect.as(undefined),
      Effect.catchTag("Backlogged", Effect.succeed)
    )
    if (refused === undefined) accepted.push([vendor, jobs])
    else for (const index of at) outcomes[index] = Result.fail(refused)
  }
  if (accepted.length === 0) return outcomes
  const unqueued = services.storeAndQueue === undefined ? undefined : yield* services.storeAndQueue(accepted)
  if (unqueued === undefined) {
    yield* services.store.createMany(accepted.flatMap(([, jobs]) => jobs))
    yield* Effect.forEach(accepted, ([vendor, jobs]) => enqueueStored(services, vendor, jobs), {
      concurrency: "unbounded",
      discard: true
    })
  } else {
    yield* Effect.forEach(unqueued, (share) => queueWriteFailed(services, share), { discard: true })
  }
  for (const [vendor, jobs] of accepted) {
    countQueued(services.backlog, vendor, jobs.length)
    yield* Metrics.count(Metrics.jobsCreated, { vendor }, jobs.length)
  }
  return outcomes
})

// A repeat of an idempotent request: the first job when it is the same request, else a conflict.
const replay = (get: Services["get"], options: { readonly idempotencyKey: string; readonly job: Job.Job }) =>
  Effect.flatMap(get(options.job.id), (existing) =>
    existing.vendor === options.job.vendor && JSON.stringify(existing.payload) === JSON.stringify(options.job.payload)
      ? Effect.succeed(existing)
      : Effect.fail(new IdempotencyConflict({ idempotencyKey: options.idempotencyKey, id: existing.id }))
  ).pipe(
    Effect.catchTag("JobNotFound", () => Effect.die(new Error(`job ${options.job.id} vanished after a duplicate`)))
  )

// Queues stored pending jobs of one vendor. A queue write that fails (or whose answer is lost
// after it ran) does not undo the store's: the jobs are accepted all the same and will run. They
// are made overdue at once, so the next sweep queues them; should that write fail too, they are
// overdue `pendingAfter` after they were made. A job queued twice runs once.
const enqueueStored = (services: Pick<Services, "store" | "queue">, vendor: string, jobs: ReadonlyArray<Job.Job>) =>
  services.queue
    .enqueueMany(
      vendor,
      jobs.map((job) => job.id)
    )
    .pipe(Effect.catch((error) => queueWriteFailed(services, [vendor, jobs, error])))

// Stored pending jobs whose queue write failed: made overdue at once, for the next sweep to queue.
const queueWriteFailed = Effect.fnUntraced(function* (services: Pick<Services, "store">, unqueued: Unqueued) {
  const [vendor, jobs, error] = unqueued
  yield* Effect.logWarning(
    `queueing ${jobs.length} stored ${vendor} job(s) failed; the sweeper will queue them: ${error.message}`
  )
  const now = new Date(yield* Clock.currentTimeMillis).toISOString()
  yield* Effect.forEach(
    jobs,
    (job) =>
      services.store.transition({
        id: job.id,
        from: "pending",
        to: "pending",
        expectedVersion: job.version,
        set: { overdueAt: now }
      }),
    { concurrency: "unbounded", discard: true }
  ).pipe(Effect.catch((stored) => Effect.logWarning(`marking them overdue failed too: ${stored.message}`)))
})

// ─── the backlog check ─────────────────────────────────────────────────────────────────────────

// Each vendor's backlog as last read from the queue; a reading is reused for
// `backlogReadingTtlMillis`, so that checking it costs `POST /jobs` no round trip.
interface Backlog {
  readonly queue: JobQueue["Service"]
  readonly limit: number
  readonly readings: Map<string, { readonly depth: number; readonly at: number }>
}

const checkBacklog = Effect.fnUntraced(function* (backlog: Backlog, vendor: string) {
  const now = yield* Clock.currentTimeMillis
  const cached = backlog.readings.get(vendor)
  const depth =
    cached !== undefined && now - cached.at < backlogReadingTtlMillis
      ? cached.depth
      : yield* backlog.queue.depth(vendor)
  if (cached === undefined || cached.depth !== depth) backlog.readings.set(vendor, { depth, at: now })
  if (depth >= backlog.limit) return yield* new Backlogged({ vendor, depth, limit: backlog.limit })
})

// Counts jobs this process just queued into the reading, so a burst cannot overshoot the limit.
const countQueued = (backlog: Backlog, vendor: string, jobs: number) => {
  const cached = backlog.readings.get(vendor)
  if (cached !== undefined) backlog.readings.set(vendor, { depth: cached.depth + jobs, at: cached.at })
}

// ─── read ──────────────────────────────────────────────────────────────────────────────────────

// The stored job as its reader may see it: another owner's is not found.
const visible = <A extends Job.JobSummary>(
  job: Option.Option<A>,
  { id, owner }: Read
): Result.Result<A, Job.JobNotFound> =>
  Option.isNone(job) || (owner !== undefined && job.value.owner !== owner)
    ? Result.fail(new Job.JobNotFound({ id }))
    : Result.succeed(job.value)

const get = (store: JobStore["Service"]) =>
  Effect.fn("JobService.get")(function* (id: Job.JobId, owner?: string | undefined) {
    return yield* Effect.fromResult(visible(yield* store.get(id), { id, owner }))
  })

const getMany = (store: JobStore["Service"]) =>
  Effect.fn("JobService.getMany")(function* (reads: ReadonlyArray<Read>) {
    yield* Effect.annotateCurrentSpan({ "jobs.count": reads.length })
    const jobs = yield* store.getMany(reads.map((read) => read.id))
    return reads.map((read, i) => visible(jobs[i] ?? Option.none(), read))
  })

// ─── retry, await ──────────────────────────────────────────────────────────────────────────────

const retry = (services: Pick<Services, "store" | "queue" | "get" | "pendingAfter">) =>
  Effect.fn("JobService.retry")(function* (id: Job.JobId, owner?: string | undefined) {
    const job = yield* services.get(id, owner)
    if (job.status !== "failed") return yield* new NotRetryable({ id, status: job.status })
    const reset = yield* services.store.transition({
      id,
      from: "failed",
      to: "pending",
      expectedVersion: job.version,
      set: {
        attempts: 0,
        run: job.run + 1,
        overdueAt: Job.pendingOverdueAt(yield* Clock.currentTimeMillis, services.pendingAfter)
      },
      unset: ["error", "nextRetryAt", "awaitingCallback"]
    })
    // Someone else retried it at the same moment: theirs stands.
    if (Option.isNone(reset)) return yield* services.get(id, owner)
    yield* enqueueStored(services, job.vendor, [reset.value])
    return reset.value
  })

const awaitFinished = (get: Services["get"]) =>
  Effect.fn("JobService.awaitFinished")(function* (id: Job.JobId) {
    return yield* get(id).pipe(
      Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: (job) => Job.isFinished(job.status) })
    )
  })

/**
 * The job: what a client asked for, which vendor serves it, where it stands and what came back.
 *
 * Status moves only along {@link transitions}; every store checks a change against it through
 * {@link canTransition}, so the rule lives in one place.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Config, Duration, Schema, Struct } from "effect"

/**
 * A job's id: a UUID v4, also handed to the vendor as its idempotency key.
 *
 * @category models
 */
export const JobId = Schema.String.pipe(Schema.check(Schema.isUUID(4)), Schema.brand("JobId"))

/** @category models */
export type JobId = typeof JobId.Type

/**
 * A fresh random job id.
 *
 * @category constructors
 */
export const makeJobId = (): JobId => JobId.make(crypto.randomUUID())

/**
 * The job id that an idempotency key stands for: a UUID v4 in form, derived from a SHA-256 of the
 * key, so that every server process maps the same key to the same job without asking anyone.
 *
 * @category constructors
 */
export const jobIdFor = (idempotencyKey: string): JobId => {
  const hex = createHash("sha256").update(`vendorflow:idempotency:${idempotencyKey}`).digest("hex")
  const variant = "89ab"[Number.parseInt(hex[16] ?? "0", 16) % 4] ?? "8"
  return JobId.make(
    `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
  )
}

/**
 * The four public statuses. Finer detail (attempts, awaiting a callback) is in other fields.
 *
 * @category models
 */
export const JobStatus = Schema.Literals(["pending", "processing", "complete", "failed"])

/** @category models */
export type JobStatus = typeof JobStatus.Type

/**
 * Which status may follow which. `processing → pending` hands a job back to the queue (a retry or a
 * graceful shutdown); `failed → pending` is an operator's retry; `pending → complete` is an async
 * vendor's callback that arrives while the job waits to be sent again (after a callback deadline, a
 * retry or a hand-back): the vendor's answer is the job's result all the same.
 *
 * @category transitions
 */
export const transitions: { readonly [From in JobStatus]: ReadonlyArray<JobStatus> } = {
  pending: ["processing", "complete", "failed"],
  processing: ["complete", "failed", "pending"],
  complete: [],
  failed: ["pending"]
}

/**
 * Whether `to` may follow `from`.
 *
 * @category transitions
 */
export const canTransition = (from: JobStatus, to: JobStatus): boolean => transitions[from].includes(to)

/**
 * Whether a status is final: the job will not change again on its own.
 *
 * @category transitions
 */
export const isFinished = (status: JobStatus): boolean => status === "complete" || status === "failed"

/**
 * Any JSON object: the payload a client posts.
 *
 * @category models
 */
export const JsonObject = Schema.Record(Schema.String, Schema.Json)

/** @category models */
export type JsonObject = typeof JsonObject.Type

const isoTimestampPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/**
 * A time as jobs carry it (`createdAt`, `updatedAt`): `Date.prototype.toISOString`'s form, to the
 * millisecond, in UTC, in years 0000-9999. Its text sorts in time order, which the stores' listings
 * rely on.
 *
 * @category models
 */
export const IsoTimestamp = Schema.String.check(
  Schema.makeFilter(
    (text) => {
      const millis = isoTimestampPattern.test(text) ? Date.parse(text) : Number.NaN
      // A pattern that matches can still name no day (February 30th): then it does not read back.
      return Number.isFinite(millis) && new Date(millis).toISOString() === text
    },
    { expected: "a timestamp such as 2026-01-02T03:04:05.678Z" }
  )
)

/**
 * How deeply JSON may nest wherever it comes in: a client's payload, a vendor's answer, a webhook.
 * `JSON.parse` takes any depth, but what comes in is stored, queued and sent on, checked by
 * recursive schemas, and MongoDB documents stop at 100 levels.
 *
 * @category models
 */
export const maxJsonDepth = 64

/**
 * Whether a parsed JSON value nests deeper than `limit` (default {@link maxJsonDepth}), found
 * without recursion, since the value may be hostile.
 *
 * @category models
 */
export const nestsDeeperThan = (value: unknown, limit: number = maxJsonDepth): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop() ?? [undefined, 0]
    if (typeof current !== "object" || current === null) continue
    if (depth > limit) return true
    for (const child of Object.values(current)) stack.push([child, depth + 1])
  }
  return false
}

/**
 * Why a job failed: a machine-readable reason and a message for people.
 *
 * @category models
 */
export const JobFailure = Schema.Struct({
  reason: Schema.String,
  message: Schema.String
})

/** @category models */
export type JobFailure = typeof JobFailure.Type

/**
 * A job record. `version` grows by one on every change and is what compare-and-set compares.
 *
 * @category models
 */
export class Job extends Schema.Class<Job>("@vendorflow/core/Job")({
  id: JobId,
  vendor: Schema.String,
  status: JobStatus,
  payload: JsonObject,
  /** Vendor calls started in the current run; an operator's retry starts a new run at 0. */
  attempts: Schema.Int,
  /**
   * The run: 1 for a new job, one more at each operator's retry, never reset. Callback tokens name
   * it, so a callback from a call of an earlier run cannot complete this one.
   */
  run: Schema.Int,
  version: Schema.Int,
  result: Schema.optionalKey(Schema.Json),
  error: Schema.optionalKey(JobFailure),
  awaitingCallback: Schema.optionalKey(Schema.Boolean),
  /** When a job waiting for a retry is due (ISO 8601); absent otherwise. */
  nextRetryAt: Schema.optionalKey(Schema.String),
  /**
   * When an unfinished job is overdue (ISO 8601): past it, nothing is moving it on and the sweeper
   * does. For a `processing` job it is the lease of the attempt that holds it (renewed while the
   * attempt runs) or, awaiting a callback, the callback deadline; for a `pending` job, when it is
   * due in the queue plus {@link defaultPendingAfter}. Finished jobs have none.
   */
  overdueAt: Schema.optionalKey(Schema.String),
  /** The name of the API key that created the job (`Access`); absent when keys are off. */
  owner: Schema.optionalKey(Schema.String),
  /**
   * The W3C `traceparent` of the span that submitted the job: the worker's spans and the webhook's
   * completion join that trace.
   */
  traceparent: Schema.optionalKey(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String
}) {}

/**
 * How long a pending job may wait to be taken from its queue, once due, before the sweeper queues
 * it again (it may never have reached the queue). Longer than jobs normally wait in a backlog: a job
 * queued again is delivered twice, which costs a read, not a vendor call.
 *
 * @category constants
 */
export const defaultPendingAfter = Duration.minutes(10)

/**
 * {@link defaultPendingAfter} from `SWEEP_PENDING_AFTER`: read by everything that makes a job
 * pending (the API, the engine) and by the sweeper.
 *
 * @category config
 */
export const pendingAfterConfig = Config.Duration("SWEEP_PENDING_AFTER").pipe(Config.withDefault(defaultPendingAfter))

/**
 * When a job that is pending from `due` on is overdue: `due` plus `pendingAfter`, as ISO 8601.
 *
 * @category constructors
 */
export const pendingOverdueAt = (due: number, pendingAfter: Duration.Input = defaultPendingAfter): string =>
  new Date(due + Duration.toMillis(Duration.fromInputUnsafe(pendingAfter))).toISOString()

/**
 * A new pending job, overdue {@link defaultPendingAfter} (or `pendingAfter`) from `now`.
 *
 * @category constructors
 */
export const makePending = (options: {
  readonly id?: JobId | undefined
  readonly vendor: string
  readonly payload: JsonObject
  readonly owner?: string | undefined
  readonly traceparent?: string | undefined
  readonly now: Date
  readonly pendingAfter?: Duration.Input | undefined
}): Job => {
  const at = options.now.toISOString()
  return new Job({
    id: options.id ?? makeJobId(),
    vendor: options.vendor,
    status: "pending",
    payload: options.payload,
    attempts: 0,
    run: 1,
    version: 0,
    ...(options.owner === undefined ? {} : { owner: options.owner }),
    ...(options.traceparent === undefined ? {} : { traceparent: options.traceparent }),
    overdueAt: pendingOverdueAt(options.now.getTime(), options.pendingAfter),
    createdAt: at,
    updatedAt: at
  })
}

/**
 * A job without its payload: what the listings and the reads for the API carry. No answer shows the
 * payload, which may be as large as a request body, so the stores leave it out of these reads.
 *
 * @category models
 */
export const JobSummary = Schema.Struct(Struct.omit(Job.fields, ["payload"]))

/** @category models */
export type JobSummary = typeof JobSummary.Type

/**
 * A job's {@link JobSummary}: every field but the payload.
 *
 * @category constructors
 */
export const summaryOf = (job: Job): JobSummary => {
  const { payload: _, ...summary } = job
  return summary
}

/**
 * No job has this id (or none its reader may see: another owner's, or another vendor's than the
 * webhook that names it).
 *
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `no job with id ${this.id}`
  }
}

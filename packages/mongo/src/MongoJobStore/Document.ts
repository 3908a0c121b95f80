/**
 * How a job is stored in MongoDB: the document's shape, the codecs between it and core's `Job`, and
 * the compare-and-set filter and update of a transition. Re-exported by `MongoJobStore`.
 *
 * @since 0.1.0
 */
import { Job, JobStore } from "@vendorflow/core"
import { Effect, Schema, SchemaTransformation, Struct } from "effect"
import type { Filter, UpdateFilter } from "mongodb"

/**
 * A job as stored: what decodes from (and encodes to) a MongoDB document.
 *
 * @category models
 */
export const StoredJob = Schema.Struct({
  _id: Schema.String,
  vendor: Schema.String,
  status: Job.JobStatus,
  payload_json: Schema.fromJsonString(Job.JsonObject),
  attempts: Schema.Int,
  /** Absent in documents written before runs were counted: run 1. */
  run: Schema.optionalKey(Schema.Int),
  version: Schema.Int,
  result_json: Schema.optionalKey(Schema.fromJsonString(Schema.Json)),
  error: Schema.optionalKey(Job.JobFailure),
  awaiting_callback: Schema.optionalKey(Schema.Boolean),
  next_retry_at: Schema.optionalKey(Schema.String),
  overdue_at: Schema.optionalKey(Schema.Date),
  owner: Schema.optionalKey(Schema.String),
  traceparent: Schema.optionalKey(Schema.String),
  created_at: Schema.Date,
  updated_at: Schema.Date,
  finished_at: Schema.optionalKey(Schema.Date)
})

/**
 * The document in the collection, as the driver reads and writes it.
 *
 * @category models
 */
export type JobDocument = typeof StoredJob.Encoded

/**
 * A job's summary as stored: the document read without `payload_json` ({@link summaryProjection}).
 *
 * @category models
 */
export const StoredSummary = StoredJob.mapFields(Struct.omit(["payload_json"]))

/**
 * What the reads that answer the API leave out of each document.
 *
 * @category constants
 */
export const summaryProjection = { payload_json: 0 } as const

const summaryOfDocument = (doc: typeof StoredSummary.Type) => ({
  id: doc._id,
  vendor: doc.vendor,
  status: doc.status,
  attempts: doc.attempts,
  run: doc.run ?? 1,
  version: doc.version,
  ...("result_json" in doc ? { result: doc.result_json } : {}),
  ...(doc.error === undefined ? {} : { error: doc.error }),
  ...(doc.awaiting_callback === undefined ? {} : { awaitingCallback: doc.awaiting_callback }),
  ...(doc.next_retry_at === undefined ? {} : { nextRetryAt: doc.next_retry_at }),
  ...(doc.overdue_at === undefined ? {} : { overdueAt: doc.overdue_at.toISOString() }),
  ...(doc.owner === undefined ? {} : { owner: doc.owner }),
  ...(doc.traceparent === undefined ? {} : { traceparent: doc.traceparent }),
  createdAt: doc.created_at.toISOString(),
  updatedAt: doc.updated_at.toISOString()
})

const documentOfSummary = (job: typeof Job.JobSummary.Encoded): typeof StoredSummary.Type => ({
  _id: job.id,
  vendor: job.vendor,
  status: job.status,
  attempts: job.attempts,
  run: job.run,
  version: job.version,
  ...("result" in job ? { result_json: job.result } : {}),
  ...(job.error === undefined ? {} : { error: { reason: job.error.reason, message: job.error.message } }),
  ...(job.awaitingCallback === undefined ? {} : { awaiting_callback: job.awaitingCallback }),
  ...(job.nextRetryAt === undefined ? {} : { next_retry_at: job.nextRetryAt }),
  ...(job.overdueAt === undefined ? {} : { overdue_at: new Date(job.overdueAt) }),
  ...(job.owner === undefined ? {} : { owner: job.owner }),
  ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
  created_at: new Date(job.createdAt),
  updated_at: new Date(job.updatedAt),
  ...(Job.isFinished(job.status) ? { finished_at: new Date(job.updatedAt) } : {})
})

/**
 * The codec between a document and a {@link Job.Job}: decoding checks the document's shape and the
 * job's, encoding writes the JSON texts and the dates. `finished_at` is derived from the status.
 *
 * @category codecs
 */
export const JobFromDocument = StoredJob.pipe(
  Schema.decodeTo(
    Job.Job,
    SchemaTransformation.transform({
      decode: (doc) => ({ ...summaryOfDocument(doc), payload: doc.payload_json }),
      encode: (job) => ({ ...documentOfSummary(job), payload_json: job.payload })
    })
  )
)

/**
 * The codec between a document read without its payload and a {@link Job.JobSummary}.
 *
 * @category codecs
 */
export const SummaryFromDocument = StoredSummary.pipe(
  Schema.decodeTo(
    Job.JobSummary,
    SchemaTransformation.transform({ decode: summaryOfDocument, encode: documentOfSummary })
  )
)

/**
 * The document to insert for a new job. Fails when the job's timestamps are not dates.
 *
 * @category codecs
 */
export const toDocument = Schema.encodeEffect(JobFromDocument)

/**
 * The job a stored document holds. Fails when the document does not have the stored shape.
 *
 * @category codecs
 */
export const fromDocument = Schema.decodeUnknownEffect(JobFromDocument)

/**
 * The summary a document read with {@link summaryProjection} holds.
 *
 * @category codecs
 */
export const summaryFromDocument = Schema.decodeUnknownEffect(SummaryFromDocument)

/**
 * The compare-and-set filter of a transition: the job, in the expected status (and version, if given).
 *
 * @category transitions
 */
export const transitionFilter = (transition: JobStore.Transition): Filter<JobDocument> => ({
  _id: transition.id,
  status: transition.from,
  ...(transition.expectedVersion === undefined ? {} : { version: transition.expectedVersion })
})

/**
 * The update of a transition, matching the memory store's `applyTransition`: the new status and
 * fields, `updated_at = now`, `version + 1`; a field both set and unset ends up unset (and a
 * finished job loses `overdue_at`, see `JobStore.unsetFields`). `finished_at` follows the status so
 * the TTL index only ever sees finished jobs.
 *
 * @category transitions
 */
export const transitionUpdate = (transition: JobStore.Transition, now: Date): UpdateFilter<JobDocument> => {
  const set = transition.set ?? {}
  const unset = JobStore.unsetFields(transition)
  const finished = Job.isFinished(transition.to)
  const $set = {
    status: transition.to,
    updated_at: now,
    ...(set.attempts === undefined ? {} : { attempts: set.attempts }),
    ...(set.run === undefined ? {} : { run: set.run }),
    // `result` may be `null`, a value to store; only a missing key means "leave it".
    ...("result" in set && set.result !== undefined && !unset.has("result")
      ? { result_json: JSON.stringify(set.result) }
      : {}),
    ...(set.error === undefined || unset.has("error")
      ? {}
      : { error: { reason: set.error.reason, message: set.error.message } }),
    ...(set.awaitingCallback === undefined || unset.has("awaitingCallback")
      ? {}
      : { awaiting_callback: set.awaitingCallback }),
    ...(set.nextRetryAt === undefined || unset.has("nextRetryAt") ? {} : { next_retry_at: set.nextRetryAt }),
    ...(set.overdueAt === undefined || unset.has("overdueAt") ? {} : { overdue_at: new Date(set.overdueAt) }),
    ...(finished ? { finished_at: now } : {})
  }
  const $unset = {
    ...(unset.has("result") ? { result_json: "" as const } : {}),
    ...(unset.has("error") ? { error: "" as const } : {}),
    ...(unset.has("awaitingCallback") ? { awaiting_callback: "" as const } : {}),
    ...(unset.has("nextRetryAt") ? { next_retry_at: "" as const } : {}),
    ...(unset.has("overdueAt") ? { overdue_at: "" as const } : {}),
    ...(finished ? {} : { finished_at: "" as const })
  }
  // An empty `$unset` is refused by MongoDB before 5.0, so it is left out rather than sent empty.
  return Object.keys($unset).length === 0 ? { $set, $inc: { version: 1 } } : { $set, $unset, $inc: { version: 1 } }
}

// A document of the wrong shape would be read the same way again: `Rejected`, and the message names
// the job and the fault so an operator can repair the document.
const notStoredShape = (id: string) => (error: Schema.SchemaError) =>
  new JobStore.JobStoreError({
    reason: "Rejected",
    message: `MongoDB: the document of job ${id} does not have the stored shape: ${error.message}`
  })

/** The job a document read back holds; a document of the wrong shape is a `Rejected` store error. */
export const decodeStored = (id: string, raw: unknown) => fromDocument(raw).pipe(Effect.mapError(notStoredShape(id)))
/** The summary a document read without its payload holds, as {@link decodeStored}. */
export const decodeSummary = (id: string, raw: unknown) =>
  summaryFromDocument(raw).pipe(Effect.mapError(notStoredShape(id)))

/**
 * The API's wire schemas (snake_case): a new job's body and the answers of the job, webhook and
 * health endpoints, and how a stored job becomes the view clients see. Re-exported by `Api`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { traceIdOf } from "../internal/traceContext.ts"
import * as Job from "../Job.ts"
import * as Workers from "../Workers.ts"

/**
 * A new job's body: any JSON object. An optional `vendor` property picks the vendor.
 *
 * @category schemas
 */
export const JobPayload = Schema.StructWithRest(
  Schema.Struct({
    vendor: Schema.optionalKey(
      Schema.String.annotate({
        description: "The vendor to serve this job; by default the server's routing policy picks one."
      })
    )
  }),
  [Schema.Record(Schema.String, Schema.Json)]
).annotate({
  identifier: "JobPayload",
  description: "Any JSON object; it is handed to the vendor as it is."
})

/** @category schemas */
export type JobPayload = typeof JobPayload.Type

/**
 * The answer to `POST /jobs`: the new job's id.
 *
 * @category schemas
 */
export const Submitted = Schema.Struct({
  request_id: Job.JobId
}).annotate({ identifier: "Submitted" })

/** @category schemas */
export type Submitted = typeof Submitted.Type

/**
 * A job as clients see it.
 *
 * @category schemas
 */
export const JobView = Schema.Struct({
  request_id: Job.JobId,
  status: Job.JobStatus,
  vendor: Schema.String,
  result: Schema.optionalKey(Schema.Json),
  error: Schema.optionalKey(Job.JobFailure),
  awaiting_callback: Schema.optionalKey(Schema.Boolean),
  /** The id of the trace the job's spans join (OTLP, when tracing is on). */
  trace_id: Schema.optionalKey(Schema.String),
  next_retry_at: Schema.optionalKey(Schema.String),
  attempts: Schema.Int,
  created_at: Schema.String,
  updated_at: Schema.String
}).annotate({ identifier: "JobView" })

/** @category schemas */
export type JobView = typeof JobView.Type

const traceIdView = (traceparent: string | undefined): { readonly trace_id?: string } => {
  const traceId = traceIdOf(traceparent)
  return traceId === undefined ? {} : { trace_id: traceId }
}

/**
 * The client's view of a stored job.
 *
 * @category schemas
 */
export const toJobView = (job: Job.JobSummary): JobView => ({
  request_id: job.id,
  status: job.status,
  vendor: job.vendor,
  ...(job.result === undefined ? {} : { result: job.result }),
  ...(job.error === undefined ? {} : { error: job.error }),
  ...(job.awaitingCallback === undefined ? {} : { awaiting_callback: job.awaitingCallback }),
  ...traceIdView(job.traceparent),
  ...(job.nextRetryAt === undefined ? {} : { next_retry_at: job.nextRetryAt }),
  attempts: job.attempts,
  created_at: job.createdAt,
  updated_at: job.updatedAt
})

/**
 * A page of jobs, and the cursor of the next page (absent on the last).
 *
 * @category schemas
 */
export const JobList = Schema.Struct({
  jobs: Schema.Array(JobView),
  next_cursor: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "JobList" })

/** @category schemas */
export type JobList = typeof JobList.Type

/**
 * What an async vendor posts to its webhook, as the reference vendors send it. The bytes are
 * verified and parsed by the vendor's adapter, so another vendor's shape is accepted too.
 *
 * @category schemas
 */
export const WebhookBody = Schema.Struct({
  job_id: Schema.String,
  data: Schema.Json
}).annotate({ identifier: "WebhookBody" })

/**
 * The answer to `GET /health`.
 *
 * @category schemas
 */
export const Health = Schema.Struct({
  status: Schema.Literals(["ok", "degraded"]),
  vendors: Schema.Array(Schema.String),
  /** Each vendor's circuit: `Closed`, `Open` (its jobs wait), `HalfOpen` (a probe is out), or `Unknown`. */
  circuits: Schema.Record(Schema.String, Schema.String),
  /** The workers whose heartbeat is within its TTL (`WORKER_HEARTBEAT_INTERVAL`, 15 s), latest first. */
  workers: Schema.Array(Workers.WorkerBeat),
  checks: Schema.Record(
    Schema.String,
    Schema.Union([
      Schema.Struct({ status: Schema.Literal("up"), millis: Schema.Number }),
      Schema.Struct({ status: Schema.Literal("down"), error: Schema.String })
    ])
  )
}).annotate({ identifier: "Health" })

/** @category schemas */
export type Health = typeof Health.Type

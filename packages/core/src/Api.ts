/**
 * The HTTP API contract: endpoints, wire schemas (snake_case) and the RFC 9457 problems each
 * endpoint can answer with. The server implements it and {@link ApiClient} derives a typed client
 * from it, so it depends on `effect` only.
 *
 * Every error, from a malformed id to an unknown route, is one `application/problem+json` body
 * `{ type, title, status, detail }`, plus extension members where they help (`errors`, `vendor`,
 * `known_vendors`, `max_bytes`).
 *
 * @since 0.1.0
 */
import { Context, Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiError,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  OpenApi
} from "effect/http-api"
import type * as Access from "./Access.ts"
import { traceIdOf } from "./internal/traceContext.ts"
import * as Job from "./Job.ts"
import type * as JobStore from "./JobStore.ts"
import * as Stats from "./Stats.ts"
import * as Workers from "./Workers.ts"

/**
 * The API's version in OpenAPI; a test keeps it equal to `@vendorflow/core`'s package version.
 *
 * @category constants
 */
export const version = "0.1.0"

/**
 * Where every problem `type` URI starts; a problem's type names its kind for machines.
 *
 * @category constants
 */
export const problemTypePrefix = "urn:vendorflow:problem:"

// ---------------------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------------------

/**
 * One failed check of a request value: where (`["params", "id"]`) and why.
 *
 * @category problems
 */
export const Issue = Schema.Struct({
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
  message: Schema.String
})

/**
 * 400: a path parameter, query parameter or header failed validation, e.g. a job id that is not a
 * UUID v4. `errors` lists each failed check.
 *
 * @category problems
 */
export class InvalidRequest extends HttpApiError.Problem<InvalidRequest>()(
  "InvalidRequest",
  {
    type: `${problemTypePrefix}invalid-request`,
    status: 400,
    title: "Invalid request"
  },
  {
    detail: Schema.String,
    errors: Schema.optionalKey(Schema.Array(Issue))
  }
) {}

/**
 * 400: the body is not well-formed JSON (or could not be read).
 *
 * @category problems
 */
export class MalformedJson extends HttpApiError.Problem<MalformedJson>()(
  "MalformedJson",
  {
    type: `${problemTypePrefix}malformed-json`,
    status: 400,
    title: "Malformed JSON"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * 400: a correctly signed webhook whose body the vendor's adapter could not understand.
 *
 * @category problems
 */
export class MalformedWebhook extends HttpApiError.Problem<MalformedWebhook>()(
  "MalformedWebhook",
  {
    type: `${problemTypePrefix}malformed-webhook`,
    status: 400,
    title: "Malformed webhook"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * 401: a webhook without a signature, with a wrong one, or signed too long ago.
 *
 * @category problems
 */
export class InvalidSignature extends HttpApiError.Problem<InvalidSignature>()(
  "InvalidSignature",
  {
    type: `${problemTypePrefix}invalid-signature`,
    status: 401,
    title: "Invalid webhook signature"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * 401: the API has keys (`API_KEYS`) and the request carries none, or one that is not valid.
 * Answered with `WWW-Authenticate: Bearer`.
 *
 * @category problems
 */
export class Unauthorized extends HttpApiError.Problem<Unauthorized>()(
  "Unauthorized",
  {
    type: `${problemTypePrefix}unauthorized`,
    status: 401,
    title: "API key required"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * The `WWW-Authenticate` challenge of a 401 {@link Unauthorized}.
 *
 * @category problems
 */
export const bearerChallenge = 'Bearer realm="vendorflow"'

/**
 * 401 as declared on endpoints: {@link Unauthorized} with `WWW-Authenticate: Bearer`.
 *
 * @category problems
 */
export const UnauthorizedWithChallenge = Unauthorized.pipe(
  HttpApiSchema.encodeToWithHeaders(
    { body: Unauthorized, headers: { "www-authenticate": Schema.String } },
    {
      decode: ({ body }) => body,
      encode: (problem) => ({ body: problem, headers: { "www-authenticate": bearerChallenge } })
    }
  )
)

/**
 * 429: the API key used up its requests for the window (`API_RATE_LIMIT`); retry after
 * `retry_after` seconds.
 *
 * @category problems
 */
export class TooManyRequests extends HttpApiError.Problem<TooManyRequests>()(
  "TooManyRequests",
  {
    type: `${problemTypePrefix}too-many-requests`,
    status: 429,
    title: "Too many requests"
  },
  {
    detail: Schema.String,
    limit: Schema.Int,
    window_seconds: Schema.Int,
    retry_after: Schema.Int
  }
) {}

/**
 * The `RateLimit-Policy` and `RateLimit` headers (IETF draft "RateLimit header fields for HTTP")
 * for where a key stands: `"default";q=<limit>;w=<window s>` and `"default";r=<remaining>;t=<reset s>`.
 * Every answer to a keyed request carries them.
 *
 * @category problems
 */
export const rateLimitHeaders = (
  quota: Access.Quota
): { readonly "ratelimit-policy": string; readonly ratelimit: string } => ({
  "ratelimit-policy": `"default";q=${quota.limit};w=${quota.windowSeconds}`,
  ratelimit: `"default";r=${quota.remaining};t=${quota.resetSeconds}`
})

/**
 * The `RateLimit` headers of a 429 {@link TooManyRequests}: nothing left until the window resets.
 *
 * @category problems
 */
export const exhaustedRateLimitHeaders = (problem: TooManyRequests) =>
  rateLimitHeaders({
    limit: problem.limit,
    remaining: 0,
    resetSeconds: problem.retry_after,
    windowSeconds: problem.window_seconds
  })

/**
 * 429 as declared on endpoints: {@link TooManyRequests} with `Retry-After` and the `RateLimit`
 * headers.
 *
 * @category problems
 */
export const TooManyRequestsWithHeaders = TooManyRequests.pipe(
  HttpApiSchema.encodeToWithHeaders(
    {
      body: TooManyRequests,
      headers: { "retry-after": Schema.NumberFromString, "ratelimit-policy": Schema.String, ratelimit: Schema.String }
    },
    {
      decode: ({ body }) => body,
      encode: (problem) => ({
        body: problem,
        headers: { "retry-after": problem.retry_after, ...exhaustedRateLimitHeaders(problem) }
      })
    }
  )
)

/**
 * 404: no job has this id.
 *
 * @category problems
 */
export class JobNotFound extends HttpApiError.Problem<JobNotFound>()(
  "JobNotFound",
  {
    type: `${problemTypePrefix}job-not-found`,
    status: 404,
    title: "Job not found"
  },
  {
    detail: Schema.String,
    job_id: Schema.String
  }
) {}

/**
 * 404: a webhook for a vendor that is not loaded (or takes no webhooks).
 *
 * @category problems
 */
export class VendorNotFound extends HttpApiError.Problem<VendorNotFound>()(
  "VendorNotFound",
  {
    type: `${problemTypePrefix}vendor-not-found`,
    status: 404,
    title: "Vendor not found"
  },
  {
    detail: Schema.String,
    vendor: Schema.String,
    known_vendors: Schema.Array(Schema.String)
  }
) {}

/**
 * 404: no route has this path. Answered by the server for any path outside the API.
 *
 * @category problems
 */
export class RouteNotFound extends HttpApiError.Problem<RouteNotFound>()(
  "RouteNotFound",
  {
    type: `${problemTypePrefix}route-not-found`,
    status: 404,
    title: "Not found"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * 405: the path exists but not for this method; the response's `Allow` header lists the methods.
 *
 * @category problems
 */
export class MethodNotAllowed extends HttpApiError.Problem<MethodNotAllowed>()(
  "MethodNotAllowed",
  {
    type: `${problemTypePrefix}method-not-allowed`,
    status: 405,
    title: "Method not allowed"
  },
  {
    detail: Schema.String,
    allowed: Schema.Array(Schema.String)
  }
) {}

/**
 * 413: the body is larger than the server accepts (`MAX_BODY_BYTES`, 1 MiB by default).
 *
 * @category problems
 */
export class PayloadTooLarge extends HttpApiError.Problem<PayloadTooLarge>()(
  "PayloadTooLarge",
  {
    type: `${problemTypePrefix}payload-too-large`,
    status: 413,
    title: "Payload too large"
  },
  {
    detail: Schema.String,
    max_bytes: Schema.Number
  }
) {}

/**
 * 415: the body is not JSON; send `application/json` (or `application/*+json`), in UTF-8.
 *
 * @category problems
 */
export class UnsupportedMediaType extends HttpApiError.Problem<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  {
    type: `${problemTypePrefix}unsupported-media-type`,
    status: 415,
    title: "Unsupported media type"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * 422: well-formed JSON that is not an object (an array, a string, a number, `null`).
 *
 * @category problems
 */
export class InvalidPayload extends HttpApiError.Problem<InvalidPayload>()(
  "InvalidPayload",
  {
    type: `${problemTypePrefix}invalid-payload`,
    status: 422,
    title: "Invalid payload"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * 503 from `/ready`: a backend does not answer; `checks` says which.
 *
 * @category problems
 */
export class NotReady extends HttpApiError.Problem<NotReady>()(
  "NotReady",
  { type: `${problemTypePrefix}not-ready`, status: 503, title: "Not ready" },
  {
    detail: Schema.String,
    checks: Schema.Record(
      Schema.String,
      Schema.Struct({ status: Schema.String, error: Schema.optionalKey(Schema.String) })
    )
  }
) {}

/**
 * 409: only a failed job can be sent round again.
 *
 * @category problems
 */
export class NotRetryable extends HttpApiError.Problem<NotRetryable>()(
  "NotRetryable",
  { type: `${problemTypePrefix}not-retryable`, status: 409, title: "Job is not failed" },
  { detail: Schema.String, job_id: Schema.String, job_status: Schema.String }
) {}

/**
 * 409: a genuine callback that its job no longer waits for: the job failed before it came, or the
 * callback answers a call from before the job was retried. Its data was not stored.
 *
 * @category problems
 */
export class CallbackNotApplied extends HttpApiError.Problem<CallbackNotApplied>()(
  "CallbackNotApplied",
  { type: `${problemTypePrefix}callback-not-applied`, status: 409, title: "Callback not applied" },
  { detail: Schema.String, job_id: Schema.String }
) {}

/**
 * 422: an `Idempotency-Key` that was used before with another body.
 *
 * @category problems
 */
export class IdempotencyConflict extends HttpApiError.Problem<IdempotencyConflict>()(
  "IdempotencyConflict",
  {
    type: `${problemTypePrefix}idempotency-conflict`,
    status: 422,
    title: "Idempotency key reused"
  },
  { detail: Schema.String, idempotency_key: Schema.String, request_id: Schema.String }
) {}

/**
 * 422: the job names a vendor (payload `vendor` or `?vendor=`) that is not loaded.
 *
 * @category problems
 */
export class UnknownVendor extends HttpApiError.Problem<UnknownVendor>()(
  "UnknownVendor",
  {
    type: `${problemTypePrefix}unknown-vendor`,
    status: 422,
    title: "Unknown vendor"
  },
  {
    detail: Schema.String,
    vendor: Schema.String,
    known_vendors: Schema.Array(Schema.String)
  }
) {}

/**
 * 500: a bug on our side. Never carries a stack trace; the server logs the cause.
 *
 * @category problems
 */
export class InternalError extends HttpApiError.Problem<InternalError>()(
  "InternalError",
  {
    type: `${problemTypePrefix}internal-error`,
    status: 500,
    title: "Internal server error"
  },
  {
    detail: Schema.String
  }
) {}

/**
 * The 503 body: the job store or queue is unavailable; retry after `retry_after` seconds.
 *
 * @category problems
 */
export class ServiceUnavailable extends HttpApiError.Problem<ServiceUnavailable>()(
  "ServiceUnavailable",
  {
    type: `${problemTypePrefix}service-unavailable`,
    status: 503,
    title: "Service unavailable"
  },
  {
    detail: Schema.String,
    retry_after: Schema.Int
  }
) {}

/**
 * 503 as declared on endpoints: the {@link ServiceUnavailable} problem with its `retry_after`
 * also in a `Retry-After` header, which clients and proxies honour without parsing the body.
 *
 * @category problems
 */
export const ServiceUnavailableWithRetryAfter = ServiceUnavailable.pipe(
  HttpApiSchema.encodeToWithHeaders(
    {
      body: ServiceUnavailable,
      headers: { "retry-after": Schema.NumberFromString }
    },
    {
      decode: ({ body }) => body,
      encode: (problem) => ({ body: problem, headers: { "retry-after": problem.retry_after } })
    }
  )
)

// ---------------------------------------------------------------------------------------------
// Wire schemas
// ---------------------------------------------------------------------------------------------

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
 * A store cursor as the opaque string clients pass back.
 *
 * @category cursors
 */
export const encodeCursor = (cursor: JobStore.Cursor): string =>
  Buffer.from(JSON.stringify([cursor.updatedAt, cursor.id])).toString("base64url")

const CursorJson = Schema.fromJsonString(Schema.Tuple([Job.IsoTimestamp, Job.JobId]))

/**
 * The store cursor a client passed back; `undefined` when it is not one of ours (then the request
 * was refused by {@link Cursor} before it got here).
 *
 * @category cursors
 */
export const decodeCursor = (text: string): JobStore.Cursor | undefined => {
  const decoded = Schema.decodeUnknownOption(CursorJson)(Buffer.from(text, "base64url").toString("utf8"))
  return decoded._tag === "Some" ? { updatedAt: decoded.value[0], id: decoded.value[1] } : undefined
}

/**
 * The `cursor` query parameter: a string that {@link decodeCursor} reads, so a forged or damaged
 * cursor is a 400 before any store sees it.
 *
 * @category cursors
 */
export const Cursor = Schema.String.check(
  Schema.makeFilter((text: string) => decodeCursor(text) !== undefined, {
    expected: "the next_cursor of a previous page"
  })
)

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

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/**
 * Turns request validation failures (params, query, headers) into {@link InvalidRequest}.
 * Declared on the groups whose endpoints take parameters; the server provides it.
 *
 * @category middleware
 */
export class RequestValidation extends HttpApiMiddleware.Service<RequestValidation>()(
  "@vendorflow/core/Api/RequestValidation",
  { error: InvalidRequest }
) {}

/**
 * The caller of a request, as {@link Authorization} found it (`Access`).
 *
 * @category middleware
 */
export class CurrentCaller extends Context.Service<CurrentCaller, Access.Caller>()(
  "@vendorflow/core/Api/CurrentCaller"
) {}

/**
 * Checks the request's API key and counts it against the key's rate limit (`Access`); provides
 * {@link CurrentCaller}. Declared on the groups a client calls (jobs, stats); webhooks and the
 * system endpoints need no key. The server provides it.
 *
 * @category middleware
 */
export class Authorization extends HttpApiMiddleware.Service<Authorization, { provides: CurrentCaller }>()(
  "@vendorflow/core/Api/Authorization",
  { error: [UnauthorizedWithChallenge, TooManyRequestsWithHeaders] }
) {}

/**
 * Submitting and reading jobs.
 *
 * @category groups
 */
export class JobsGroup extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.post("submit", "/jobs", {
      query: { vendor: Schema.optionalKey(Schema.String) },
      headers: {
        "idempotency-key": Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(255)))
      },
      payload: JobPayload,
      success: Submitted,
      error: [
        IdempotencyConflict,
        MalformedJson,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidPayload,
        UnknownVendor,
        ServiceUnavailableWithRetryAfter
      ]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Submit a job",
        description:
          "Stores the job for its vendor and queues it; answers at once with the job's id. " +
          "The vendor is the payload's `vendor`, else `?vendor=`, else the server's routing policy. " +
          "With an `Idempotency-Key` header, the same key and body answer the same `request_id` again " +
          "(nothing new is queued); the same key with another body is refused with 422."
      })
    ),
    HttpApiEndpoint.get("get", "/jobs/:id", {
      params: { id: Job.JobId },
      success: JobView,
      error: [JobNotFound, ServiceUnavailableWithRetryAfter]
    }).annotateMerge(OpenApi.annotations({ summary: "Read a job" })),
    HttpApiEndpoint.get("list", "/jobs", {
      query: {
        status: Job.JobStatus,
        vendor: Schema.optionalKey(Schema.String),
        limit: Schema.optionalKey(
          Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 500 }))
        ),
        cursor: Schema.optionalKey(Cursor)
      },
      success: JobList,
      error: [ServiceUnavailableWithRetryAfter]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List jobs by status",
        description:
          "Jobs in one status (of one vendor, if given), most recently changed first, `limit` (default 50) " +
          "a page. `GET /jobs?status=failed` lists the dead letters with their reasons. Pass the " +
          "answer's `next_cursor` as `cursor` for the next page; it is absent on the last page."
      })
    ),
    HttpApiEndpoint.post("retry", "/jobs/:id/retry", {
      params: { id: Job.JobId },
      success: JobView,
      error: [JobNotFound, NotRetryable, ServiceUnavailableWithRetryAfter]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Send a failed job round again",
        description: "A failed job goes back to pending under the same id, with its attempts reset, and is queued."
      })
    )
  )
  .middleware(RequestValidation)
  .middleware(Authorization) {}

/**
 * Async vendors' callbacks.
 *
 * @category groups
 */
export class WebhooksGroup extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("receive", "/vendor-webhook/:vendor", {
      params: { vendor: Schema.String },
      payload: WebhookBody,
      success: JobView,
      error: [
        MalformedWebhook,
        InvalidSignature,
        VendorNotFound,
        JobNotFound,
        CallbackNotApplied,
        PayloadTooLarge,
        ServiceUnavailableWithRetryAfter
      ]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Receive a vendor's callback",
        description:
          "The vendor's adapter verifies the signature over the exact body bytes and parses it; " +
          "the job completes with the cleaned data, whether it was waiting for the callback or queued to be " +
          "sent again. A 200 means the job holds a vendor's answer: a repeat for a complete job answers 200 " +
          "and changes nothing. A callback for a failed job, or from before the job was retried, is a 409 " +
          "and is not stored; one that could not be stored (503) may be sent again, byte for byte."
      })
    )
  )
  .middleware(RequestValidation) {}

/**
 * Liveness.
 *
 * @category groups
 */
export class SystemGroup extends HttpApiGroup.make("system")
  .add(
    HttpApiEndpoint.get("health", "/health", { success: Health }).annotateMerge(
      OpenApi.annotations({
        summary: "Liveness, the loaded vendors, and whether each backend (Redis, MongoDB) answers",
        description: "Always 200 while the process serves; `status` is `degraded` when a backend is down."
      })
    )
  )
  .add(
    HttpApiEndpoint.get("ready", "/ready", { success: Health, error: NotReady }).annotateMerge(
      OpenApi.annotations({
        summary: "Readiness: 200 while every backend answers (and enough workers beat), 503 otherwise",
        description:
          "For a load balancer or an orchestrator: take the instance out of rotation while it answers 503. " +
          "With `READY_MIN_WORKERS` set above 0, fewer live workers than that is a `workers` check that is down."
      })
    )
  ) {}

/**
 * The operator's dashboard figures (`Stats.ts`).
 *
 * @category groups
 */
export class StatsGroup extends HttpApiGroup.make("stats")
  .add(
    HttpApiEndpoint.get("stats", "/stats", { success: Stats.Report }).annotateMerge(
      OpenApi.annotations({
        summary: "Per vendor throughput, success and failure rates, latency, backlog, rate-limit use and circuit",
        description:
          "For the last 5 and 60 minutes, with a 10-second series of the last 5 minutes for live charts. " +
          "Calls, outcomes and latencies are what every process recorded: shared through Redis when the " +
          "deployment has it, else this process's own (`collecting` is false where no collector is provided); " +
          "backlog and circuit come from the shared backends."
      })
    )
  )
  .middleware(Authorization) {}

// The key schemes in OpenAPI, on the operations of the groups that declare `Authorization`. Added
// by hand: `HttpApiSecurity` schemes would be tried one after another, and a rate-limited key in
// the first would be reported as a missing key in the second.
const keyedPaths = ["/jobs", "/stats"]
type Spec = Record<string, unknown>
const isObject = (value: unknown): value is Spec => typeof value === "object" && value !== null
const documentKeys = (spec: Spec): Spec => {
  const paths = isObject(spec["paths"]) ? spec["paths"] : {}
  for (const [path, operations] of Object.entries(paths)) {
    if (!keyedPaths.some((keyed) => path === keyed || path.startsWith(`${keyed}/`))) continue
    for (const operation of isObject(operations) ? Object.values(operations) : []) {
      if (isObject(operation)) operation["security"] = [{ bearer: [] }, { apiKey: [] }]
    }
  }
  const components = isObject(spec["components"]) ? spec["components"] : {}
  return {
    ...spec,
    components: {
      ...components,
      securitySchemes: {
        ...(isObject(components["securitySchemes"]) ? components["securitySchemes"] : {}),
        bearer: { type: "http", scheme: "bearer", description: "An API key from `API_KEYS`, when keys are on." },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "The same key, in its own header." }
      }
    }
  }
}

/**
 * The vendorflow HTTP API.
 *
 * @category api
 */
export class Api extends HttpApi.make("vendorflow")
  .add(JobsGroup)
  .add(WebhooksGroup)
  .add(SystemGroup)
  .add(StatsGroup)
  .annotateMerge(
    OpenApi.annotations({
      title: "vendorflow",
      version,
      description:
        "One API for fetching data from many external data vendors: jobs in, cleaned results out. " +
        "Every error is an RFC 9457 `application/problem+json` body. When the server has API keys " +
        "(`API_KEYS`), the jobs and stats endpoints need one, and each key sees only its own jobs.",
      transform: documentKeys
    })
  ) {}

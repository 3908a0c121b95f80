/**
 * The HTTP API contract: endpoints, wire schemas (snake_case) and the RFC 9457 problems each
 * endpoint can answer with. The server implements it and {@link ApiClient} derives a typed client
 * from it, so it depends on `effect` only.
 *
 * Every error, from a malformed id to an unknown route, is one `application/problem+json` body
 * `{ type, title, status, detail }`, plus extension members where they help (`errors`, `vendor`,
 * `known_vendors`, `max_bytes`).
 *
 * This module holds the endpoints; the problems (`Api/Problems.ts`), wire schemas
 * (`Api/Schemas.ts`), the list cursor (`Api/Cursor.ts`) and the middleware tags
 * (`Api/Middleware.ts`) are in modules of their own and exported from here too.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Cursor } from "./Api/Cursor.ts"
import { Authorization, RequestValidation } from "./Api/Middleware.ts"
import {
  CallbackNotApplied,
  IdempotencyConflict,
  InvalidPayload,
  InvalidSignature,
  JobNotFound,
  MalformedJson,
  MalformedWebhook,
  NotReady,
  NotRetryable,
  PayloadTooLarge,
  ServiceUnavailableWithRetryAfter,
  UnknownVendor,
  UnsupportedMediaType,
  VendorNotFound
} from "./Api/Problems.ts"
import { Health, JobList, JobPayload, JobView, Submitted, WebhookBody } from "./Api/Schemas.ts"
import { addSecuritySchemes } from "./internal/openApiSecurity.ts"
import * as Job from "./Job.ts"
import * as Stats from "./Stats.ts"

export * from "./Api/Cursor.ts"
export * from "./Api/Middleware.ts"
export * from "./Api/Problems.ts"
export * from "./Api/Schemas.ts"

/**
 * The API's version in OpenAPI; a test keeps it equal to `@vendorflow/core`'s package version.
 *
 * @category constants
 */
export const version = "0.1.0"

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

// The paths of the groups that declare `Authorization`: their operations carry the key schemes.
const keyedPaths = ["/jobs", "/stats"]

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
      transform: addSecuritySchemes(keyedPaths)
    })
  ) {}

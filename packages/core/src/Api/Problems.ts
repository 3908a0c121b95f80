/**
 * The RFC 9457 problems the API answers with: one `application/problem+json` body
 * `{ type, title, status, detail }` per kind, plus extension members where they help (`errors`,
 * `vendor`, `known_vendors`, `max_bytes`), and the forms endpoints declare when a problem also
 * carries headers (`WWW-Authenticate`, `Retry-After`, `RateLimit`). Re-exported by `Api`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { HttpApiError, HttpApiSchema } from "effect/http-api"
import type * as Access from "../Access.ts"

/**
 * Where every problem `type` URI starts; a problem's type names its kind for machines.
 *
 * @category constants
 */
export const problemTypePrefix = "urn:vendorflow:problem:"

// A problem's fixed members: its `type` (from the prefix and a slug), status and title.
const declare = <const Slug extends string, const Status extends number>(
  slug: Slug,
  status: Status,
  title: string
) => ({
  type: `${problemTypePrefix}${slug}` as const,
  status,
  title
})

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
  declare("invalid-request", 400, "Invalid request"),
  { detail: Schema.String, errors: Schema.optionalKey(Schema.Array(Issue)) }
) {}

/**
 * 400: the body is not well-formed JSON (or could not be read).
 *
 * @category problems
 */
export class MalformedJson extends HttpApiError.Problem<MalformedJson>()(
  "MalformedJson",
  declare("malformed-json", 400, "Malformed JSON"),
  { detail: Schema.String }
) {}

/**
 * 400: a correctly signed webhook whose body the vendor's adapter could not understand.
 *
 * @category problems
 */
export class MalformedWebhook extends HttpApiError.Problem<MalformedWebhook>()(
  "MalformedWebhook",
  declare("malformed-webhook", 400, "Malformed webhook"),
  { detail: Schema.String }
) {}

/**
 * 401: a webhook without a signature, with a wrong one, or signed too long ago.
 *
 * @category problems
 */
export class InvalidSignature extends HttpApiError.Problem<InvalidSignature>()(
  "InvalidSignature",
  declare("invalid-signature", 401, "Invalid webhook signature"),
  { detail: Schema.String }
) {}

/**
 * 401: the API has keys (`API_KEYS`) and the request carries none, or one that is not valid.
 * Answered with `WWW-Authenticate: Bearer`.
 *
 * @category problems
 */
export class Unauthorized extends HttpApiError.Problem<Unauthorized>()(
  "Unauthorized",
  declare("unauthorized", 401, "API key required"),
  { detail: Schema.String }
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
  declare("too-many-requests", 429, "Too many requests"),
  { detail: Schema.String, limit: Schema.Int, window_seconds: Schema.Int, retry_after: Schema.Int }
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
  declare("job-not-found", 404, "Job not found"),
  { detail: Schema.String, job_id: Schema.String }
) {}

/**
 * 404: a webhook for a vendor that is not loaded (or takes no webhooks).
 *
 * @category problems
 */
export class VendorNotFound extends HttpApiError.Problem<VendorNotFound>()(
  "VendorNotFound",
  declare("vendor-not-found", 404, "Vendor not found"),
  { detail: Schema.String, vendor: Schema.String, known_vendors: Schema.Array(Schema.String) }
) {}

/**
 * 404: no route has this path. Answered by the server for any path outside the API.
 *
 * @category problems
 */
export class RouteNotFound extends HttpApiError.Problem<RouteNotFound>()(
  "RouteNotFound",
  declare("route-not-found", 404, "Not found"),
  { detail: Schema.String }
) {}

/**
 * 405: the path exists but not for this method; the response's `Allow` header lists the methods.
 *
 * @category problems
 */
export class MethodNotAllowed extends HttpApiError.Problem<MethodNotAllowed>()(
  "MethodNotAllowed",
  declare("method-not-allowed", 405, "Method not allowed"),
  { detail: Schema.String, allowed: Schema.Array(Schema.String) }
) {}

/**
 * 413: the body is larger than the server accepts (`MAX_BODY_BYTES`, 1 MiB by default).
 *
 * @category problems
 */
export class PayloadTooLarge extends HttpApiError.Problem<PayloadTooLarge>()(
  "PayloadTooLarge",
  declare("payload-too-large", 413, "Payload too large"),
  { detail: Schema.String, max_bytes: Schema.Number }
) {}

/**
 * 415: the body is not JSON; send `application/json` (or `application/*+json`), in UTF-8.
 *
 * @category problems
 */
export class UnsupportedMediaType extends HttpApiError.Problem<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  declare("unsupported-media-type", 415, "Unsupported media type"),
  { detail: Schema.String }
) {}

/**
 * 422: well-formed JSON that is not an object (an array, a string, a number, `null`).
 *
 * @category problems
 */
export class InvalidPayload extends HttpApiError.Problem<InvalidPayload>()(
  "InvalidPayload",
  declare("invalid-payload", 422, "Invalid payload"),
  { detail: Schema.String }
) {}

/**
 * 503 from `/ready`: a backend does not answer; `checks` says which.
 *
 * @category problems
 */
export class NotReady extends HttpApiError.Problem<NotReady>()("NotReady", declare("not-ready", 503, "Not ready"), {
  detail: Schema.String,
  checks: Schema.Record(
    Schema.String,
    Schema.Struct({ status: Schema.String, error: Schema.optionalKey(Schema.String) })
  )
}) {}

/**
 * 409: only a failed job can be sent round again.
 *
 * @category problems
 */
export class NotRetryable extends HttpApiError.Problem<NotRetryable>()(
  "NotRetryable",
  declare("not-retryable", 409, "Job is not failed"),
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
  declare("callback-not-applied", 409, "Callback not applied"),
  { detail: Schema.String, job_id: Schema.String }
) {}

/**
 * 422: an `Idempotency-Key` that was used before with another body.
 *
 * @category problems
 */
export class IdempotencyConflict extends HttpApiError.Problem<IdempotencyConflict>()(
  "IdempotencyConflict",
  declare("idempotency-conflict", 422, "Idempotency key reused"),
  { detail: Schema.String, idempotency_key: Schema.String, request_id: Schema.String }
) {}

/**
 * 422: the job names a vendor (payload `vendor` or `?vendor=`) that is not loaded.
 *
 * @category problems
 */
export class UnknownVendor extends HttpApiError.Problem<UnknownVendor>()(
  "UnknownVendor",
  declare("unknown-vendor", 422, "Unknown vendor"),
  { detail: Schema.String, vendor: Schema.String, known_vendors: Schema.Array(Schema.String) }
) {}

/**
 * 500: a bug on our side. Never carries a stack trace; the server logs the cause.
 *
 * @category problems
 */
export class InternalError extends HttpApiError.Problem<InternalError>()(
  "InternalError",
  declare("internal-error", 500, "Internal server error"),
  { detail: Schema.String }
) {}

/**
 * The 503 body: the job store or queue is unavailable; retry after `retry_after` seconds.
 *
 * @category problems
 */
export class ServiceUnavailable extends HttpApiError.Problem<ServiceUnavailable>()(
  "ServiceUnavailable",
  declare("service-unavailable", 503, "Service unavailable"),
  { detail: Schema.String, retry_after: Schema.Int }
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

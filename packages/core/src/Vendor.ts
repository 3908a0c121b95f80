/**
 * The vendor adapter contract: what the engine needs from each external data vendor.
 *
 * A sync vendor answers the call with its data; an async vendor accepts the call and later posts its
 * data to our webhook, which the adapter verifies and parses. Every failure is one {@link VendorError}
 * whose `reason` tells the worker what to do with the job.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, Schema } from "effect"
import { HttpClient, HttpClientRequest, type HttpClientResponse } from "effect/http"
import type { CleanerRules } from "./Cleaner.ts"
import type { JobId, JsonObject } from "./Job.ts"

/**
 * Why a vendor call failed, and so what happens next:
 * - `RateLimited`: the vendor said 429; retry after `retryAfterMillis`.
 * - `Unavailable`: network error, timeout or 5xx; retry with backoff.
 * - `Rejected`: the vendor refused the request (4xx); never retried.
 * - `InvalidResponse`: the answer could not be understood; never retried.
 *
 * @category errors
 */
export const VendorErrorReason = Schema.Literals(["RateLimited", "Unavailable", "Rejected", "InvalidResponse"])

/** @category errors */
export type VendorErrorReason = typeof VendorErrorReason.Type

/**
 * A failed vendor call.
 *
 * @category errors
 */
export class VendorError extends Schema.TaggedError<VendorError>()("VendorError", {
  vendor: Schema.String,
  reason: VendorErrorReason,
  message: Schema.String,
  status: Schema.optionalKey(Schema.Int),
  retryAfterMillis: Schema.optionalKey(Schema.Number)
}) {
  /** Transient failures (rate limits, outages) are worth another attempt; the rest are not. */
  get isRetryable(): boolean {
    return this.reason === "RateLimited" || this.reason === "Unavailable"
  }
}

/**
 * Why a webhook was refused. `MissingSignature` and `BadSignature` (which covers a stale timestamp)
 * answer 401; `Malformed` answers 400.
 *
 * @category errors
 */
export class WebhookError extends Schema.TaggedError<WebhookError>()("WebhookError", {
  reason: Schema.Literals(["MissingSignature", "BadSignature", "Malformed"]),
  message: Schema.String
}) {}

/**
 * What the engine hands an adapter for one attempt.
 *
 * @category models
 */
export interface VendorRequest {
  readonly jobId: JobId
  readonly payload: JsonObject
  /** 1 for the first call. */
  readonly attempt: number
  /** Where an async vendor posts its answer. */
  readonly webhookUrl: string
}

/**
 * A call's outcome: the data (sync), or the vendor's promise to call back (async).
 *
 * @category models
 */
export type VendorOutcome = { readonly _tag: "Completed"; readonly result: Schema.Json } | { readonly _tag: "Accepted" }

/**
 * A webhook as it arrived: lower-cased headers and the raw body (signatures cover the exact bytes).
 *
 * @category models
 */
export interface WebhookRequest {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
}

/**
 * A verified webhook: which job it answers, and the vendor's data.
 *
 * @category models
 */
export interface WebhookDelivery {
  readonly jobId: JobId
  readonly data: Schema.Json
}

/**
 * A vendor's own limit: at most `limit` calls per `window`, across every worker.
 *
 * @category models
 */
export interface RateLimit {
  readonly limit: number
  readonly window: Duration.Input
}

/**
 * A loaded vendor adapter.
 *
 * @category models
 */
export interface Vendor {
  readonly name: string
  readonly mode: "sync" | "async"
  /** Calls this vendor accepts; none means no limit of ours. */
  readonly rateLimit?: RateLimit | undefined
  /** How many of this vendor's jobs one worker runs at once. */
  readonly concurrency: number
  /** Extra cleaning rules for this vendor's answers. */
  readonly cleaning?: CleanerRules | undefined
  readonly call: (request: VendorRequest) => Effect.Effect<VendorOutcome, VendorError>
  /** Verifies and parses a callback; async vendors only. */
  readonly parseWebhook?: ((request: WebhookRequest) => Effect.Effect<WebhookDelivery, WebhookError>) | undefined
}

/**
 * Reads a `Retry-After` header (seconds, or an HTTP date) as milliseconds from `now`.
 *
 * @category classification
 */
export const parseRetryAfter = (header: string | undefined, now: number = Date.now()): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * The error for a non-2xx answer: 429 is `RateLimited` (with its `Retry-After`), 408 and 5xx are
 * `Unavailable`, any other status is `Rejected`.
 *
 * @category classification
 */
export const errorFromStatus = (options: {
  readonly vendor: string
  readonly status: number
  readonly retryAfter?: string | undefined
  readonly body?: string | undefined
}): VendorError => {
  const { status, vendor } = options
  const detail = options.body === undefined || options.body === "" ? "" : `: ${options.body.slice(0, 200)}`
  const message = `${vendor} answered ${status}${detail}`
  if (status === 429) {
    const retryAfterMillis = parseRetryAfter(options.retryAfter)
    return new VendorError({
      vendor,
      reason: "RateLimited",
      message,
      status,
      ...(retryAfterMillis === undefined ? {} : { retryAfterMillis })
    })
  }
  const reason = status === 408 || status >= 500 ? "Unavailable" : "Rejected"
  return new VendorError({ vendor, reason, message, status })
}

/**
 * POSTs a JSON body to a vendor and decodes a 2xx JSON answer with `schema`; every failure is a
 * classified {@link VendorError}. The job id goes in `Idempotency-Key` so a vendor can drop repeats.
 *
 * @category http
 */
export const postJson = Effect.fnUntraced(function* <S extends Schema.Top>(options: {
  readonly vendor: string
  readonly url: string
  readonly body: unknown
  readonly idempotencyKey: string
  readonly schema: S & Schema.Codec<S["Type"], S["Encoded"], never, never>
  readonly timeout: Duration.Input
  readonly headers?: Readonly<Record<string, string>> | undefined
}) {
  const client = yield* HttpClient.HttpClient
  const { vendor } = options
  const request = HttpClientRequest.post(options.url).pipe(
    HttpClientRequest.setHeaders({ ...options.headers, "idempotency-key": options.idempotencyKey }),
    HttpClientRequest.acceptJson,
    HttpClientRequest.bodyJsonUnsafe(options.body)
  )
  const unavailable = (message: string) => new VendorError({ vendor, reason: "Unavailable", message })
  const response: HttpClientResponse.HttpClientResponse = yield* client.execute(request).pipe(
    Effect.timeout(options.timeout),
    Effect.catchTag("TimeoutError", () => Effect.fail(unavailable(`${vendor} did not answer in time`))),
    Effect.catchTag("HttpClientError", (error) => Effect.fail(unavailable(`${vendor} unreachable: ${error.message}`)))
  )
  const text = yield* response.text.pipe(
    Effect.timeout(options.timeout),
    Effect.catch(() => Effect.fail(unavailable(`${vendor} broke off its answer`)))
  )
  if (response.status < 200 || response.status >= 300) {
    return yield* errorFromStatus({
      vendor,
      status: response.status,
      retryAfter: response.headers["retry-after"],
      body: text
    })
  }
  const invalid = (message: string) =>
    new VendorError({ vendor, reason: "InvalidResponse", status: response.status, message })
  if (text === "") return yield* invalid(`${vendor} answered ${response.status} with an empty body`)
  return yield* Schema.decodeUnknownEffect(Schema.fromJsonString(options.schema))(text).pipe(
    Effect.mapError((error) => invalid(`${vendor} answered with an unexpected body: ${error.message}`))
  )
})

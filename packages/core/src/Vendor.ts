/**
 * The vendor adapter contract: what the engine needs from each external data vendor.
 *
 * A sync vendor answers the call with its data; an async vendor accepts the call and later posts its
 * data to our webhook, which the adapter verifies and parses. Every failure is one {@link VendorError}
 * whose `reason` tells the worker what to do with the job.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { Context, Duration, Effect, Schema } from "effect"
import type { HttpMethod } from "effect/http"
import { Agent, type Dispatcher } from "undici"
import type { CleanerRules } from "./Cleaner.ts"
import { type JobId, type JsonObject, maxJsonDepth, nestsDeeperThan } from "./Job.ts"

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
 * Why a webhook was refused. `MissingSignature`, `BadSignature` (which covers a stale timestamp) and
 * `Replayed` (a signed delivery seen before, inside the replay window) answer 401; `Malformed`
 * answers 400.
 *
 * @category errors
 */
export class WebhookError extends Schema.TaggedError<WebhookError>()("WebhookError", {
  reason: Schema.Literals(["MissingSignature", "BadSignature", "Replayed", "Malformed"]),
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
 * What an async vendor says when asked about a job whose callback is overdue: its data, or that it
 * is still working on it. A job the vendor gave up on is a `Rejected` {@link VendorError}.
 *
 * @category models
 */
export type StatusOutcome = { readonly _tag: "Completed"; readonly result: Schema.Json } | { readonly _tag: "Pending" }

/**
 * A webhook as it arrived: lower-cased headers and the raw body (signatures cover the exact bytes).
 *
 * @category models
 */
export interface WebhookRequest {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
  /**
   * The `token` query parameter of the webhook URL (see `WebhookSignature.callbackToken`). The
   * engine checks it against the job, not the adapter, since only the engine knows the attempt.
   */
  readonly callbackToken?: string | undefined
}

/**
 * A verified webhook: which job it answers, and the vendor's data.
 *
 * @category models
 */
export interface WebhookDelivery {
  readonly jobId: JobId
  readonly data: Schema.Json
  /**
   * Spends this delivery's signature in the replay guard, so that the same signed bytes are
   * refused as `Replayed` from then on. The engine runs it once the callback is applied (or its job
   * found complete already), never before: a delivery that could not be applied (the store was
   * down) may come again as it was and be applied then.
   */
  readonly claimReplay?: Effect.Effect<void> | undefined
}

/**
 * A vendor's own limit: at most `limit` calls per `window`, across every worker. With `learn`, the
 * limit is learned from the vendor's answers (`VENDOR_<NAME>_RATE_LIMIT=auto`) and `limit` is only
 * a ceiling it never passes (`Infinity` for none).
 *
 * @category models
 */
export interface RateLimit {
  readonly limit: number
  readonly window: Duration.Input
  readonly learn?: boolean | undefined
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
  /** How many calls to this vendor may be in flight at once across every worker; none means no cap. */
  readonly maxInFlight?: number | undefined
  /** Extra cleaning rules for this vendor's answers. */
  readonly cleaning?: CleanerRules | undefined
  readonly call: (request: VendorRequest) => Effect.Effect<VendorOutcome, VendorError>
  /** Verifies and parses a callback; async vendors only. */
  readonly parseWebhook?: ((request: WebhookRequest) => Effect.Effect<WebhookDelivery, WebhookError>) | undefined
  /** How long one call may take; the adapter already enforces it, the engine may budget with it. */
  readonly timeout?: Duration.Duration | undefined
  /** How many attempts a job gets before a transient failure fails it; none means the engine's default. */
  readonly maxAttempts?: number | undefined
  /** How long an accepted async job may wait for its callback before it is overdue. */
  readonly callbackDeadline?: Duration.Duration | undefined
  /**
   * What happens to an overdue async job when there is no `checkStatus` (or it cannot tell):
   * `resubmit` calls the vendor again under the same idempotency key (the default), `fail` fails
   * the job with `callback_timeout`.
   */
  readonly onCallbackTimeout?: "resubmit" | "fail" | undefined
  /** Asks an async vendor where an overdue job stands; for when a callback never came. */
  readonly checkStatus?: ((request: VendorRequest) => Effect.Effect<StatusOutcome, VendorError>) | undefined
}

/**
 * The longest wait a 429 imposes, in ms (15 minutes): it pauses every worker's calls to the vendor,
 * so a `Retry-After` of days (or a bad one) would stop them all. Past it the job is tried again,
 * and a vendor still over its limit says so with its next 429.
 *
 * @category classification
 */
export const maxRetryAfterMillis = 15 * 60 * 1000

/**
 * A wait a 429 asked for, as the engine takes it: at most {@link maxRetryAfterMillis}; `undefined`
 * (the backoff, or the default pause) for none, or for one no one could compute (NaN, negative,
 * infinite), which an adapter's bad parse gives.
 *
 * @category classification
 */
export const usableRetryAfter = (millis: number | undefined): number | undefined =>
  millis !== undefined && Number.isFinite(millis) && millis >= 0 ? Math.min(millis, maxRetryAfterMillis) : undefined

/**
 * Reads a `Retry-After` header (seconds, or an HTTP date) as milliseconds from `now`, at most
 * {@link maxRetryAfterMillis}.
 *
 * @category classification
 */
export const parseRetryAfter = (header: string | undefined, now: number = Date.now()): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const seconds = Number(header)
  const millis = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now
  return Number.isNaN(millis) ? undefined : Math.min(maxRetryAfterMillis, Math.max(0, millis))
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
 * A vendor's answer as it arrived, before any decoding: what {@link Classify} functions look at.
 *
 * @category classification
 */
export interface RawAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
}

/**
 * A vendor-specific reading of an answer: `undefined` leaves it to the defaults (a 2xx answer is
 * decoded, any other status goes through {@link errorFromStatus}); an error fails the call with it.
 *
 * @category classification
 */
export type Classify = (answer: RawAnswer) => VendorError | undefined

/**
 * The undici dispatcher that vendor calls go through, read when an adapter is built: one undici
 * `Agent` for the process, which keeps connections to each vendor alive and pools them, unless
 * another is provided (a proxy, TLS options, or a test's own routing).
 *
 * @category http
 */
export const HttpDispatcher = Context.Reference<Dispatcher>("@vendorflow/core/Vendor/HttpDispatcher", {
  defaultValue: () => processAgent()
})

/**
 * The largest answer a vendor may send by default, 5 MiB: a bigger one fails the call as
 * `InvalidResponse` before it is read whole (`VENDOR_<NAME>_MAX_RESPONSE_BYTES` changes it).
 *
 * @category http
 */
export const defaultMaxResponseBytes = 5 * 1024 * 1024

/**
 * Who hears the headers of every answer `sendJson` gets (the engine, to learn a vendor's advertised
 * rate limit); none by default.
 *
 * @category http
 */
export const AnswerHeaders = Context.Reference<((headers: RawAnswer["headers"]) => void) | undefined>(
  "@vendorflow/core/Vendor/AnswerHeaders",
  { defaultValue: () => undefined }
)

/**
 * Who hears that `sendJson` is writing a request, right before its first byte goes (the rate
 * limiter, to check the call against its slot); none by default. It may be called outside any
 * fiber, from undici's handler, and must not block.
 *
 * @category http
 */
export const RequestWritten = Context.Reference<(() => void) | undefined>("@vendorflow/core/Vendor/RequestWritten", {
  defaultValue: () => undefined
})

let agent: Agent | undefined
const processAgent = (): Agent => (agent ??= new Agent())

// undici's hook for taking a request that waits for a connection out of its dispatcher's queue.
// `request` passes it for a call with an `AbortSignal`; undici exports no public name for it, so it
// is read from undici's own module (the version is pinned, and `test/Vendor.test.ts` fails if it
// stops working). Without it (a dispatcher from another copy of undici, or a copy whose module
// cannot be read) a call given up on is still never sent: it is started and aborted at once, which
// costs its connection.
const kQueuedAbort: unknown = (() => {
  try {
    return createRequire(import.meta.url)("undici/lib/core/symbols.js").kQueuedAbort
  } catch {
    return undefined
  }
})()

// What a call's exchange yields before classification, or why there was none. Written on undici's
// handler API (`Dispatcher.dispatch`) rather than `request`, which wraps every answer in a stream
// and every call in an `AbortSignal` and an `AsyncResource`: on the worker's hot path those cost a
// third of a call's CPU (`docs/benchmarks.md`). The body is collected as it arrives and given up on
// past the limit: a declared length says so before a byte is read, a chunked body as soon as it
// passes it.
const exchange = (options: {
  readonly dispatcher: Dispatcher
  readonly url: string
  readonly method: HttpMethod.HttpMethod
  readonly headers: Record<string, string>
  readonly body: string | null
  readonly timeoutMillis: number
  readonly maxResponseBytes: number
  readonly vendor: string
  readonly onWrite: (() => void) | undefined
}): Effect.Effect<RawAnswer, VendorError> =>
  Effect.callback<RawAnswer, VendorError>((resume) => {
    const { vendor, maxResponseBytes } = options
    const failWith = (reason: VendorErrorReason, message: string, status?: number) =>
      Effect.fail(new VendorError({ vendor, reason, message, ...(status === undefined ? {} : { status }) }))
    // Set once the exchange has ended for the caller; undici may still report on it after that.
    let ended = false
    // How to stop the request: its controller once undici starts it, the dispatcher's way to take
    // it out of its queue while it waits for a connection, and why it was stopped, for a request
    // that starts after that (undici then starts it only to have it aborted).
    let controller: Dispatcher.DispatchController | undefined
    let cancelQueued: ((reason: Error) => void) | undefined
    let stoppedFor: Error | undefined
    const stop = (reason: Error) => {
      stoppedFor ??= reason
      controller?.abort(reason)
      cancelQueued?.(reason)
    }
    const end = (result: Effect.Effect<RawAnswer, VendorError>, stopFor?: Error) => {
      if (ended) return
      ended = true
      clearTimeout(timer)
      // Stopped first: what undici reports of the stop finds the exchange ended. The caller is
      // resumed even if a dispatcher's abort throws.
      try {
        if (stopFor !== undefined) stop(stopFor)
      } finally {
        resume(result)
      }
    }
    const timer = setTimeout(
      () =>
        end(
          failWith(
            "Unavailable",
            `${vendor} did not answer within ${Duration.format(Duration.millis(options.timeoutMillis))}`
          ),
          new Error("timed out")
        ),
      options.timeoutMillis
    )
    let status = 0
    let headers: RawAnswer["headers"] = {}
    const chunks: Array<Buffer> = []
    let size = 0
    const tooLarge = () =>
      end(
        failWith("InvalidResponse", `${vendor} answered ${status} with more than ${maxResponseBytes} bytes`, status),
        new Error("answer too large")
      )
    const unreachable = (error: unknown) =>
      end(failWith("Unavailable", `${vendor} unreachable: ${error instanceof Error ? error.message : String(error)}`))
    try {
      const url = new URL(options.url)
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`invalid URL protocol ${url.protocol}`)
      options.dispatcher.dispatch(
        {
          origin: url.origin,
          path: url.pathname + url.search,
          method: options.method,
          headers: options.headers,
          body: options.body,
          // Called while the request waits for a connection (and again if it waits once more).
          ...(typeof kQueuedAbort === "symbol" && {
            [kQueuedAbort]: (cancel: (reason: Error) => void) => {
              if (stoppedFor === undefined) cancelQueued = cancel
              else cancel(stoppedFor)
            }
          })
        },
        {
          // Called as undici writes the request, right before it goes.
          onRequestStart: (started) => {
            controller = started
            cancelQueued = undefined
            if (stoppedFor !== undefined) started.abort(stoppedFor)
            else options.onWrite?.()
          },
          // Called for informational (1xx) answers too, before the answer.
          onResponseStart: (_, statusCode, responseHeaders) => {
            if (statusCode < 200) return
            status = statusCode
            headers = flatHeaders(responseHeaders)
            if (Number(headers["content-length"]) > maxResponseBytes) tooLarge()
          },
          onResponseData: (_, chunk) => {
            size += chunk.length
            if (size > maxResponseBytes) return tooLarge()
            chunks.push(chunk)
          },
          onResponseEnd: () =>
            end(
              Effect.succeed({
                status,
                headers,
                body: utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))
              })
            ),
          onResponseError: (_, error) => unreachable(error)
        }
      )
    } catch (error) {
      // A URL or header undici refuses.
      unreachable(error)
    }
    // Interrupted (shutdown ran out of grace): the request is abandoned, its socket closed.
    return Effect.sync(() => {
      ended = true
      clearTimeout(timer)
      stop(new Error("interrupted"))
    })
  })

const utf8 = new TextDecoder()

const flatHeaders = (
  headers: Record<string, string | Array<string> | undefined>
): Record<string, string | undefined> => {
  const flat: Record<string, string | undefined> = {}
  for (const name in headers) {
    const value = headers[name]
    flat[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return flat
}

/**
 * Sends one request to a vendor and decodes a 2xx JSON answer with `schema`; every failure is a
 * classified {@link VendorError}: no answer in time or no connection is `Unavailable`, a non-2xx
 * status goes through `classify` and then {@link errorFromStatus}, an answer larger than
 * `maxResponseBytes` (default {@link defaultMaxResponseBytes}), one that is not JSON, nests deeper
 * than `Job.maxJsonDepth` or is not what `schema` expects is `InvalidResponse`. The job id goes in the idempotency header
 * (`Idempotency-Key` unless told otherwise) so a vendor can drop repeats.
 *
 * It calls undici directly rather than through Effect's `HttpClient`: on the worker's hot path
 * that client cost more CPU than the request itself (see `docs/benchmarks.md`).
 * Interrupting the call aborts the request.
 *
 * @category http
 */
export const sendJson = <A>(options: {
  readonly vendor: string
  readonly url: string
  readonly idempotencyKey: string
  readonly schema: Schema.Decoder<A>
  readonly timeout: Duration.Input
  /** Default POST. */
  readonly method?: HttpMethod.HttpMethod | undefined
  /** A JSON body; none is sent when undefined. */
  readonly body?: unknown
  readonly query?: Readonly<Record<string, string>> | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Default `idempotency-key`. */
  readonly idempotencyHeader?: string | undefined
  readonly classify?: Classify | undefined
  /** Default: the process's {@link HttpDispatcher}. */
  readonly dispatcher?: Dispatcher | undefined
  /** Default {@link defaultMaxResponseBytes}. */
  readonly maxResponseBytes?: number | undefined
}): Effect.Effect<A, VendorError> => {
  const { vendor } = options
  const headers: Record<string, string> = { accept: "application/json" }
  for (const name in options.headers) headers[name.toLowerCase()] = options.headers[name]!
  headers[(options.idempotencyHeader ?? "idempotency-key").toLowerCase()] = options.idempotencyKey
  let body: string | null = null
  if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers["content-type"] = "application/json"
  }
  const url = options.query === undefined ? options.url : `${options.url}?${new URLSearchParams(options.query)}`
  // One budget for the whole exchange, so a vendor that trickles its body cannot hold a worker forever.
  return Effect.flatMap(Effect.zip(AnswerHeaders, RequestWritten), ([hear, onWrite]) =>
    Effect.flatMap(
      exchange({
        dispatcher: options.dispatcher ?? processAgent(),
        url,
        method: options.method ?? "POST",
        headers,
        body,
        timeoutMillis: Duration.toMillis(Duration.fromInputUnsafe(options.timeout)),
        maxResponseBytes: options.maxResponseBytes ?? defaultMaxResponseBytes,
        vendor,
        onWrite
      }),
      (answer) => {
        hear?.(answer.headers)
        return decodeAnswer(vendor, answer, options.schema, options.classify)
      }
    )
  )
}

const decodeAnswer = <A>(
  vendor: string,
  answer: RawAnswer,
  schema: Schema.Decoder<A>,
  classify: Classify | undefined
): Effect.Effect<A, VendorError> => {
  const classified = classify?.(answer)
  if (classified !== undefined) return Effect.fail(classified)
  if (answer.status < 200 || answer.status >= 300) {
    return Effect.fail(
      errorFromStatus({ vendor, status: answer.status, retryAfter: answer.headers["retry-after"], body: answer.body })
    )
  }
  const invalid = (message: string) =>
    new VendorError({ vendor, reason: "InvalidResponse", status: answer.status, message })
  if (answer.body === "") return Effect.fail(invalid(`${vendor} answered ${answer.status} with an empty body`))
  let json: unknown
  try {
    json = JSON.parse(answer.body)
  } catch {
    return Effect.fail(invalid(`${vendor} answered ${answer.status} with a body that is not JSON`))
  }
  if (nestsDeeperThan(json)) {
    return Effect.fail(
      invalid(`${vendor} answered ${answer.status} with JSON nested deeper than ${maxJsonDepth} levels`)
    )
  }
  return Schema.decodeUnknownEffect(schema)(json).pipe(
    Effect.mapError((error) => invalid(`${vendor} answered with an unexpected body: ${error.message}`))
  )
}

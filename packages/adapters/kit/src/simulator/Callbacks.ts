/**
 * Sending a vendor's signed callback the way real vendors do: signed afresh on each attempt (so a
 * late retry is not refused as stale), or signed once and sent again byte for byte as some vendors
 * do (`signOnce`), POSTed as JSON, retried with exponential backoff while our webhook does not
 * answer 2xx. The reference async vendor and the simulator both send through it.
 *
 * @since 0.1.0
 */
import { WebhookSignature } from "@vendorflow/core"
import { Clock, Duration, Effect, Schedule, Schema } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"

/**
 * How a delivery is retried: `times` more attempts, the first after `baseDelayMs`, then doubling.
 *
 * @category models
 */
export interface Retry {
  readonly times: number
  readonly baseDelayMs: number
}

/**
 * The default: 4 more attempts, 500 ms, 1 s, 2 s, 4 s apart.
 *
 * @category constants
 */
export const defaultRetry: Retry = { times: 4, baseDelayMs: 500 }

/**
 * One callback's fate: when its first attempt went out (ms), the status our webhook last answered
 * (none if it never answered), after how many attempts, and whether it was delivered in the end.
 *
 * @category models
 */
export interface Outcome {
  readonly sentAt: number
  readonly attempts: number
  readonly status: number | null
  readonly outcome: "delivered" | "failed"
}

// A delivery our webhook answered with a non-2xx status.
class Refused extends Schema.TaggedError<Refused>()("Refused", { status: Schema.Int }) {}

/**
 * Sends `body` (JSON text) to `url`, signed with `secret` under `scheme` (default
 * `WebhookSignature.hmacSha256`). Never fails: the outcome says what happened.
 *
 * @category sending
 */
export const send = Effect.fnUntraced(function* (options: {
  readonly url: string
  readonly body: string
  readonly secret: string
  readonly scheme?: WebhookSignature.Scheme | undefined
  readonly retry?: Retry | undefined
  /** One attempt's budget; default 5 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** Sign once and send the same bytes and signature on every attempt; default false. */
  readonly signOnce?: boolean | undefined
}): Effect.fn.Return<Outcome, never, HttpClient.HttpClient> {
  const client = yield* HttpClient.HttpClient
  const scheme = options.scheme ?? WebhookSignature.hmacSha256
  const retry = options.retry ?? defaultRetry
  const sentAt = yield* Clock.currentTimeMillis
  const signedAt = (millis: number) =>
    scheme.sign({ secret: options.secret, body: options.body, timestamp: Math.floor(millis / 1000) })
  const first = signedAt(sentAt)
  let attempts = 0
  let status: number | null = null
  const attempt = Effect.gen(function* () {
    const signature = attempts === 0 || options.signOnce === true ? first : signedAt(yield* Clock.currentTimeMillis)
    attempts++
    const response = yield* client
      .execute(
        HttpClientRequest.post(options.url).pipe(
          HttpClientRequest.setHeader(scheme.header, signature),
          HttpClientRequest.bodyText(options.body, "application/json")
        )
      )
      .pipe(Effect.timeout(options.timeout ?? Duration.seconds(5)))
    status = response.status
    // Drained so the connection goes back to the pool.
    yield* Effect.orElseSucceed(response.text, () => "")
    if (response.status < 200 || response.status >= 300) return yield* new Refused({ status: response.status })
  })
  const result = yield* attempt.pipe(
    Effect.retry({ schedule: Schedule.exponential(Duration.millis(retry.baseDelayMs)), times: retry.times }),
    Effect.result
  )
  return { sentAt, attempts, status, outcome: result._tag === "Success" ? "delivered" : "failed" }
})

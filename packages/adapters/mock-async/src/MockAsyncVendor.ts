/**
 * The adapter for the reference asynchronous vendor: `call` hands the job over (the vendor answers
 * 202), and `parseWebhook` verifies the signed callback that later brings the data.
 *
 * Constructors: {@link make} (options in code) and {@link fromConfig} (`MOCK_ASYNC_URL`,
 * `WEBHOOK_SECRET`, `MOCK_ASYNC_RATE_LIMIT`).
 *
 * @since 0.1.0
 */
import { MockVendorAdapter, MockVendorServer } from "@vendorflow/adapter-mock-sync"
import { Job, Vendor, WebhookSignature } from "@vendorflow/core"
import { Config, Effect, Redacted, Schema } from "effect"
import type { HttpClient } from "effect/http"

/**
 * The webhook secret both the mock vendor and the adapter use when `WEBHOOK_SECRET` is unset. For
 * local development only.
 *
 * @category constants
 */
export const defaultWebhookSecret = "vendorflow-dev-secret"

/**
 * The shared webhook secret from `WEBHOOK_SECRET`, {@link defaultWebhookSecret} when unset.
 *
 * @category config
 */
export const webhookSecretConfig: Config.Config<Redacted.Redacted<string>> = Config.Redacted("WEBHOOK_SECRET").pipe(
  Config.withDefault(Redacted.make(defaultWebhookSecret))
)

/**
 * Where the vendor listens when `MOCK_ASYNC_URL` is unset.
 *
 * @category constants
 */
export const defaultUrl = "http://127.0.0.1:8002"

/**
 * How to reach and use the vendor; the name defaults to `"async"`.
 *
 * @category models
 */
export interface Options extends MockVendorAdapter.Options {
  /** The secret webhooks are signed with; default {@link defaultWebhookSecret}. */
  readonly secret?: Redacted.Redacted<string> | string | undefined
  /** How old a webhook's signature may be; default `WebhookSignature.defaultToleranceSeconds`. */
  readonly toleranceSeconds?: number | undefined
}

/**
 * The vendor's answer to `POST /process`.
 *
 * @category schemas
 */
export const ProcessAnswer = Schema.Struct({ accepted: Schema.Literal(true) })

/**
 * The body of the vendor's callback.
 *
 * @category schemas
 */
export const Callback = Schema.Struct({ job_id: Job.JobId, data: Schema.Json })

const decodeCallback = Schema.decodeUnknownEffect(Schema.fromJsonString(Callback))

const refusals = {
  malformed: "the signature header is malformed",
  stale: "the signature's timestamp is outside the tolerance",
  mismatch: "the signature does not match the body"
} as const

/**
 * Verifies a callback's signature over its raw body, then decodes it. A missing header is
 * `MissingSignature`; a malformed, stale or mismatched one is `BadSignature`; a body that is not
 * `{ job_id, data }` is `Malformed`.
 *
 * @category webhooks
 */
export const parseWebhook = (options: {
  readonly secret: Redacted.Redacted<string> | string
  readonly toleranceSeconds?: number | undefined
}) =>
  Effect.fn("MockAsyncVendor.parseWebhook")(function* (request: Vendor.WebhookRequest) {
    const secret = Redacted.isRedacted(options.secret) ? Redacted.value(options.secret) : options.secret
    const verification = WebhookSignature.verify({
      secret,
      body: request.body,
      header: request.headers[WebhookSignature.header],
      toleranceSeconds: options.toleranceSeconds
    })
    if (verification === "missing") {
      return yield* new Vendor.WebhookError({
        reason: "MissingSignature",
        message: `no ${WebhookSignature.header} header`
      })
    }
    if (verification !== "valid") {
      return yield* new Vendor.WebhookError({ reason: "BadSignature", message: refusals[verification] })
    }
    const callback = yield* decodeCallback(request.body).pipe(
      Effect.mapError(
        (error) =>
          new Vendor.WebhookError({
            reason: "Malformed",
            message: `the callback is not { job_id, data }: ${error.message}`
          })
      )
    )
    return { jobId: callback.job_id, data: callback.data }
  })

/**
 * The adapter. It keeps the `HttpClient` it was made with.
 *
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Vendor.Vendor, never, HttpClient.HttpClient> =>
  Effect.map(
    MockVendorAdapter.make({
      ...options,
      defaultName: "async",
      mode: "async",
      body: (request) => ({ job_id: request.jobId, payload: request.payload, webhook_url: request.webhookUrl }),
      answer: ProcessAnswer,
      outcome: () => ({ _tag: "Accepted" })
    }),
    (vendor) => ({
      ...vendor,
      parseWebhook: parseWebhook({
        secret: options.secret ?? defaultWebhookSecret,
        toleranceSeconds: options.toleranceSeconds
      })
    })
  )

/**
 * The options from env: `MOCK_ASYNC_URL` (default http://127.0.0.1:8002), `WEBHOOK_SECRET` (default
 * {@link defaultWebhookSecret}) and `MOCK_ASYNC_RATE_LIMIT` (the same variable the server reads).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  baseUrl: Config.String("MOCK_ASYNC_URL").pipe(Config.withDefault(defaultUrl)),
  secret: webhookSecretConfig,
  rateLimit: MockVendorServer.vendorRateLimitConfig("MOCK_ASYNC_RATE_LIMIT")
})

/**
 * The adapter configured from env (see {@link config}).
 *
 * @category constructors
 */
export const fromConfig: Effect.Effect<Vendor.Vendor, Config.ConfigError, HttpClient.HttpClient> = Effect.flatMap(
  config,
  make
)

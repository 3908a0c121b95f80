/**
 * The adapter for the reference asynchronous vendor, as a vendor definition: a call hands the job
 * over (the vendor answers 202), and the signed callback that later brings the data is verified
 * and parsed.
 *
 * Constructors: {@link make} (options in code) and {@link fromConfig} (`VENDOR_ASYNC_*`, falling
 * back to `MOCK_ASYNC_URL`, `MOCK_ASYNC_RATE_LIMIT` and `WEBHOOK_SECRET`, which the server reads too).
 *
 * @since 0.1.0
 */
import { MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { defineVendor, type Vendor, VendorDefinition } from "@vendorflow/adapter-kit"
import { Config, type Effect, Redacted, Schema } from "effect"

/**
 * The webhook secret both the mock vendor and the adapter use when none is configured. For local
 * development only.
 *
 * @category constants
 */
export const defaultWebhookSecret = "vendorflow-dev-secret"

// `WEBHOOK_SECRET`, read here only: the adapter's setting (below) and the mock vendor's both start from it.
const webhookSecretSetting = Config.Redacted("WEBHOOK_SECRET")

/**
 * The shared webhook secret from `WEBHOOK_SECRET`, {@link defaultWebhookSecret} when unset (what
 * the mock vendor signs with; the adapter refuses the default with `NODE_ENV=production`).
 *
 * @category config
 */
export const webhookSecretConfig: Config.Config<Redacted.Redacted<string>> = webhookSecretSetting.pipe(
  Config.withDefault(Redacted.make(defaultWebhookSecret))
)

/**
 * Where the vendor listens when no URL is configured.
 *
 * @category constants
 */
export const defaultUrl = "http://127.0.0.1:8002"

/**
 * How to reach and use the vendor; the name defaults to `"async"`.
 *
 * @category models
 */
export interface Options extends MockSyncVendor.Options {
  /** The secret webhooks are signed with; default {@link defaultWebhookSecret}. */
  readonly secret?: VendorDefinition.Settings["secret"]
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
export const Callback = Schema.Struct({ job_id: Schema.String, data: Schema.Json })

/**
 * How the vendor calls back: `{ job_id, data }`, signed with `WebhookSignature.hmacSha256`.
 *
 * @category definitions
 */
export const webhook: VendorDefinition.WebhookSpec<typeof Callback.Type> = {
  schema: Callback,
  jobId: (callback) => callback.job_id,
  result: (callback) => callback.data,
  developmentSecret: defaultWebhookSecret
}

/**
 * The vendor. Like the sync one it sometimes sends `user_info`, cleaned by the default PII keys.
 *
 * @category definitions
 */
export const definition = defineVendor({
  name: "async",
  mode: "async",
  url: defaultUrl,
  env: {
    url: Config.String("MOCK_ASYNC_URL"),
    rateLimit: Config.schema(VendorDefinition.RateLimitFromString, "MOCK_ASYNC_RATE_LIMIT"),
    secret: webhookSecretSetting
  },
  request: (call) => ({
    path: "/process",
    body: { job_id: call.jobId, payload: call.payload, webhook_url: call.webhookUrl }
  }),
  response: ProcessAnswer,
  webhook
})

/**
 * Verifies a callback's signature over its raw body, then decodes it. A missing header is
 * `MissingSignature`; a malformed, stale or mismatched one is `BadSignature`; one seen before by
 * this parser is `Replayed`; a body that is not `{ job_id, data }` is `Malformed`.
 *
 * @category webhooks
 */
export const parseWebhook = (options: {
  readonly secret: Redacted.Redacted<string> | string
  readonly toleranceSeconds?: number | undefined
}) =>
  VendorDefinition.webhookParser(
    { ...webhook, ...(options.toleranceSeconds === undefined ? {} : { toleranceSeconds: options.toleranceSeconds }) },
    {
      vendor: "async",
      secret: Redacted.isRedacted(options.secret) ? Redacted.value(options.secret) : options.secret
    }
  )

/**
 * The adapter.
 *
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Vendor.Vendor, VendorDefinition.InvalidDefinition> =>
  VendorDefinition.build(definition, MockSyncVendor.settingsOf(options))

/**
 * The options from env: `VENDOR_ASYNC_URL` or `MOCK_ASYNC_URL` (default http://127.0.0.1:8002),
 * `VENDOR_ASYNC_SECRET` or `WEBHOOK_SECRET` (default {@link defaultWebhookSecret}) and
 * `VENDOR_ASYNC_RATE_LIMIT` or `MOCK_ASYNC_RATE_LIMIT` (the variable the server reads too).
 *
 * @category config
 */
export const config: Config.Config<Options> = VendorDefinition.settingsConfig(definition).pipe(
  Config.map((settings) => ({
    ...MockSyncVendor.optionsOf(settings, defaultUrl),
    secret: settings.secret ?? Redacted.make(defaultWebhookSecret)
  }))
)

/**
 * The adapter configured from env (see {@link config} and `VendorDefinition`'s variables).
 *
 * @category constructors
 */
export const fromConfig: Effect.Effect<Vendor.Vendor, Config.ConfigError | VendorDefinition.InvalidDefinition> =
  VendorDefinition.fromConfig(definition)

/**
 * The adapter for the reference synchronous vendor, as a vendor definition: a call POSTs the job
 * to `/process` and the vendor's `data` is the job's result.
 *
 * Constructors: {@link make} (options in code) and {@link fromConfig} (`VENDOR_SYNC_*`, falling
 * back to `MOCK_SYNC_URL` and `MOCK_SYNC_RATE_LIMIT`, the variables the mock server also reads).
 *
 * @since 0.1.0
 */
import { defineVendor, Job, type Vendor, VendorDefinition } from "@vendorflow/adapter-kit"
import { Config, Effect, Schema } from "effect"

/**
 * How to reach and use the vendor.
 *
 * @category models
 */
export interface Options extends Omit<VendorDefinition.Settings, "url"> {
  /** Where the vendor listens, e.g. `http://127.0.0.1:8001`. */
  readonly baseUrl: string
}

/**
 * Where the vendor listens when no URL is configured.
 *
 * @category constants
 */
export const defaultUrl = "http://127.0.0.1:8001"

/**
 * The vendor's answer to `POST /process`; `data` is kept whole, unknown fields included.
 *
 * @category schemas
 */
export const ProcessAnswer = Schema.Struct({ success: Schema.Literal(true), data: Job.JsonObject })

/**
 * The `MOCK_SYNC_*` variables the definition falls back to (shared with the server).
 *
 * @category config
 */
export const legacyConfig = {
  url: Config.String("MOCK_SYNC_URL"),
  rateLimit: Config.schema(VendorDefinition.RateLimitFromString, "MOCK_SYNC_RATE_LIMIT")
}

/**
 * The vendor. Its answers carry `user_info` (name, e-mail, phone) now and then: the e-mail and
 * phone fall under the Cleaner's default PII keys.
 *
 * @category definitions
 */
export const definition = defineVendor({
  name: "sync",
  mode: "sync",
  url: defaultUrl,
  env: legacyConfig,
  request: (call) => ({ path: "/process", body: { job_id: call.jobId, payload: call.payload } }),
  response: ProcessAnswer,
  result: (answer) => answer.data
})

/**
 * The build settings for mock-vendor options.
 *
 * @category constructors
 */
export const settingsOf = ({ baseUrl, ...settings }: Options): VendorDefinition.Settings => ({
  ...settings,
  url: baseUrl
})

/**
 * Mock-vendor options from settings read from env; `defaultUrl` when no URL is set.
 *
 * @category config
 */
export const optionsOf = ({ url, ...settings }: VendorDefinition.Settings, defaultUrl: string): Options => ({
  ...settings,
  baseUrl: url ?? defaultUrl
})

/**
 * The adapter.
 *
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Vendor.Vendor, VendorDefinition.InvalidDefinition> =>
  VendorDefinition.build(definition, settingsOf(options))

/**
 * The options from env: `VENDOR_SYNC_URL` or `MOCK_SYNC_URL` (default http://127.0.0.1:8001),
 * `VENDOR_SYNC_RATE_LIMIT` or `MOCK_SYNC_RATE_LIMIT` (the variable the server reads too, so one
 * setting tells both the vendor and the worker), and every other `VENDOR_SYNC_*` setting.
 *
 * @category config
 */
export const config: Config.Config<Options> = VendorDefinition.settingsConfig(definition).pipe(
  Config.map((settings) => optionsOf(settings, defaultUrl))
)

/**
 * The adapter configured from env (see {@link config} and `VendorDefinition`'s variables).
 *
 * @category constructors
 */
export const fromConfig: Effect.Effect<Vendor.Vendor, Config.ConfigError | VendorDefinition.InvalidDefinition> =
  VendorDefinition.fromConfig(definition)

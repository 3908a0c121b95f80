/**
 * What an adapter author writes: a vendor as data and a few functions ({@link defineVendor}), and
 * the classifications its `classify` answers with. Re-exported by `VendorDefinition`.
 *
 * @since 0.1.0
 */
import { type Config, type Duration, type Effect, type Redacted, Schema } from "effect"
import type { HttpMethod } from "effect/http"
import type { JobId, JsonObject } from "../Job.ts"
import type * as Vendor from "../Vendor.ts"
import type * as WebhookSignature from "../WebhookSignature.ts"

/**
 * One attempt of one job, as a request builder sees it.
 *
 * @category models
 */
export interface Call<Secret extends string = string> {
  readonly jobId: JobId
  readonly payload: JsonObject
  /** 1 for the first call. */
  readonly attempt: number
  /** Where an async vendor posts its answer (our `/vendor-webhook/<name>`, with its callback token). */
  readonly webhookUrl: string
  /** A secret the definition declares, as configured. */
  readonly secret: (name: Secret) => string
}

/**
 * The HTTP request for one call. The URL is the vendor's base URL (configurable) plus `path`.
 *
 * @category models
 */
export interface HttpCall {
  /** Default `POST`. */
  readonly method?: HttpMethod.HttpMethod | undefined
  /** Appended to the base URL, e.g. `/v1/reports`. */
  readonly path?: string | undefined
  readonly query?: Readonly<Record<string, string>> | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Sent as JSON; none when undefined. */
  readonly body?: unknown
}

/**
 * A vendor-specific reading of an answer (see {@link Classification}); `undefined` keeps the
 * defaults: 429 is rate-limited with its `Retry-After`, 408 and 5xx are transient, other non-2xx
 * statuses are permanent, and a 2xx answer is decoded.
 *
 * @category classification
 */
export type Classify = (answer: Vendor.RawAnswer) => Classification | undefined

/**
 * What a vendor's answer means when it is an error: worth another attempt, worth one after a wait,
 * or never worth retrying.
 *
 * @category classification
 */
export type Classification =
  | { readonly _tag: "Transient"; readonly message?: string | undefined }
  | {
      readonly _tag: "RateLimited"
      readonly retryAfterMillis?: number | undefined
      readonly message?: string | undefined
    }
  | { readonly _tag: "Permanent"; readonly message?: string | undefined }

/**
 * A transient failure: retried with backoff.
 *
 * @category classification
 */
export const transient = (message?: string): Classification => ({ _tag: "Transient", message })

/**
 * The vendor's rate limit was hit: retried after `retryAfterMillis` (when known).
 *
 * @category classification
 */
export const rateLimited = (retryAfterMillis?: number, message?: string): Classification => ({
  _tag: "RateLimited",
  retryAfterMillis,
  message
})

/**
 * A permanent failure: the job fails and is never retried.
 *
 * @category classification
 */
export const permanent = (message?: string): Classification => ({ _tag: "Permanent", message })

/**
 * A vendor's defaults, each overridable by configuration.
 *
 * @category models
 */
export interface Defaults {
  /** `{ limit, window }`, or the env form `"5/1s"`, `"auto"` or `"auto:50/1s"`; default none. */
  readonly rateLimit?: Vendor.RateLimit | string | undefined
  /** Default 5. */
  readonly concurrency?: number | undefined
  /** Calls in flight at once across every worker; default no cap. */
  readonly maxInFlight?: number | undefined
  /** One call's budget, a `Duration.Input` or the env form (`"5s"`); default 10 seconds. */
  readonly timeout?: Duration.Input | string | undefined
  /** The largest answer read, in bytes; default `Vendor.defaultMaxResponseBytes` (5 MiB). */
  readonly maxResponseBytes?: number | undefined
  /** Default: the engine's. */
  readonly maxAttempts?: number | undefined
  /** Async vendors, as `timeout`; default: the engine's. */
  readonly callbackDeadline?: Duration.Input | string | undefined
  /**
   * Async vendors: what the engine does with an overdue job that `checkStatus` cannot settle,
   * `resubmit` (under the same idempotency key) or `fail`; default: the engine's (`resubmit`).
   */
  readonly onCallbackTimeout?: "resubmit" | "fail" | undefined
}

/**
 * Other settings to read when a `VENDOR_<NAME>_*` variable is unset, for a vendor whose tooling
 * already has names of its own (the mock vendors keep `MOCK_SYNC_URL`):
 * `{ url: Config.String("MOCK_SYNC_URL") }`.
 *
 * @category models
 */
export interface EnvAliases {
  readonly url?: Config.Config<string> | undefined
  readonly secret?: Config.Config<Redacted.Redacted<string>> | undefined
  readonly rateLimit?: Config.Config<Vendor.RateLimit | null> | undefined
  readonly timeout?: Config.Config<Duration.Duration> | undefined
  readonly concurrency?: Config.Config<number> | undefined
}

interface Common<Answer, Secret extends string> {
  /** How jobs and webhook URLs name the vendor: lower case letters, digits and `-`. */
  readonly name: string
  /** The vendor's base URL; `VENDOR_<NAME>_URL` overrides it. */
  readonly url: string
  /** The request for one call. */
  readonly request: (call: Call<Secret>) => HttpCall
  /** The schema of a 2xx answer; anything else is `InvalidResponse`. Make it strict enough that garbage fails. */
  readonly response: Schema.Decoder<Answer>
  /** Reads errors a vendor signals in its body (a 200 with `{"error":"quota"}`) or odd statuses. */
  readonly classify?: Classify | undefined
  /** The header that carries the job id as the vendor's idempotency key; default `Idempotency-Key`. */
  readonly idempotencyHeader?: string | undefined
  readonly defaults?: Defaults | undefined
  /** Keys whose values are PII in this vendor's answers, redacted by the Cleaner. */
  readonly piiKeys?: ReadonlyArray<string> | undefined
  /** Keys whose values are kept exactly as they are (see `CleanerRules.keepKeys`). */
  readonly keepKeys?: ReadonlyArray<string> | undefined
  /** Names of the secrets the requests need, each read from `VENDOR_<NAME>_<SECRET>`. */
  readonly secrets?: ReadonlyArray<Secret> | undefined
  readonly env?: EnvAliases | undefined
}

/**
 * A vendor that answers in its HTTP response.
 *
 * @category models
 */
export interface SyncDefinition<Answer = unknown, Secret extends string = string> extends Common<Answer, Secret> {
  readonly mode: "sync"
  /** The job's result from the decoded answer (cleaned afterwards). */
  readonly result: (answer: Answer, call: Call<Secret>) => Schema.Json
}

/**
 * How an async vendor's callbacks look and are signed.
 *
 * @category models
 */
export interface WebhookSpec<Hook> {
  /** The schema of the callback's JSON body. */
  readonly schema: Schema.Decoder<Hook>
  /** Which job the callback answers (a job id: our request id, sent as the idempotency key). */
  readonly jobId: (hook: Hook) => string
  /** The job's result from the callback (cleaned afterwards). */
  readonly result: (hook: Hook) => Schema.Json
  /** Default {@link WebhookSignature.hmacSha256}. */
  readonly signature?: WebhookSignature.Scheme | undefined
  /** How old a signature may be; default 5 minutes. */
  readonly toleranceSeconds?: number | undefined
  /**
   * The secret when none is configured. Only for local mock vendors: a real vendor's secret must
   * come from `VENDOR_<NAME>_SECRET`. With `NODE_ENV=production` a vendor whose secret is this one
   * is not built.
   */
  readonly developmentSecret?: string | undefined
}

/**
 * How to ask an async vendor about a job whose callback is overdue.
 *
 * @category models
 */
export interface StatusSpec<Status, Secret extends string> {
  readonly request: (call: Call<Secret>) => HttpCall
  readonly response: Schema.Decoder<Status>
  /** The job's result when the vendor has it, `undefined` while it is still working. */
  readonly result: (status: Status) => Schema.Json | undefined
}

/**
 * A vendor that accepts a call and posts its answer to our webhook later.
 *
 * @category models
 */
export interface AsyncDefinition<
  Answer = unknown,
  Hook = unknown,
  Status = unknown,
  Secret extends string = string
> extends Common<Answer, Secret> {
  readonly mode: "async"
  readonly webhook: WebhookSpec<Hook>
  readonly checkStatus?: StatusSpec<Status, Secret> | undefined
}

const TypeId = "~@vendorflow/core/VendorDefinition"

/**
 * A defined vendor: what {@link defineVendor} returns and adapter packages export.
 *
 * @category models
 */
export type VendorDefinition = (SyncDefinition<never, string> | AsyncDefinition<never, never, never, string>) & {
  readonly [TypeId]: typeof TypeId
}

/**
 * Defines a vendor. Returns the definition unchanged but marked, so a loader can tell it apart.
 *
 * @category constructors
 */
export function defineVendor<Answer, const Secret extends string = never>(
  definition: SyncDefinition<Answer, Secret>
): VendorDefinition
export function defineVendor<Answer, Hook, Status = never, const Secret extends string = never>(
  definition: AsyncDefinition<Answer, Hook, Status, Secret>
): VendorDefinition
export function defineVendor(definition: SyncDefinition | AsyncDefinition): VendorDefinition {
  // The variance of the function fields is erased here on purpose: a definition is only ever used
  // through `build`, which keeps each schema with the functions that read its values.
  return { ...definition, [TypeId]: TypeId } as unknown as VendorDefinition
}

/**
 * Whether a value is a {@link VendorDefinition} (from any copy of this module).
 *
 * @category guards
 */
export const isVendorDefinition = (value: unknown): value is VendorDefinition =>
  typeof value === "object" &&
  value !== null &&
  TypeId in value &&
  typeof (value as { name?: unknown }).name === "string"

/**
 * A definition that cannot be built: a bad name, or an async vendor with no webhook secret.
 *
 * @category errors
 */
export class InvalidDefinition extends Schema.TaggedError<InvalidDefinition>()("InvalidDefinition", {
  vendor: Schema.String,
  message: Schema.String
}) {}

/**
 * What an adapter package's entry module exports: `vendors` it provides as they are, and/or
 * `configure`, which makes a vendor from the options of a `vendors.<name>` entry in
 * `vendorflow.config.json` (a generic adapter such as `@vendorflow/adapter-http`). `coreVersion`
 * (a range such as `"^0.1.0"`) is read only when the package's `package.json` declares no
 * `@vendorflow/core` range.
 *
 * @category models
 */
export interface AdapterModule {
  readonly vendors?: ReadonlyArray<VendorDefinition> | undefined
  readonly configure?:
    | ((name: string, options: unknown) => Effect.Effect<VendorDefinition, InvalidDefinition>)
    | undefined
  readonly coreVersion?: string | undefined
}

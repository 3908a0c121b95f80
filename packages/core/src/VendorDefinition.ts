/**
 * Vendor definitions: an adapter written as data and a few functions, built into the runtime
 * {@link Vendor.Vendor} the engine uses.
 *
 * {@link defineVendor} takes what is particular to one vendor: its name and mode, how a job becomes
 * its request, the schemas of its answer and of its callback and how they map to the job's result,
 * how it signals errors beyond HTTP statuses, its default limits, which fields are PII, how its
 * webhooks are signed, and (async) how to ask it about an overdue job. Everything else (sending,
 * timeouts, the idempotency key, classification, signature checks, replay refusal) is done here the
 * same way for every vendor.
 *
 * {@link build} turns a definition into a `Vendor` with explicit {@link Settings}; {@link fromConfig}
 * reads the operator's overrides from the environment first:
 *
 * | variable | meaning |
 * |---|---|
 * | `VENDOR_<NAME>_URL` | the vendor's base URL |
 * | `VENDOR_<NAME>_SECRET` | the webhook signing secret (async vendors) |
 * | `VENDOR_<NAME>_<SECRET>` | each secret the definition declares, e.g. `VENDOR_ACME_CREDIT_API_KEY` |
 * | `VENDOR_<NAME>_RATE_LIMIT` | `"5/1s"`, `"100/500ms"`, `"60/1m"`, `"5"` (per second) or `"none"` |
 * | `VENDOR_<NAME>_TIMEOUT` | one call's budget: `"10s"`, `"500ms"`, `"2m"` or `"10 seconds"` |
 * | `VENDOR_<NAME>_MAX_RESPONSE_BYTES` | the largest answer read (default 5 MiB); a larger one fails the job `InvalidResponse` |
 * | `VENDOR_<NAME>_CONCURRENCY` | calls one worker runs at once |
 * | `VENDOR_<NAME>_MAX_ATTEMPTS` | attempts before a transient failure fails the job |
 * | `VENDOR_<NAME>_CALLBACK_DEADLINE` | how long an async job may wait for its callback |
 * | `VENDOR_<NAME>_ON_CALLBACK_TIMEOUT` | `resubmit` or `fail` an overdue async job `checkStatus` cannot settle |
 *
 * `<NAME>` is the vendor's name upper-cased with every run of other characters as `_`
 * (`acme-credit` → `ACME_CREDIT`).
 *
 * @since 0.1.0
 */
import { Clock, Config, Duration, Effect, Option, Redacted, Schema, SchemaIssue, SchemaTransformation } from "effect"
import type { HttpMethod } from "effect/http"
import type { CleanerRules } from "./Cleaner.ts"
import { JobId, type JsonObject, maxJsonDepth, nestsDeeperThan } from "./Job.ts"
import * as Vendor from "./Vendor.ts"
import * as WebhookSignature from "./WebhookSignature.ts"

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
  /** `{ limit, window }`, or the env form `"5/1s"`; default none. */
  readonly rateLimit?: Vendor.RateLimit | string | undefined
  /** Default 5. */
  readonly concurrency?: number | undefined
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
 * What a definition is built with: its defaults overridden by configuration or code.
 *
 * @category models
 */
export interface Settings {
  /** Default the definition's name (a second instance of one adapter needs another). */
  readonly name?: string | undefined
  readonly url?: string | undefined
  /** The webhook signing secret. */
  readonly secret?: Redacted.Redacted<string> | string | undefined
  /** The declared secrets by name. */
  readonly secrets?: Readonly<Record<string, Redacted.Redacted<string> | string>> | undefined
  /** `null` turns the definition's default limit off. */
  readonly rateLimit?: Vendor.RateLimit | null | undefined
  readonly concurrency?: number | undefined
  readonly timeout?: Duration.Input | undefined
  readonly maxResponseBytes?: number | undefined
  readonly maxAttempts?: number | undefined
  readonly callbackDeadline?: Duration.Input | undefined
  readonly onCallbackTimeout?: "resubmit" | "fail" | undefined
}

/**
 * The default time one call may take.
 *
 * @category constants
 */
export const defaultTimeout: Duration.Duration = Duration.seconds(10)

/**
 * The default number of calls one worker runs at once for one vendor.
 *
 * @category constants
 */
export const defaultConcurrency = 5

const unitMillis: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Reads `"5/1s"`, `"5/s"`, `"100/500ms"`, `"60/1m"` or a bare `"5"` (per second) as a rate limit.
 *
 * @category parsing
 */
export const parseRateLimit = (text: string): Vendor.RateLimit | undefined => {
  const match = /^\s*(\d+)\s*(?:\/\s*(\d+)?\s*(ms|s|m|h)\s*)?$/.exec(text)
  if (match === null) return undefined
  const limit = Number(match[1])
  const windowMs = (match[2] === undefined ? 1 : Number(match[2])) * (unitMillis[match[3] ?? "s"] ?? 1000)
  return limit < 1 || windowMs < 1 ? undefined : { limit, window: Duration.millis(windowMs) }
}

/**
 * Reads `"10s"`, `"500ms"`, `"2m"`, `"1h"`, a bare number of milliseconds, or Effect's
 * `"10 seconds"` as a duration.
 *
 * @category parsing
 */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const short = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  if (short !== null) return Duration.millis(Number(short[1]) * (unitMillis[short[2] ?? "ms"] ?? 1))
  return Option.getOrUndefined(Duration.fromInput(text.trim() as Duration.Input))
}

/**
 * A codec for a value written as a short string in env (`"5/1s"`, `"10s"`), for `Config.schema`;
 * `parse` answers undefined when it cannot read the text.
 *
 * @category parsing
 */
export const fromEnvString = <A extends {} | null>(options: {
  readonly type: Schema.Codec<A>
  readonly parse: (text: string) => A | undefined
  readonly format: (value: A) => string
  readonly expected: string
}): Schema.Codec<A, string> =>
  Schema.String.pipe(
    Schema.decodeTo(
      options.type,
      SchemaTransformation.transformEffect({
        decode: (text, parseOptions) => {
          const value = options.parse(text)
          return value === undefined
            ? Effect.fail(new SchemaIssue.InvalidValue({ expected: options.expected }, text, parseOptions))
            : Effect.succeed(value)
        },
        encode: (value) => Effect.succeed(options.format(value))
      })
    )
  )

const RateLimitSchema = Schema.Struct({ limit: Schema.Number, window: Schema.Duration })

/**
 * A rate limit from its env form (`"5/1s"`), or `null` from `"none"`.
 *
 * @category parsing
 */
export const RateLimitFromString: Schema.Codec<typeof RateLimitSchema.Type | null, string> = fromEnvString({
  type: Schema.NullOr(RateLimitSchema),
  parse: (text) => {
    if (text.trim().toLowerCase() === "none") return null
    const limit = parseRateLimit(text)
    return limit === undefined ? undefined : { limit: limit.limit, window: Duration.fromInputUnsafe(limit.window) }
  },
  format: (limit) => (limit === null ? "none" : `${limit.limit}/${Duration.toMillis(limit.window)}ms`),
  expected: `a rate limit like "5/1s", "100/500ms", "5" or "none"`
})

/**
 * A duration from its env form (`"10s"`, `"500ms"`, `"10 seconds"`).
 *
 * @category parsing
 */
export const DurationFromString: Schema.Codec<Duration.Duration, string> = fromEnvString({
  type: Schema.Duration,
  parse: parseDuration,
  format: (duration) => `${Duration.toMillis(duration)}ms`,
  expected: `a duration like "10s", "500ms" or "2m"`
})

/**
 * The prefix of a vendor's variables: `VENDOR_<NAME>_`.
 *
 * @category config
 */
export const envPrefix = (name: string): string =>
  `VENDOR_${name
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")}_`

// The first of `configs` that is set; later ones are aliases. An invalid value is an error rather
// than a reason to fall through to the next one.
const firstSet = <A>(configs: ReadonlyArray<Config.Config<A> | undefined>): Config.Config<A | undefined> =>
  configs
    .filter((config): config is Config.Config<A> => config !== undefined)
    .reduceRight<Config.Config<Option.Option<A>>>(
      (rest, config) =>
        Config.option(config).pipe(Config.flatMap((value) => (Option.isSome(value) ? Config.succeed(value) : rest))),
      Config.succeed(Option.none())
    )
    .pipe(Config.map(Option.getOrUndefined))

const positiveInt = (name: string) => Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), name)

/**
 * The operator's settings for a definition from env (see the module docs); only what is set.
 *
 * @category config
 */
export const settingsConfig = (definition: VendorDefinition): Config.Config<Settings> => {
  const prefix = envPrefix(definition.name)
  const aliases = definition.env ?? {}
  const secretNames: ReadonlyArray<string> = definition.secrets ?? []
  return Config.all({
    url: firstSet([Config.String(`${prefix}URL`), aliases.url]),
    secret: firstSet([Config.Redacted(`${prefix}SECRET`), aliases.secret]),
    rateLimit: firstSet([Config.schema(RateLimitFromString, `${prefix}RATE_LIMIT`), aliases.rateLimit]),
    timeout: firstSet([Config.schema(DurationFromString, `${prefix}TIMEOUT`), aliases.timeout]),
    concurrency: firstSet([positiveInt(`${prefix}CONCURRENCY`), aliases.concurrency]),
    maxResponseBytes: firstSet([positiveInt(`${prefix}MAX_RESPONSE_BYTES`)]),
    maxAttempts: firstSet([positiveInt(`${prefix}MAX_ATTEMPTS`)]),
    callbackDeadline: firstSet([Config.schema(DurationFromString, `${prefix}CALLBACK_DEADLINE`)]),
    onCallbackTimeout: firstSet([Config.Literals(["resubmit", "fail"], `${prefix}ON_CALLBACK_TIMEOUT`)]),
    // Each optional here, so that a missing one is reported by `build` with the variable's name.
    secrets: Config.all(
      Object.fromEntries(secretNames.map((secret) => [secret, firstSet([Config.Redacted(`${prefix}${secret}`)])]))
    ).pipe(Config.map((found) => Object.fromEntries(Object.entries(found).filter(([, value]) => value !== undefined))))
  }).pipe(
    // Only what is set, so that spreading it over other settings never unsets anything.
    Config.map((settings) => Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)))
  )
}

const reveal = (value: Redacted.Redacted<string> | string): string =>
  Redacted.isRedacted(value) ? Redacted.value(value) : value

const joinUrl = (base: string, path: string | undefined): string =>
  path === undefined || path === "" ? base : `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`

const toVendorError = (
  vendor: string,
  answer: Vendor.RawAnswer,
  classification: Classification
): Vendor.VendorError => {
  const message = classification.message ?? `${vendor} answered ${answer.status}: ${answer.body.slice(0, 200)}`
  switch (classification._tag) {
    case "Transient":
      return new Vendor.VendorError({ vendor, reason: "Unavailable", message, status: answer.status })
    case "Permanent":
      return new Vendor.VendorError({ vendor, reason: "Rejected", message, status: answer.status })
    case "RateLimited": {
      const retryAfterMillis = classification.retryAfterMillis ?? Vendor.parseRetryAfter(answer.headers["retry-after"])
      return new Vendor.VendorError({
        vendor,
        reason: "RateLimited",
        message,
        status: answer.status,
        ...(retryAfterMillis === undefined ? {} : { retryAfterMillis })
      })
    }
  }
}

const validName = /^[a-z0-9][a-z0-9-]{0,62}$/

// A default from a definition: undefined when absent, null when it cannot be read.
const durationOf = (input: Duration.Input | string | undefined): Duration.Duration | null | undefined => {
  if (input === undefined) return undefined
  const duration = typeof input === "string" ? parseDuration(input) : Option.getOrUndefined(Duration.fromInput(input))
  return duration ?? null
}

/**
 * Builds a definition into the `Vendor` the engine uses, with `settings` over the definition's
 * defaults. Calls go through the {@link Vendor.HttpDispatcher} in context when it is built; a
 * `WebhookSignature.ReplayGuard` in context is used for webhooks, else each vendor remembers
 * signatures in its own memory.
 *
 * @category constructors
 */
export const build = Effect.fnUntraced(function* (
  definition: VendorDefinition,
  settings: Settings = {}
): Effect.fn.Return<Vendor.Vendor, InvalidDefinition> {
  // The definition's functions are typed against its own schemas; here they meet only values those
  // schemas decoded, so widening them to unknown loses nothing.
  const def = definition as unknown as
    | SyncDefinition<unknown, string>
    | AsyncDefinition<unknown, unknown, unknown, string>
  const name = settings.name ?? def.name
  const invalid = (message: string) => new InvalidDefinition({ vendor: name, message })
  if (!validName.test(name)) {
    return yield* invalid(`vendor name "${name}" must be lower case letters, digits and "-"`)
  }
  const prefix = envPrefix(name)
  const secrets = new Map<string, string>()
  for (const secret of def.secrets ?? []) {
    const value = settings.secrets?.[secret]
    if (value === undefined) return yield* invalid(`${name} needs the secret ${secret} (${prefix}${secret})`)
    secrets.set(secret, reveal(value))
  }
  const defaults = def.defaults ?? {}
  const rateLimitDefault =
    typeof defaults.rateLimit === "string" ? parseRateLimit(defaults.rateLimit) : defaults.rateLimit
  if (typeof defaults.rateLimit === "string" && rateLimitDefault === undefined) {
    return yield* invalid(`${name}: default rate limit "${defaults.rateLimit}" is not like "5/1s"`)
  }
  const rateLimit = settings.rateLimit === null ? undefined : (settings.rateLimit ?? rateLimitDefault)
  const timeoutDefault = durationOf(defaults.timeout)
  const deadlineDefault = durationOf(defaults.callbackDeadline)
  if (timeoutDefault === null || deadlineDefault === null) {
    return yield* invalid(`${name}: a default duration is not like "10s" or "10 seconds"`)
  }
  const timeout = Duration.fromInputUnsafe(settings.timeout ?? timeoutDefault ?? defaultTimeout)
  const baseUrl = settings.url ?? def.url
  const maxAttempts = settings.maxAttempts ?? defaults.maxAttempts
  const maxResponseBytes = settings.maxResponseBytes ?? defaults.maxResponseBytes
  const cleaning: CleanerRules | undefined =
    def.piiKeys === undefined && def.keepKeys === undefined
      ? undefined
      : { piiKeys: def.piiKeys, keepKeys: def.keepKeys }
  const dispatcher = yield* Vendor.HttpDispatcher
  const classify = def.classify === undefined ? undefined : Option.liftThrowable(def.classify)
  const vendorClassify: Vendor.Classify | undefined =
    classify === undefined
      ? undefined
      : (answer) => {
          const classification = classify(answer)
          if (Option.isNone(classification)) {
            return new Vendor.VendorError({
              vendor: name,
              reason: "InvalidResponse",
              status: answer.status,
              message: `${name}: the adapter could not read an answer with status ${answer.status}`
            })
          }
          return classification.value === undefined ? undefined : toVendorError(name, answer, classification.value)
        }

  // Adapters are third-party code: a function of theirs that throws fails the call with a reason
  // instead of killing the worker's fiber.
  const guarded = <A>(what: string, reason: Vendor.VendorErrorReason, f: () => A) =>
    Effect.try({
      try: f,
      catch: (error) =>
        new Vendor.VendorError({
          vendor: name,
          reason,
          message: `${name}: the adapter failed to ${what}: ${String(error)}`
        })
    })

  // Not a spread: the engine makes `webhookUrl` only when it is read.
  const toCall = (request: Vendor.VendorRequest): Call<string> => ({
    jobId: request.jobId,
    payload: request.payload,
    attempt: request.attempt,
    get webhookUrl() {
      return request.webhookUrl
    },
    secret: (secret) => secrets.get(secret) ?? ""
  })

  const send = <A>(spec: HttpCall, request: Vendor.VendorRequest, schema: Schema.Decoder<A>) =>
    Vendor.sendJson({
      vendor: name,
      url: joinUrl(baseUrl, spec.path),
      method: spec.method,
      query: spec.query,
      headers: spec.headers,
      body: spec.body,
      idempotencyKey: request.jobId,
      idempotencyHeader: def.idempotencyHeader,
      schema,
      timeout,
      maxResponseBytes,
      classify: vendorClassify,
      dispatcher
    })

  const call = (request: Vendor.VendorRequest): Effect.Effect<Vendor.VendorOutcome, Vendor.VendorError> => {
    const input = toCall(request)
    return guarded("build the request", "Rejected", () => def.request(input)).pipe(
      Effect.flatMap((spec) => send(spec, request, def.response)),
      Effect.flatMap((answer): Effect.Effect<Vendor.VendorOutcome, Vendor.VendorError> =>
        def.mode === "sync"
          ? Effect.map(
              guarded("map the answer", "InvalidResponse", () => def.result(answer, input)),
              (result) => ({
                _tag: "Completed",
                result
              })
            )
          : Effect.succeed({ _tag: "Accepted" })
      ),
      Effect.withSpan(
        "Vendor.call",
        { attributes: { vendor: name, jobId: request.jobId, attempt: request.attempt } },
        // Where it was called from says nothing here (always the engine), and capturing it costs.
        { captureStackTrace: false }
      )
    )
  }

  const base = {
    name,
    mode: def.mode,
    rateLimit,
    concurrency: settings.concurrency ?? defaults.concurrency ?? defaultConcurrency,
    cleaning,
    timeout,
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
    call
  }
  if (def.mode === "sync") return base

  // Unset unless the definition or the operator sets it: then the engine's default applies.
  const deadline = settings.callbackDeadline ?? deadlineDefault
  const onTimeout = settings.onCallbackTimeout ?? defaults.onCallbackTimeout
  const secret = settings.secret ?? def.webhook.developmentSecret
  if (secret === undefined) return yield* invalid(`${name} needs its webhook secret (${prefix}SECRET)`)
  const production = yield* WebhookSignature.productionConfig.pipe(Effect.mapError((error) => invalid(error.message)))
  if (production && reveal(secret) === def.webhook.developmentSecret) {
    return yield* invalid(
      `${name}'s webhook secret is its development default; with NODE_ENV=production set ${prefix}SECRET` +
        " (or the adapter's own setting, such as WEBHOOK_SECRET for the mock async vendor)"
    )
  }
  const guard = Option.getOrElse(yield* Effect.serviceOption(WebhookSignature.ReplayGuard), () =>
    WebhookSignature.makeMemoryReplayGuard()
  )
  const status = def.checkStatus
  const checkStatus =
    status === undefined
      ? undefined
      : (request: Vendor.VendorRequest): Effect.Effect<Vendor.StatusOutcome, Vendor.VendorError> =>
          guarded("build the status request", "Rejected", () => status.request(toCall(request))).pipe(
            Effect.flatMap((spec) => send(spec, request, status.response)),
            Effect.flatMap((answer) => guarded("map the status", "InvalidResponse", () => status.result(answer))),
            Effect.map((result): Vendor.StatusOutcome =>
              result === undefined ? { _tag: "Pending" } : { _tag: "Completed", result }
            ),
            Effect.withSpan("Vendor.checkStatus", { attributes: { vendor: name, jobId: request.jobId } })
          )
  return {
    ...base,
    ...(deadline === undefined ? {} : { callbackDeadline: Duration.fromInputUnsafe(deadline) }),
    ...(onTimeout === undefined ? {} : { onCallbackTimeout: onTimeout }),
    parseWebhook: webhookParser(def.webhook, { vendor: name, secret: reveal(secret), guard }),
    ...(checkStatus === undefined ? {} : { checkStatus })
  }
})

const refusals: Readonly<Record<Exclude<WebhookSignature.Verification, "valid" | "missing">, string>> = {
  malformed: "the signature header is malformed",
  stale: "the signature's timestamp is outside the tolerance",
  mismatch: "the signature does not match the body"
}

/**
 * A webhook parser for one vendor: checks the signature over the raw body, refuses a signature
 * whose callback was applied before, decodes the body and finds the job. A missing header is
 * `MissingSignature`, a malformed, stale or mismatched one `BadSignature`, an applied one again
 * `Replayed`, a body the schema refuses, nested deeper than `Job.maxJsonDepth` or without a job id
 * `Malformed`. The delivery's `claimReplay` spends the signature (the engine runs it once the
 * callback is applied).
 *
 * @category webhooks
 */
export const webhookParser = <Hook>(
  spec: WebhookSpec<Hook>,
  options: {
    readonly vendor: string
    readonly secret: string
    readonly guard?: WebhookSignature.ReplayGuard["Service"] | undefined
  }
) => {
  const scheme = spec.signature ?? WebhookSignature.hmacSha256
  const tolerance = spec.toleranceSeconds ?? WebhookSignature.defaultToleranceSeconds
  const guard = options.guard ?? WebhookSignature.makeMemoryReplayGuard()
  const decode = Schema.decodeUnknownEffect(spec.schema)
  const refuse = (reason: Vendor.WebhookError["reason"], message: string) =>
    Effect.fail(new Vendor.WebhookError({ reason, message }))
  return Effect.fn("Vendor.parseWebhook")(function* (request: Vendor.WebhookRequest) {
    const signature = request.headers[scheme.header]
    const nowSeconds = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const verification = scheme.verify({
      secret: options.secret,
      body: request.body,
      header: signature,
      nowSeconds,
      toleranceSeconds: tolerance
    })
    if (verification === "missing") return yield* refuse("MissingSignature", `no ${scheme.header} header`)
    if (verification !== "valid") return yield* refuse("BadSignature", refusals[verification])
    const replayKey = `${options.vendor}:${signature}`
    if (yield* guard.seen(replayKey)) return yield* refuse("Replayed", "this signed delivery was applied before")
    const json = yield* decodeJsonBody(request.body).pipe(
      Effect.catch(() => refuse("Malformed", "the body is not JSON"))
    )
    if (nestsDeeperThan(json)) return yield* refuse("Malformed", `the body nests deeper than ${maxJsonDepth} levels`)
    const hook = yield* decode(json).pipe(
      Effect.catch((error) => refuse("Malformed", `the callback is not what ${options.vendor} sends: ${error.message}`))
    )
    const read = Effect.try({
      try: () => ({ jobId: spec.jobId(hook), data: spec.result(hook) }),
      catch: (error) =>
        new Vendor.WebhookError({ reason: "Malformed", message: `the adapter could not read it: ${String(error)}` })
    })
    const { data, jobId } = yield* read
    const delivery: Vendor.WebhookDelivery = {
      jobId: yield* decodeJobId(jobId).pipe(
        Effect.catch(() => refuse("Malformed", "the callback names no job id we issued"))
      ),
      data,
      claimReplay: Effect.asVoid(guard.claim(replayKey, WebhookSignature.replayWindowSeconds(tolerance)))
    }
    return delivery
  })
}

const decodeJsonBody = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Unknown))
const decodeJobId = Schema.decodeUnknownEffect(JobId)

/**
 * Builds a definition with the operator's settings from env (see the module docs) under
 * `overrides` from code.
 *
 * @category constructors
 */
export const fromConfig = (definition: VendorDefinition, overrides: Settings = {}) =>
  Effect.flatMap(settingsConfig(definition), (settings) =>
    build(definition, { ...settings, ...definedOnly(overrides) })
  )

// An override written as `{ url: undefined }` means "not overridden", not "unset".
const definedOnly = (settings: Settings): Settings =>
  Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined))

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

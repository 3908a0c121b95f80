/**
 * Building a definition into the runtime `Vendor` the engine uses, in steps: the settings over the
 * definition's defaults, checked ({@link resolve}); its calls, sent and classified the same way for
 * every vendor; for an async vendor, its webhook secret and parser. Re-exported by
 * `VendorDefinition`.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Redacted, type Schema } from "effect"
import type { Dispatcher } from "undici"
import type { CleanerRules } from "../Cleaner.ts"
import * as Vendor from "../Vendor.ts"
import * as WebhookSignature from "../WebhookSignature.ts"
import {
  type AsyncDefinition,
  type Call,
  type Classification,
  type Classify,
  type HttpCall,
  InvalidDefinition,
  type StatusSpec,
  type SyncDefinition,
  type VendorDefinition
} from "./Definition.ts"
import {
  defaultConcurrency,
  defaultTimeout,
  envPrefix,
  parseDuration,
  parseRateLimit,
  type Settings,
  settingsConfig
} from "./Settings.ts"
import { webhookParser } from "./WebhookParser.ts"

// The definition's functions are typed against its own schemas; the builder hands them only values
// those schemas decoded, so widening them to unknown loses nothing.
type AnyDefinition = SyncDefinition<unknown, string> | AsyncDefinition<unknown, unknown, unknown, string>

const reveal = (value: Redacted.Redacted<string> | string): string =>
  Redacted.isRedacted(value) ? Redacted.value(value) : value

const validName = /^[a-z0-9][a-z0-9-]{0,62}$/

// A default from a definition: undefined when absent, null when it cannot be read.
const durationOf = (input: Duration.Input | string | undefined): Duration.Duration | null | undefined => {
  if (input === undefined) return undefined
  const duration = typeof input === "string" ? parseDuration(input) : Option.getOrUndefined(Duration.fromInput(input))
  return duration ?? null
}

// What a definition's defaults and the settings over them come to.
interface Resolved {
  readonly name: string
  /** `VENDOR_<NAME>_`, for the messages that name a missing variable. */
  readonly prefix: string
  readonly baseUrl: string
  readonly secrets: ReadonlyMap<string, string>
  readonly rateLimit: Vendor.RateLimit | undefined
  readonly concurrency: number
  readonly maxInFlight: number | undefined
  readonly timeout: Duration.Duration
  readonly maxAttempts: number | undefined
  readonly maxResponseBytes: number | undefined
  readonly cleaning: CleanerRules | undefined
  /** Async vendors; unset unless the definition or the operator sets it: then the engine's default applies. */
  readonly callbackDeadline: Duration.Input | undefined
  readonly onCallbackTimeout: "resubmit" | "fail" | undefined
}

const invalidFor = (vendor: string) => (message: string) => new InvalidDefinition({ vendor, message })

// The settings over the definition's defaults; a bad name, a missing declared secret or a default
// that cannot be read fails the build.
const resolve = Effect.fnUntraced(function* (def: AnyDefinition, settings: Settings) {
  const name = settings.name ?? def.name
  const invalid = invalidFor(name)
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
    return yield* invalid(`${name}: default rate limit "${defaults.rateLimit}" is not like "5/1s" or "auto"`)
  }
  if (rateLimitDefault !== undefined && !pacesCalls(rateLimitDefault)) {
    return yield* invalid(
      `${name}: default rate limit ${rateLimitDefault.limit} per ${String(rateLimitDefault.window)} paces no call`
    )
  }
  for (const key of ["concurrency", "maxInFlight", "maxAttempts", "maxResponseBytes"] as const) {
    const value = defaults[key]
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      return yield* invalid(`${name}: default ${key} must be a whole number above 0, not ${value}`)
    }
  }
  const timeoutDefault = durationOf(defaults.timeout)
  const deadlineDefault = durationOf(defaults.callbackDeadline)
  if (timeoutDefault === null || deadlineDefault === null) {
    return yield* invalid(`${name}: a default duration is not like "10s" or "10 seconds"`)
  }
  const resolved: Resolved = {
    name,
    prefix,
    baseUrl: settings.url ?? def.url,
    secrets,
    rateLimit: settings.rateLimit === null ? undefined : (settings.rateLimit ?? rateLimitDefault),
    concurrency: settings.concurrency ?? defaults.concurrency ?? defaultConcurrency,
    maxInFlight: settings.maxInFlight === null ? undefined : (settings.maxInFlight ?? defaults.maxInFlight),
    timeout: Duration.fromInputUnsafe(settings.timeout ?? timeoutDefault ?? defaultTimeout),
    maxAttempts: settings.maxAttempts ?? defaults.maxAttempts,
    maxResponseBytes: settings.maxResponseBytes ?? defaults.maxResponseBytes,
    cleaning:
      def.piiKeys === undefined && def.keepKeys === undefined
        ? undefined
        : { piiKeys: def.piiKeys, keepKeys: def.keepKeys },
    callbackDeadline: settings.callbackDeadline ?? deadlineDefault,
    onCallbackTimeout: settings.onCallbackTimeout ?? defaults.onCallbackTimeout
  }
  return resolved
})

// A limit above 0 (no limit at all only when learned: `auto`) over a window above 0.
const pacesCalls = (limit: Vendor.RateLimit) => {
  const window = Duration.fromInput(limit.window)
  return (
    limit.limit > 0 &&
    (Number.isFinite(limit.limit) || limit.learn === true) &&
    Option.isSome(window) &&
    Duration.isFinite(window.value) &&
    Duration.toMillis(window.value) > 0
  )
}

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
      // A classify that computed no usable wait (NaN, negative, infinite) falls back to `Retry-After`:
      // the wait also pauses the vendor for every worker and delays the job's retry (so, capped).
      const classified = classification.retryAfterMillis
      const retryAfterMillis =
        Vendor.usableRetryAfter(classified) ?? Vendor.parseRetryAfter(answer.headers["retry-after"])
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

// The definition's `classify` as `sendJson` takes it; a `classify` that throws makes the answer
// `InvalidResponse`.
const classifierOf = (name: string, classify: Classify | undefined): Vendor.Classify | undefined => {
  if (classify === undefined) return undefined
  const safely = Option.liftThrowable(classify)
  return (answer) => {
    const classification = safely(answer)
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
}

const joinUrl = (base: string, path: string | undefined): string =>
  path === undefined || path === "" ? base : `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`

// How one vendor's requests are made and sent: what its calls and status checks share.
interface Exchange {
  readonly name: string
  /** Runs a function of the adapter's: one that throws fails the call with `reason`, it does not kill the worker's fiber. */
  readonly guarded: <A>(
    what: string,
    reason: Vendor.VendorErrorReason,
    f: () => A
  ) => Effect.Effect<A, Vendor.VendorError>
  readonly toCall: (request: Vendor.VendorRequest) => Call<string>
  readonly send: <A>(
    spec: HttpCall,
    request: Vendor.VendorRequest,
    schema: Schema.Decoder<A>
  ) => Effect.Effect<A, Vendor.VendorError>
}

const exchangeOf = (def: AnyDefinition, resolved: Resolved, dispatcher: Dispatcher): Exchange => {
  const { baseUrl, maxResponseBytes, name, secrets, timeout } = resolved
  const classify = classifierOf(name, def.classify)
  return {
    name,
    guarded: (what, reason, f) =>
      Effect.try({
        try: f,
        catch: (error) =>
          new Vendor.VendorError({
            vendor: name,
            reason,
            message: `${name}: the adapter failed to ${what}: ${String(error)}`
          })
      }),
    // Not a spread: the engine makes `webhookUrl` only when it is read.
    toCall: (request) => ({
      jobId: request.jobId,
      payload: request.payload,
      attempt: request.attempt,
      get webhookUrl() {
        return request.webhookUrl
      },
      secret: (secret) => secrets.get(secret) ?? ""
    }),
    send: (spec, request, schema) =>
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
        classify,
        dispatcher
      })
  }
}

// One call: the adapter's request, sent; a sync vendor's answer mapped to the job's result, an
// async vendor's taken as its promise to call back.
const callOf =
  (def: AnyDefinition, { guarded, name, send, toCall }: Exchange) =>
  (request: Vendor.VendorRequest): Effect.Effect<Vendor.VendorOutcome, Vendor.VendorError> => {
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

// An async vendor's answer about an overdue job: its data, or that it is still working.
const checkStatusOf =
  (status: StatusSpec<unknown, string>, { guarded, name, send, toCall }: Exchange) =>
  (request: Vendor.VendorRequest): Effect.Effect<Vendor.StatusOutcome, Vendor.VendorError> =>
    guarded("build the status request", "Rejected", () => status.request(toCall(request))).pipe(
      Effect.flatMap((spec) => send(spec, request, status.response)),
      Effect.flatMap((answer) => guarded("map the status", "InvalidResponse", () => status.result(answer))),
      Effect.map((result): Vendor.StatusOutcome =>
        result === undefined ? { _tag: "Pending" } : { _tag: "Completed", result }
      ),
      Effect.withSpan("Vendor.checkStatus", { attributes: { vendor: name, jobId: request.jobId } })
    )

// An async vendor's webhook secret, checked: configured, or the definition's development secret
// outside production.
const webhookSecretOf = Effect.fnUntraced(function* (
  def: AsyncDefinition<unknown, unknown, unknown, string>,
  { name, prefix }: Resolved,
  configured: Redacted.Redacted<string> | string | undefined
) {
  const invalid = invalidFor(name)
  const secret = configured ?? def.webhook.developmentSecret
  if (secret === undefined) return yield* invalid(`${name} needs its webhook secret (${prefix}SECRET)`)
  const production = yield* WebhookSignature.productionConfig.pipe(Effect.mapError((error) => invalid(error.message)))
  if (production && reveal(secret) === def.webhook.developmentSecret) {
    return yield* invalid(
      `${name}'s webhook secret is its development default; with NODE_ENV=production set ${prefix}SECRET` +
        " (or the adapter's own setting, such as WEBHOOK_SECRET for the mock async vendor)"
    )
  }
  return reveal(secret)
})

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
  const def = definition as unknown as AnyDefinition
  const resolved = yield* resolve(def, settings)
  const exchange = exchangeOf(def, resolved, yield* Vendor.HttpDispatcher)
  const { callbackDeadline, maxAttempts, maxInFlight, name, onCallbackTimeout } = resolved
  const base = {
    name,
    mode: def.mode,
    rateLimit: resolved.rateLimit,
    concurrency: resolved.concurrency,
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
    cleaning: resolved.cleaning,
    timeout: resolved.timeout,
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
    call: callOf(def, exchange)
  }
  if (def.mode === "sync") return base

  const secret = yield* webhookSecretOf(def, resolved, settings.secret)
  const guard = Option.getOrElse(yield* Effect.serviceOption(WebhookSignature.ReplayGuard), () =>
    WebhookSignature.makeMemoryReplayGuard()
  )
  return {
    ...base,
    ...(callbackDeadline === undefined ? {} : { callbackDeadline: Duration.fromInputUnsafe(callbackDeadline) }),
    ...(onCallbackTimeout === undefined ? {} : { onCallbackTimeout }),
    parseWebhook: webhookParser(def.webhook, { vendor: name, secret, guard }),
    ...(def.checkStatus === undefined ? {} : { checkStatus: checkStatusOf(def.checkStatus, exchange) })
  }
})

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

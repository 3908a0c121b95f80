/**
 * The operator's settings of a vendor: what a definition is built with, and how they are read
 * from `VENDOR_<NAME>_*` variables (see `VendorDefinition` for the table). Re-exported by
 * `VendorDefinition`.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Option, type Redacted, Schema, SchemaIssue, SchemaTransformation } from "effect"
import type * as Vendor from "../Vendor.ts"
import type { VendorDefinition } from "./Definition.ts"

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
  /** Calls in flight at once across every worker; `null` turns the definition's default cap off. */
  readonly maxInFlight?: number | null | undefined
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
 * Reads `"5/1s"`, `"5/s"`, `"100/500ms"`, `"60/1m"` or a bare `"5"` (per second) as a rate limit;
 * `"auto"` as a limit learned from the vendor's answers, and `"auto:50/1s"` as one learned under a
 * ceiling of 50 per second.
 *
 * @category parsing
 */
export const parseRateLimit = (text: string): Vendor.RateLimit | undefined => {
  const auto = /^\s*auto\s*(?::(.*))?$/i.exec(text)
  if (auto !== null) {
    if (auto[1] === undefined) return { limit: Number.POSITIVE_INFINITY, window: Duration.seconds(1), learn: true }
    const ceiling = parseKnownRateLimit(auto[1])
    return ceiling === undefined ? undefined : { ...ceiling, learn: true }
  }
  return parseKnownRateLimit(text)
}

const parseKnownRateLimit = (text: string): Vendor.RateLimit | undefined => {
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

const RateLimitSchema = Schema.Struct({
  limit: Schema.Number,
  window: Schema.Duration,
  learn: Schema.optionalKey(Schema.Boolean)
})

const formatRateLimit = (limit: typeof RateLimitSchema.Type): string => {
  const known = `${limit.limit}/${Duration.toMillis(limit.window)}ms`
  if (limit.learn !== true) return known
  return Number.isFinite(limit.limit) ? `auto:${known}` : "auto"
}

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
    if (limit === undefined) return undefined
    const window = Duration.fromInputUnsafe(limit.window)
    return limit.learn === true ? { limit: limit.limit, window, learn: true } : { limit: limit.limit, window }
  },
  format: (limit) => (limit === null ? "none" : formatRateLimit(limit)),
  expected: `a rate limit like "5/1s", "100/500ms", "5", "auto", "auto:50/1s" or "none"`
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
    maxInFlight: firstSet([positiveInt(`${prefix}MAX_IN_FLIGHT`)]),
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

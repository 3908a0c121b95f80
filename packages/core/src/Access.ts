/**
 * Who may use the HTTP API, and how often: optional API keys, and a request rate limit per key.
 *
 * - `API_KEYS`: `name:secret` pairs, comma-separated (`alice:s3cr3t,bob:an0ther`). Unset or empty,
 *   the API is open, as the all-in-one development server is. A request names its key in
 *   `Authorization: Bearer <secret>` or `X-API-Key: <secret>`. The name is the owner of the jobs
 *   the key creates: a job is visible only to its owner (others get 404, as for a job that does not
 *   exist). The secrets are `Redacted`, compared by their SHA-256, never stored or logged.
 * - `API_RATE_LIMIT`: requests per key and window, `"100/1s"` by default, `"none"` for no limit.
 *   A fixed window counted in the shared rate-limit store (Redis when `REDIS_URL` is set), so a
 *   key's limit holds across server instances. When the store is unreachable the request goes
 *   through (the store or queue behind it answers for itself) and a warning is logged.
 *
 * Webhooks, `/health`, `/ready` and `/metrics` need no key: vendors sign their callbacks, and
 * probes and scrapers carry no client identity.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Config, ConfigProvider, Context, Duration, Effect, Layer, Redacted, Schema } from "effect"
import { RateLimiter as PersistedRateLimiter } from "effect/persistence"
import type { RateLimit } from "./Vendor.ts"
import { RateLimitFromString } from "./VendorDefinition/Settings.ts"

/**
 * The caller of a request: the name of its key, or `undefined` when keys are off (then every job is
 * visible to every caller).
 *
 * @category models
 */
export interface Caller {
  readonly owner: string | undefined
}

/**
 * Where a key stands against its rate limit after this request, for the `RateLimit` headers.
 *
 * @category models
 */
export interface Quota {
  readonly limit: number
  readonly remaining: number
  /** Seconds until the window resets (rounded up). */
  readonly resetSeconds: number
  /** The window's length in seconds (rounded up). */
  readonly windowSeconds: number
}

/**
 * No key, or one that is not configured.
 *
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.Literals(["Missing", "Unknown"])
}) {
  override get message(): string {
    return this.reason === "Missing"
      ? "This API needs a key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`."
      : "The API key is not valid."
  }
}

/**
 * The key used up its requests for this window.
 *
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  owner: Schema.String,
  limit: Schema.Int,
  windowSeconds: Schema.Int,
  retryAfterSeconds: Schema.Int
}) {
  override get message(): string {
    return `The key ${this.owner} used its ${this.limit} requests per ${this.windowSeconds} s; try again in ${this.retryAfterSeconds} s.`
  }
}

/**
 * Access settings.
 *
 * @category models
 */
export interface Options {
  /** Key name → secret. Empty: the API is open. */
  readonly keys: ReadonlyMap<string, Redacted.Redacted<string>>
  /** Requests per key; `undefined` for none. */
  readonly rateLimit?: RateLimit | undefined
}

/**
 * The default per-key limit.
 *
 * @category constants
 */
export const defaultRateLimit: RateLimit = { limit: 100, window: Duration.seconds(1) }

const invalid = (message: string) => new Config.ConfigError(new ConfigProvider.SourceError({ message }))

/**
 * Reads `API_KEYS` (`name:secret,…`). The error names the bad entry by position, never its secret.
 *
 * @category config
 */
export const keysConfig: Config.Config<ReadonlyMap<string, Redacted.Redacted<string>>> = Config.Redacted(
  "API_KEYS"
).pipe(
  Config.withDefault(Redacted.make("")),
  Config.mapEffect((text) => {
    const keys = new Map<string, Redacted.Redacted<string>>()
    const entries = Redacted.value(text)
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "")
    for (const [i, entry] of entries.entries()) {
      const colon = entry.indexOf(":")
      const name = entry.slice(0, colon).trim()
      const secret = entry.slice(colon + 1).trim()
      if (colon < 1 || name === "" || secret === "" || !/^[\w.@-]+$/.test(name)) {
        return Effect.fail(invalid(`API_KEYS: entry ${i + 1} is not name:secret (names: letters, digits, . _ @ -)`))
      }
      if (keys.has(name)) return Effect.fail(invalid(`API_KEYS: the name ${name} appears twice`))
      keys.set(name, Redacted.make(secret))
    }
    return Effect.succeed(keys)
  })
)

/**
 * Access settings from `API_KEYS` and `API_RATE_LIMIT`.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  keys: keysConfig,
  rateLimit: Config.schema(RateLimitFromString, "API_RATE_LIMIT").pipe(
    Config.withDefault({ limit: defaultRateLimit.limit, window: Duration.fromInputUnsafe(defaultRateLimit.window) }),
    Config.map((limit) => limit ?? undefined)
  )
})

/**
 * The key a request carries: `Authorization: Bearer <key>`, else `X-API-Key`. Header names are
 * lower-case, as Node gives them.
 *
 * @category credentials
 */
export const credentialOf = (headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>) => {
  const authorization = headers["authorization"]
  if (typeof authorization === "string") {
    const match = /^bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match !== null) return match[1]
  }
  const apiKey = headers["x-api-key"]
  return typeof apiKey === "string" && apiKey.trim() !== "" ? apiKey.trim() : undefined
}

const digest = (secret: string) => createHash("sha256").update(secret).digest("base64")

/**
 * The access service.
 *
 * @category services
 */
export class Access extends Context.Service<
  Access,
  {
    /** Whether keys are configured (else every request is let in, unlimited). */
    readonly enabled: boolean
    /**
     * Checks a request's key (see {@link credentialOf}) and counts the request against its limit.
     * The quota is absent when keys are off or the key has no limit.
     */
    readonly authorize: (
      credential: string | undefined
    ) => Effect.Effect<{ readonly caller: Caller; readonly quota: Quota | undefined }, Unauthorized | RateLimited>
  }
>()("@vendorflow/core/Access") {}

const open = { caller: { owner: undefined }, quota: undefined } as const

const seconds = (duration: Duration.Duration) => Math.max(1, Math.ceil(Duration.toMillis(duration) / 1000))

/**
 * The service for `options`, counting requests in the rate limiter in context.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const limiter = yield* PersistedRateLimiter.RateLimiter
  const owners = new Map([...options.keys].map(([name, secret]) => [digest(Redacted.value(secret)), name]))
  const limit = options.rateLimit
  const window = limit === undefined ? Duration.zero : Duration.fromInputUnsafe(limit.window)

  const count = (owner: string) =>
    limit === undefined
      ? Effect.succeed(undefined)
      : limiter.consume({ key: `api-key:${owner}`, algorithm: "fixed-window", limit: limit.limit, window }).pipe(
          Effect.map((result): Quota => ({
            limit: limit.limit,
            remaining: result.remaining,
            resetSeconds: seconds(result.resetAfter),
            windowSeconds: seconds(window)
          })),
          Effect.catch((error) =>
            error.reason._tag === "RateLimitExceeded"
              ? Effect.fail(
                  new RateLimited({
                    owner,
                    limit: limit.limit,
                    windowSeconds: seconds(window),
                    retryAfterSeconds: seconds(error.reason.retryAfter)
                  })
                )
              : Effect.as(
                  Effect.logWarning("the rate-limit store is unreachable; letting the request in", error),
                  undefined
                )
          )
        )

  return Access.of({
    enabled: owners.size > 0,
    authorize: (credential) => {
      if (owners.size === 0) return Effect.succeed(open)
      if (credential === undefined) return Effect.fail(new Unauthorized({ reason: "Missing" }))
      const owner = owners.get(digest(credential))
      if (owner === undefined) return Effect.fail(new Unauthorized({ reason: "Unknown" }))
      return Effect.map(count(owner), (quota) => ({ caller: { owner }, quota }))
    }
  })
})

/**
 * Access from the environment (see the module docs), counting in the rate-limit store in context.
 *
 * @category layers
 */
export const layer: Layer.Layer<Access, Config.ConfigError, PersistedRateLimiter.RateLimiterStore> = Layer.effect(
  Access,
  Effect.flatMap(config, make)
).pipe(Layer.provide(PersistedRateLimiter.layer))

/**
 * Access for explicit options, counting in memory (one process).
 *
 * @category layers
 */
export const layerMemory = (options: Options): Layer.Layer<Access> =>
  Layer.effect(Access, make(options)).pipe(
    Layer.provide(PersistedRateLimiter.layer),
    Layer.provide(PersistedRateLimiter.layerStoreMemory)
  )

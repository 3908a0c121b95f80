/**
 * Core's per-vendor {@link RateLimiter.RateLimiter} with its budget in Redis, so every worker
 * process draws on one budget per vendor.
 *
 * The store is `effect/persistence`'s own Redis store (`RateLimiter.layerStoreRedis`) over the
 * process's {@link RedisConnection.RedisConnection}; nothing here is hand-written Lua. It serves
 * core's limiter as is: core asks for a token bucket of one token refilled every
 * `window / limit × headroom` with `onExceeded: "delay"`, and the store's script takes the token
 * in one atomic step even when it is overdrawn (`allowOverflow`), returning the caller's place in
 * line, so concurrent callers in different processes get consecutive slots, one interval apart.
 *
 * One caveat, accepted: the store's script takes "now" from the calling process's clock, not from
 * the Redis server's. Workers with clocks apart by `s` ms can be let through up to `s` ms early.
 * The headroom on the pace (`RateLimiter.headroom`) absorbs that skew together with network jitter,
 * a few tens of ms on a one-second window; NTP keeps hosts well inside that. Replacing the script
 * to use Redis `TIME` would mean maintaining our own copy of it.
 *
 * Keys (see `RedisKeys`): `<REDIS_PREFIX>{v:<vendor>}:ratelimit` and `…:refill`, in the vendor's hash
 * slot, expiring once the bucket is full. The store's keys are core's (`vendor:<vendor>`) moved
 * there, so its two-key script runs on Redis Cluster.
 *
 * Layers: {@link layer} (over a provided connection) and {@link layerConfig} (`REDIS_URL`,
 * `REDIS_PREFIX`).
 *
 * @since 0.1.0
 */
import { RateLimiter } from "@vendorflow/core"
import type { Config } from "effect"
import { Effect, Layer } from "effect"
import { RateLimiter as PersistedRateLimiter } from "effect/persistence"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

/**
 * The Redis key of a limiter key: core's `vendor:<vendor>` goes to the vendor's hash slot (see
 * `RedisKeys`); any other (an API key's limit) gets a slot of its own, `<prefix>{<key>}:ratelimit`.
 *
 * @category utils
 */
export const keyOf = (prefix: string, key: string): string =>
  key.startsWith("vendor:")
    ? RedisKeys.vendor(prefix, key.slice("vendor:".length)).rateLimit
    : `${prefix}{${key}}:ratelimit`

/**
 * `effect/persistence`'s Redis rate-limit store, its keys named by {@link keyOf}.
 *
 * @category layers
 */
export const layerStore: Layer.Layer<PersistedRateLimiter.RateLimiterStore, never, RedisConnection.RedisConnection> =
  Layer.effect(
    PersistedRateLimiter.RateLimiterStore,
    Effect.gen(function* () {
      const { prefix } = yield* RedisConnection.RedisConnection
      const store = yield* PersistedRateLimiter.makeStoreRedis({ prefix: "" })
      const rekey = <O extends { readonly key: string }>(options: O): O => ({
        ...options,
        key: keyOf(prefix, options.key)
      })
      return PersistedRateLimiter.RateLimiterStore.of({
        fixedWindow: (options) => store.fixedWindow(rekey(options)),
        tokenBucket: (options) => store.tokenBucket(rekey(options)),
        adaptiveConsume: (options) => store.adaptiveConsume(rekey(options)),
        adaptiveFeedback: (options) => store.adaptiveFeedback(rekey(options))
      })
    })
  ).pipe(Layer.provide(RedisConnection.layerRedisImmediate))

/**
 * Core's rate limiter over a provided {@link RedisConnection.RedisConnection}.
 *
 * @category layers
 */
export const layer: Layer.Layer<RateLimiter.RateLimiter, never, RedisConnection.RedisConnection> =
  RateLimiter.layer.pipe(Layer.provide(layerStore))

/**
 * Core's rate limiter configured from the environment, over {@link RedisConnection.layerConfig}
 * (shared with the other layers of this package that are built alongside it).
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<
  RateLimiter.RateLimiter,
  RedisConnection.RedisConnectionError | Config.ConfigError
> = layer.pipe(Layer.provide(RedisConnection.layerConfig))

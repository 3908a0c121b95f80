/**
 * Core's per-vendor {@link RateLimiter.RateLimiter} over Redis, so every worker process shares one
 * pace, one pause after a 429, one learned limit and one cap on calls in flight per vendor: core's
 * limiter over {@link RedisRateLimitStore} (Lua scripts on the Redis server's clock).
 *
 * {@link layerStore} is `effect/persistence`'s own Redis rate-limit store, which the API keys'
 * quotas (`Access`) draw on, its keys named by {@link keyOf}.
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
import * as RedisRateLimitStore from "./RedisRateLimitStore.ts"

/**
 * The Redis key of a quota's key (an API key's): a slot of its own, `<prefix>{<key>}:ratelimit`, so
 * that the store's two-key script runs on Redis Cluster.
 *
 * @category utils
 */
export const keyOf = (prefix: string, key: string): string => `${prefix}{${key}}:ratelimit`

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
  RateLimiter.layer.pipe(Layer.provide(RedisRateLimitStore.layer))

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

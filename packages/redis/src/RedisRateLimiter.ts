/**
 * Core's per-vendor {@link RateLimiter.RateLimiter} over Redis, so every worker process shares one
 * pace, one pause after a 429, one learned limit and one cap on calls in flight per vendor: core's
 * limiter over {@link RedisRateLimitStore} (Lua scripts on the Redis server's clock).
 *
 * {@link layerStore} is `effect/persistence`'s own Redis rate-limit store under
 * `<prefix>ratelimit:`, which the API keys' quotas (`Access`) draw on.
 *
 * Layers: {@link layer} (over a provided connection) and {@link layerConfig} (`REDIS_URL`,
 * `REDIS_PREFIX`).
 *
 * @since 0.1.0
 */
import { RateLimiter } from "@vendorflow/core"
import type { Config } from "effect"
import { Layer } from "effect"
import { RateLimiter as PersistedRateLimiter } from "effect/persistence"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisRateLimitStore from "./RedisRateLimitStore.ts"

/**
 * The key prefix, after `REDIS_PREFIX`, of `effect/persistence`'s rate-limit store.
 *
 * @category constants
 */
export const keyPrefix = "ratelimit:"

/**
 * `effect/persistence`'s Redis rate-limit store under `<prefix>ratelimit:` (the API keys' quotas).
 *
 * @category layers
 */
export const layerStore: Layer.Layer<PersistedRateLimiter.RateLimiterStore, never, RedisConnection.RedisConnection> =
  Layer.unwrap(
    RedisConnection.RedisConnection.useSync((connection) =>
      PersistedRateLimiter.layerStoreRedis({ prefix: `${connection.prefix}${keyPrefix}` })
    )
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

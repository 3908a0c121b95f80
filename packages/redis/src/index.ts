/**
 * `@vendorflow/redis`: the job queue on Redis Streams and the per-vendor rate limits on Redis, so
 * that every server and worker process shares one queue and one budget per vendor.
 *
 * `RedisBackend` is everything a deployment shares, on Redis, as a core `Backend`.
 *
 * Layers: `RedisJobQueue.layerConfig` (core's `JobQueue`), `RedisRateLimiter.layerConfig` (core's
 * `RateLimiter`) and `RedisConnection.layerConfig` (the connections, with `ping` for health
 * checks); built together, they share one set of connections.
 *
 * @since 0.1.0
 */
export * as RedisBackend from "./RedisBackend.ts"
export * as RedisCircuitBreaker from "./RedisCircuitBreaker.ts"
export * as RedisConnection from "./RedisConnection.ts"
export * as RedisJobQueue from "./RedisJobQueue.ts"
export * as RedisJobStore from "./RedisJobStore.ts"
export * as RedisKeys from "./RedisKeys.ts"
export * as RedisRateLimiter from "./RedisRateLimiter.ts"
export * as RedisRateLimitStore from "./RedisRateLimitStore.ts"
export * as RedisReplayGuard from "./RedisReplayGuard.ts"
export * as RedisStats from "./RedisStats.ts"
export * as RedisWorkers from "./RedisWorkers.ts"

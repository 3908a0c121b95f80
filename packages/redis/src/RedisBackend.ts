/**
 * Everything a deployment shares, on Redis (core's `Backend`): the job store, the job queue on
 * Redis Streams, the rate limits, the circuit breakers, the webhook replay guard, the workers'
 * heartbeats and the dashboard's statistics, over one set of connections, with a `redis` health
 * check. On one Redis (not a cluster) new jobs are stored and queued by one script
 * (`RedisJobStore.layerStoreAndQueue`).
 *
 * Offers {@link make} (explicit options) and {@link fromEnv} (`REDIS_URL`, `REDIS_PREFIX`,
 * `REDIS_JOB_TTL` and the `QUEUE_*` settings).
 *
 * @since 0.1.0
 */
import { Backend, Health, type JobQueue, type JobStore } from "@vendorflow/core"
import { Config, Effect, Layer } from "effect"
import * as RedisCircuitBreaker from "./RedisCircuitBreaker.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisJobQueue from "./RedisJobQueue.ts"
import * as RedisJobStore from "./RedisJobStore.ts"
import * as RedisRateLimiter from "./RedisRateLimiter.ts"
import * as RedisRateLimitStore from "./RedisRateLimitStore.ts"
import * as RedisReplayGuard from "./RedisReplayGuard.ts"
import * as RedisStats from "./RedisStats.ts"
import * as RedisWorkers from "./RedisWorkers.ts"

/**
 * The connection's options (`url`, `prefix`, timeouts), the queue's and the job store's.
 *
 * @category models
 */
export interface Options extends RedisConnection.Options {
  readonly queue?: RedisJobQueue.Options | undefined
  readonly store?: RedisJobStore.Options | undefined
}

const health: Layer.Layer<Health.Health, never, RedisConnection.RedisConnection> = Layer.effect(
  Health.Health,
  RedisConnection.RedisConnection.useSync((connection) =>
    Health.Health.of({ checks: [{ name: "redis", check: connection.ping }] })
  )
)

const over = <
  E1 extends Backend.StartupError,
  E2 extends Backend.StartupError,
  E3 extends Backend.StartupError,
  E4 extends Backend.StartupError
>(
  connection: Layer.Layer<RedisConnection.RedisConnection, E1>,
  store: Layer.Layer<JobStore.JobStore, E2, RedisConnection.RedisConnection>,
  queue: Layer.Layer<JobQueue.JobQueue, E3, RedisConnection.RedisConnection>,
  storeAndQueue: Layer.Layer<never, E4, RedisConnection.RedisConnection | JobStore.JobStore | JobQueue.JobQueue>
) =>
  Backend.make(
    "redis",
    Layer.mergeAll(
      store,
      queue,
      // Over the very store and queue above (a layer is built once), which it applies to only.
      storeAndQueue.pipe(Layer.provide(Layer.merge(store, queue))),
      RedisRateLimiter.layerStore,
      RedisRateLimitStore.layer,
      RedisCircuitBreaker.layerStore,
      RedisReplayGuard.layer,
      RedisWorkers.layer,
      RedisStats.layer(),
      health
    ).pipe(Layer.provide(connection))
  )

/**
 * The backend on the Redis at `options.url`.
 *
 * @category constructors
 */
export const make = (options: Options): Backend.Backend =>
  over(
    RedisConnection.layer(options),
    RedisJobStore.layer(options.store),
    RedisJobQueue.layer(options.queue),
    RedisJobStore.layerStoreAndQueue(options)
  )

/**
 * The backend configured from the environment.
 *
 * @category constructors
 */
export const fromEnv: Backend.Backend = over(
  RedisConnection.layerConfig,
  Layer.unwrap(Effect.map(RedisJobStore.config, RedisJobStore.layer)),
  Layer.unwrap(Effect.map(RedisJobQueue.config, RedisJobQueue.layer)),
  Layer.unwrap(
    Effect.map(
      Config.all({ store: RedisJobStore.config, queue: RedisJobQueue.config }),
      RedisJobStore.layerStoreAndQueue
    )
  )
)

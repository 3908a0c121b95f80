/**
 * The backends a process runs on, chosen from the environment:
 *
 * - `REDIS_URL` set: the job queue on Redis Streams; rate limits, circuit breakers, worker heartbeats
 *   the dashboard's statistics and the webhook replay guard shared through Redis;
 * - `MONGODB_URI` set (with `MONGODB_DB`): the job store on MongoDB; otherwise, with `REDIS_URL`, the
 *   job store on Redis too (so a server and its workers share it even where there is no MongoDB);
 * - neither: the in-memory store, queue and limiter of one process (the embedded default).
 *
 * Either may be set without the other. Each backend with a server registers its health check.
 * Building the layer is the start-up check: a bad or unreachable URL fails it with one error that
 * names the server (never its credentials).
 *
 * @since 0.1.0
 */
import {
  Access,
  Cleaner,
  Health,
  JobQueue,
  JobStore,
  RateLimiter,
  Stats,
  VendorCircuit,
  WebhookSignature,
  Workers
} from "@vendorflow/core"
import { MongoJobStore } from "@vendorflow/mongo"
import {
  RedisCircuitBreaker,
  RedisConnection,
  RedisJobQueue,
  RedisJobStore,
  RedisRateLimiter,
  RedisReplayGuard,
  RedisStats,
  RedisWorkers
} from "@vendorflow/redis"
import { Config, Context, Effect, Layer, Option } from "effect"
import { CircuitBreaker, RateLimiter as PersistedRateLimiter } from "effect/persistence"

/**
 * The services a process composes on top of: storage, queue, rate limits, cleaning and health.
 *
 * @category models
 */
export type Services =
  | JobStore.JobStore
  | JobQueue.JobQueue
  | RateLimiter.RateLimiter
  | CircuitBreaker.CircuitBreaker
  | Cleaner.Cleaner
  | Health.Health
  | Access.Access
  | Workers.Workers
  | WebhookSignature.ReplayGuard

/**
 * Why the backends could not start: a bad setting, or a server that is unreachable or refuses us.
 *
 * @category errors
 */
export type StartupError = Config.ConfigError | RedisConnection.RedisConnectionError | JobStore.JobStoreError

/**
 * Which backends the environment asks for.
 *
 * @category models
 */
export interface Choice {
  readonly redis: boolean
  readonly mongo: boolean
}

/**
 * Reads the choice: a variable that is set and not empty picks its backend.
 *
 * @category config
 */
export const choice: Config.Config<Choice> = Config.all({
  redis: Config.option(Config.NonEmptyString("REDIS_URL")).pipe(Config.map(Option.isSome)),
  mongo: Config.option(Config.NonEmptyString("MONGODB_URI")).pipe(Config.map(Option.isSome))
})

const store = (chosen: Choice) =>
  chosen.mongo
    ? Effect.map(Layer.build(MongoJobStore.layerConfig), (context) => {
        const mongoStore = Context.get(context, MongoJobStore.MongoJobStore)
        const check: Health.Check = { name: "mongodb", check: mongoStore.ping }
        return { store: Context.get(context, JobStore.JobStore), checks: [check] }
      })
    : chosen.redis
      ? Effect.map(Layer.build(RedisJobStore.layerConfig), (context) => ({
          store: Context.get(context, JobStore.JobStore),
          checks: []
        }))
      : Effect.map(Layer.build(JobStore.layerMemory), (context) => ({
          store: Context.get(context, JobStore.JobStore),
          checks: []
        }))

const queueAndLimits = (redis: boolean) =>
  redis
    ? Effect.map(
        Layer.build(
          Layer.mergeAll(
            RedisJobQueue.layerConfig,
            RedisRateLimiter.layer,
            Access.layer.pipe(Layer.provide(RedisRateLimiter.layerStore)),
            RedisWorkers.layer,
            RedisStats.layer(),
            RedisReplayGuard.layer,
            VendorCircuit.layerConfig.pipe(Layer.provide(RedisCircuitBreaker.layerStore))
          ).pipe(Layer.provideMerge(RedisConnection.layerConfig))
        ),
        (context) => {
          const connection = Context.get(context, RedisConnection.RedisConnection)
          const check: Health.Check = { name: "redis", check: connection.ping }
          return {
            queue: Context.get(context, JobQueue.JobQueue),
            limiter: Context.get(context, RateLimiter.RateLimiter),
            access: Context.get(context, Access.Access),
            workers: Context.get(context, Workers.Workers),
            stats: Context.get(context, Stats.Stats),
            replayGuard: Context.get(context, WebhookSignature.ReplayGuard),
            breaker: Context.get(context, CircuitBreaker.CircuitBreaker),
            checks: [check]
          }
        }
      )
    : Effect.map(
        Layer.build(
          Layer.mergeAll(
            JobQueue.layerMemory,
            RateLimiter.layerMemory,
            Access.layer.pipe(Layer.provide(PersistedRateLimiter.layerStoreMemory)),
            Workers.layerMemory,
            Stats.layerMemory,
            WebhookSignature.ReplayGuard.layerMemory,
            VendorCircuit.layerConfig.pipe(Layer.provide(CircuitBreaker.layerStoreMemory()))
          )
        ),
        (context) => ({
          queue: Context.get(context, JobQueue.JobQueue),
          limiter: Context.get(context, RateLimiter.RateLimiter),
          access: Context.get(context, Access.Access),
          workers: Context.get(context, Workers.Workers),
          stats: Context.get(context, Stats.Stats),
          replayGuard: Context.get(context, WebhookSignature.ReplayGuard),
          breaker: Context.get(context, CircuitBreaker.CircuitBreaker),
          checks: []
        })
      )

/**
 * The backends for a choice.
 *
 * @category layers
 */
export const layerFor = (chosen: Choice): Layer.Layer<Services, StartupError> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const storage = yield* store(chosen)
      const queueing = yield* queueAndLimits(chosen.redis)
      return Context.make(JobStore.JobStore, storage.store).pipe(
        Context.add(JobQueue.JobQueue, queueing.queue),
        Context.add(RateLimiter.RateLimiter, queueing.limiter),
        Context.add(Access.Access, queueing.access),
        Context.add(Workers.Workers, queueing.workers),
        Context.add(Stats.Stats, queueing.stats),
        Context.add(WebhookSignature.ReplayGuard, queueing.replayGuard),
        Context.add(CircuitBreaker.CircuitBreaker, queueing.breaker),
        Context.add(Health.Health, Health.Health.of({ checks: [...storage.checks, ...queueing.checks] })),
        Context.merge(yield* Layer.build(Cleaner.layer))
      )
    })
  )

/**
 * The backends the environment asks for (see the module docs).
 *
 * @category layers
 */
export const layer: Layer.Layer<Services, StartupError> = Layer.unwrap(Effect.map(choice, layerFor))

/**
 * What the Redis tests share: where Redis is, a random key prefix per test whose keys are deleted
 * when the test ends, a `redis-server` of a test's own that it can kill and start again, and
 * waiting on a condition with a deadline.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, type Scope } from "effect"
import type { Redis } from "effect/persistence"
import * as RedisConnection from "../src/RedisConnection.ts"
import { RedisServer } from "../src/testing/index.ts"

/**
 * The shared Redis of the tests.
 *
 * @category constants
 */
export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/**
 * Why the shared Redis can't be used here, or `undefined` when it can; tests skip with the reason.
 *
 * @category constants
 */
export const redisUnavailable: string | undefined = await Effect.runPromise(
  Layer.build(RedisConnection.layer({ url: redisUrl, connectTimeout: "2 seconds" })).pipe(
    Effect.scoped,
    Effect.match({ onFailure: (error) => `skipped, no Redis: ${error.message}`, onSuccess: () => undefined })
  )
)

/**
 * Why a test can't start a `redis-server` of its own, or `undefined` when it can.
 *
 * @category constants
 */
export const redisServerUnavailable: string | undefined = RedisServer.unavailable

/**
 * A test's title with, where it is skipped for want of a `redis-server` of its own, the reason.
 *
 * @category utils
 */
export const ownServerTitle = (title: string): string =>
  redisServerUnavailable === undefined ? title : `${title} (${redisServerUnavailable})`

/**
 * A random key prefix, so that concurrent test runs on one Redis never meet.
 *
 * @category utils
 */
export const randomPrefix = (): string => `test:${crypto.randomUUID().slice(0, 8)}:`

/**
 * A random vendor name.
 *
 * @category utils
 */
export const vendorName = (): string => `vendor-${crypto.randomUUID().slice(0, 8)}`

/**
 * Deletes every key under `prefix`.
 *
 * @category utils
 */
export const deleteKeys = (redis: Redis.Redis["Service"], prefix: string): Effect.Effect<void, Redis.RedisError> => {
  const from = (cursor: string): Effect.Effect<void, Redis.RedisError> =>
    redis
      .send<[string, Array<string>]>("SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", "1000")
      .pipe(
        Effect.flatMap(([next, found]) =>
          (found.length > 0 ? redis.send("DEL", ...found) : Effect.void).pipe(
            Effect.andThen(next === "0" ? Effect.void : from(next))
          )
        )
      )
  return from("0")
}

/**
 * A connection to the shared Redis under a fresh prefix, for looking at keys; the prefix's keys
 * are deleted when the scope closes, after everything opened later in it has closed.
 *
 * @category utils
 */
export const scratch: Effect.Effect<
  { readonly prefix: string; readonly redis: Redis.Redis["Service"] },
  RedisConnection.RedisConnectionError,
  Scope.Scope
> = Effect.gen(function* () {
  const prefix = randomPrefix()
  const connection = yield* Layer.build(RedisConnection.layer({ url: redisUrl, prefix })).pipe(
    Effect.map(Context.get(RedisConnection.RedisConnection))
  )
  yield* Effect.addFinalizer(() => deleteKeys(connection.redis, prefix).pipe(Effect.ignore))
  return { prefix, redis: connection.redis }
})

/**
 * Deletes the keys under `prefix` when the layer's scope closes; provide it beneath the layers
 * that use the prefix so that it closes last.
 *
 * @category layers
 */
export const layerCleanup = (prefix: string): Layer.Layer<never, RedisConnection.RedisConnectionError> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const connection = yield* RedisConnection.make({ url: redisUrl, prefix })
      yield* Effect.addFinalizer(() => deleteKeys(connection.redis, prefix).pipe(Effect.ignore))
    })
  )

/**
 * Runs `effect` until `done` holds for its result, failing once `within` has passed.
 *
 * @category utils
 */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  options: { readonly within: Duration.Input; readonly what: string }
): Effect.Effect<A, E | Error, R> =>
  effect.pipe(
    Effect.repeat({ until: done }),
    Effect.timeoutOrElse({
      duration: options.within,
      orElse: () =>
        Effect.fail(
          new Error(`${options.what}: not within ${Duration.format(Duration.fromInputUnsafe(options.within))}`)
        )
    })
  )

/**
 * A `redis-server` of the test's own that keeps nothing on disk (see `RedisServer.make`).
 *
 * @category utils
 */
export const redisServer = RedisServer.make()

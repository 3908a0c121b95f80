/**
 * Tests on a shared Redis: {@link describeRedis} runs a block against the Redis at `REDIS_URL`
 * (default 127.0.0.1:6379) under a random key prefix whose keys are deleted after the block, and
 * skips it, with the reason in the run's output, where that Redis does not answer. For a test of its
 * own: {@link scratch} (a prefix and a connection to look at its keys) and {@link layerCleanup}.
 * Needs `@effect/vitest`.
 *
 * @since 0.1.0
 */
import { afterAll, describe } from "@effect/vitest"
import { Context, Effect, Layer, type Scope } from "effect"
import type { Redis } from "effect/persistence"
import * as RedisConnection from "../RedisConnection.ts"

/**
 * The shared Redis of the tests: `REDIS_URL`, default `redis://127.0.0.1:6379`.
 *
 * @category constants
 */
export const url: string = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/**
 * A random key prefix, so that test runs sharing one Redis never meet, e.g. `test:1a2b3c4d:`.
 *
 * @category utils
 */
export const randomPrefix = (label = "test"): string => `${label}:${crypto.randomUUID().slice(0, 8)}:`

/**
 * Deletes every key under `prefix`, a batch of `SCAN` at a time, so that a shared keyspace of any
 * size never blocks Redis.
 *
 * @category utils
 */
export const deleteKeys = (redis: Redis.Redis["Service"], prefix: string): Effect.Effect<void, Redis.RedisError> => {
  const from = (cursor: string): Effect.Effect<void, Redis.RedisError> =>
    redis
      .send<[string, Array<string>]>("SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", "1000")
      .pipe(
        Effect.flatMap(([next, found]) =>
          (found.length > 0 ? redis.send("UNLINK", ...found) : Effect.void).pipe(
            Effect.andThen(next === "0" ? Effect.void : from(next))
          )
        )
      )
  return from("0")
}

/**
 * Connects to `redisUrl`, deletes every key under `prefix` and disconnects. Never fails: a Redis
 * that is gone by then is logged, as keys left behind.
 *
 * @category utils
 */
export const dropKeys = (redisUrl: string, prefix: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    const connection = yield* RedisConnection.make({ url: redisUrl, prefix, connectTimeout: "2 seconds" })
    yield* deleteKeys(connection.redis, prefix)
  }).pipe(
    Effect.scoped,
    Effect.catchCause((cause) => Effect.logWarning(`keys under ${prefix} not deleted`, cause))
  )

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
  const connection = yield* Layer.build(RedisConnection.layer({ url, prefix })).pipe(
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
      const connection = yield* RedisConnection.make({ url, prefix })
      yield* Effect.addFinalizer(() => deleteKeys(connection.redis, prefix).pipe(Effect.ignore))
    })
  )

// Asked once per test file: a connection with a short start-up check.
let answering: Promise<string | undefined> | undefined

/**
 * Why the shared Redis cannot be used here, or `undefined` when it answers.
 *
 * @category utils
 */
export const unavailable = (): Promise<string | undefined> =>
  (answering ??= Effect.runPromise(
    Layer.build(RedisConnection.layer({ url, connectTimeout: "2 seconds" })).pipe(
      Effect.scoped,
      Effect.match({ onFailure: (error) => `skipped, no Redis: ${error.message}`, onSuccess: () => undefined })
    )
  ))

/**
 * A block of tests on the shared Redis: `body` gets its URL and a random key prefix, whose keys
 * are deleted once the block is done. The tests sit in a block named after the Redis they run on,
 * or, where it does not answer, after the reason they are skipped: never counted as passed.
 *
 * @category constructors
 */
export const describeRedis = (
  name: string,
  body: (redis: { readonly url: string; readonly prefix: string }) => void
): void => {
  describe(`${name}`, async () => {
    const reason = await unavailable()
    describe.skipIf(reason !== undefined)(`${reason ?? `on ${url}`}`, () => {
      const prefix = randomPrefix()
      afterAll(() => Effect.runPromise(dropKeys(url, prefix)))
      body({ url, prefix })
    })
  })
}

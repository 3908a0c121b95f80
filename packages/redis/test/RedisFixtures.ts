/**
 * What the Redis tests share beyond `RedisTest`: a `redis-server` of a test's own that it can kill
 * and start again, a random vendor name, and waiting on a condition with a deadline.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import { RedisServer } from "../src/testing/index.ts"

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
 * A random vendor name.
 *
 * @category utils
 */
export const vendorName = (): string => `vendor-${crypto.randomUUID().slice(0, 8)}`

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

/**
 * The webhook replay guard shared through Redis (core's `WebhookSignature.ReplayGuard`), so a
 * signed delivery is accepted once by all API processes together, not once by each.
 *
 * A claim is `SET <prefix>replay:<signature> 1 NX EX <ttl>`: the first process to set it accepts the
 * delivery; `seen` is `EXISTS` on the same key. While Redis does not answer, the process's own memory guard decides (and a warning is
 * logged), so callbacks keep being judged: a replay could then be accepted once more by another
 * process, the guard's behaviour before Redis.
 *
 * @since 0.1.0
 */
import { WebhookSignature } from "@vendorflow/core"
import { Effect, Layer } from "effect"
import type { Redis } from "effect/persistence"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

/**
 * The guard over the connection in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const { prefix, redis, target } = yield* RedisConnection.RedisConnection
  const local = WebhookSignature.makeMemoryReplayGuard()
  const orLocally =
    <A>(decide: Effect.Effect<A>) =>
    (error: Redis.RedisError) =>
      Effect.logWarning(
        `replay guard: Redis at ${target}: ${RedisConnection.causeMessage(error)}; this process decides alone`
      ).pipe(Effect.andThen(decide))
  return WebhookSignature.ReplayGuard.of({
    claim: (key, ttlSeconds) =>
      redis
        .send<string | null>("SET", RedisKeys.replay(prefix, key), "1", "NX", "EX", String(Math.max(1, ttlSeconds)))
        .pipe(
          Effect.map((reply) => reply === "OK"),
          Effect.catch(orLocally(local.claim(key, ttlSeconds)))
        ),
    // A claim this process made alone (Redis away) is in its memory only.
    seen: (key) =>
      Effect.flatMap(local.seen(key), (seenHere) =>
        seenHere
          ? Effect.succeed(true)
          : redis.send<number>("EXISTS", RedisKeys.replay(prefix, key)).pipe(
              Effect.map((reply) => reply === 1),
              Effect.catch(orLocally(Effect.succeed(false)))
            )
      )
  })
})

/**
 * The guard over a provided connection.
 *
 * @category layers
 */
export const layer: Layer.Layer<WebhookSignature.ReplayGuard, never, RedisConnection.RedisConnection> = Layer.effect(
  WebhookSignature.ReplayGuard,
  make
)

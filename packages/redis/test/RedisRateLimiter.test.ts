import { assert, describe, it } from "@effect/vitest"
import { RateLimiter } from "@vendorflow/core"
import { RateLimiterSuite } from "@vendorflow/core/testing"
import { ConfigProvider, Context, Duration, Effect, Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisRateLimiter from "../src/RedisRateLimiter.ts"
import { layerCleanup, randomPrefix, redisUnavailable, redisUrl, scratch, vendorName } from "./RedisFixtures.ts"

// Skipped, with the reason in its title, when there is no Redis to test against.
describe.skipIf(redisUnavailable !== undefined)(
  `RedisRateLimiter${redisUnavailable === undefined ? "" : ` (${redisUnavailable})`}`,
  () => {
    const suitePrefix = randomPrefix()
    // Each build of this layer opens its own connection, as each worker process does.
    RateLimiterSuite.suite(
      "redis",
      RedisRateLimiter.layer.pipe(
        Layer.provide(RedisConnection.layer({ url: redisUrl, prefix: suitePrefix })),
        Layer.provide(layerCleanup(suitePrefix))
      )
    )

    it.live("two workers configured from the environment share one budget per vendor", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* scratch
        const worker = Layer.build(
          RedisRateLimiter.layerConfig.pipe(
            Layer.provide(
              ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: redisUrl, REDIS_PREFIX: prefix }))
            )
          )
        ).pipe(Effect.map(Context.get(RateLimiter.RateLimiter)))
        const [first, second] = [yield* worker, yield* worker]
        const limit = { limit: 5, window: "1 second" } as const
        const interval = (1000 / 5) * RateLimiter.headroom
        const vendor = vendorName()
        const waits = yield* Effect.all([first.wait(vendor, limit), second.wait(vendor, limit)], { concurrency: 2 })
        const [shorter, longer] = waits.map(Duration.toMillis).sort((a, b) => a - b)
        assert.strictEqual(shorter, 0)
        assert.isAtLeast(longer!, interval - 40)
        assert.isAtMost(longer!, interval + 5)
        assert.strictEqual(
          yield* redis.send<number>("EXISTS", `${prefix}${RedisRateLimiter.keyPrefix}vendor:${vendor}`),
          1
        )
      })
    )
  }
)

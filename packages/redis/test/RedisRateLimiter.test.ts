import { assert, it } from "@effect/vitest"
import { RateLimiter } from "@vendorflow/core"
import { RateLimiterSuite, RateLimitStoreSuite } from "@vendorflow/core/testing"
import { ConfigProvider, Context, Duration, Effect, Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisRateLimiter from "../src/RedisRateLimiter.ts"
import * as RedisKeys from "../src/RedisKeys.ts"
import * as RedisRateLimitStore from "../src/RedisRateLimitStore.ts"
import { RedisTest } from "../src/testing/index.ts"
import { vendorName } from "./RedisFixtures.ts"

RedisTest.describeRedis("RedisRateLimiter", ({ prefix: suitePrefix }) => {
  // Each build of this layer opens its own connection, as each worker process does.
  RateLimiterSuite.suite(
    "redis",
    RedisRateLimiter.layer.pipe(Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix: suitePrefix })))
  )

  RateLimitStoreSuite.suite(
    "redis",
    RedisRateLimitStore.layer.pipe(Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix: suitePrefix })))
  )

  it.live("two workers configured from the environment share one budget per vendor", () =>
    Effect.gen(function* () {
      const { prefix, redis } = yield* RedisTest.scratch
      const worker = Layer.build(
        RedisRateLimiter.layerConfig.pipe(
          Layer.provide(
            ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: RedisTest.url, REDIS_PREFIX: prefix }))
          )
        )
      ).pipe(Effect.map(Context.get(RateLimiter.RateLimiter)))
      const [first, second] = [yield* worker, yield* worker]
      const limit = { limit: 5, window: "1 second" } as const
      const interval = (1000 / 5) * RateLimiter.headroom
      const vendor = vendorName()
      const waits = yield* Effect.all([first.wait(vendor, limit), second.wait(vendor, limit)], { concurrency: 2 })
      const [shorter, longer] = waits.map(Duration.toMillis).sort((a, b) => a - b)
      // The first caller waits only for its answer from Redis; the second for the next slot.
      assert.isBelow(shorter!, interval / 2)
      assert.isAtLeast(longer!, interval - 40)
      // (No upper bound: a caller woken late by a busy machine rightly takes a later slot.)
      assert.strictEqual(yield* redis.send<number>("EXISTS", RedisKeys.vendor(prefix, vendor).rate("state")), 1)
    })
  )
})

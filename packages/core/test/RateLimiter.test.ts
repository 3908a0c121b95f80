import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as RateLimiter from "../src/RateLimiter.ts"
import * as RateLimitStore from "../src/RateLimitStore.ts"

const limit = { limit: 5, window: "1 second" } as const
const interval = (1000 / 5) * RateLimiter.headroom

describe("RateLimiter", () => {
  it.effect("paces calls evenly: the nth concurrent caller waits n intervals", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 8 }), () => limiter.wait("sync", limit), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("5 seconds")
      const waits = (yield* Fiber.join(fiber)).map(Duration.toMillis)
      waits.forEach((wait, n) => assert.closeTo(wait, n * interval, 1e-6))
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("never lets more than the limit into any one-second window", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 30 }), () => limiter.wait("sync", limit), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("10 seconds")
      const at = (yield* Fiber.join(fiber)).map(Duration.toMillis).sort((a, b) => a - b)
      const worst = Math.max(...at.map((start) => at.filter((t) => t >= start && t < start + 1000).length))
      assert.strictEqual(worst, 5)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("keeps one budget per vendor", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const first = yield* limiter.wait("a", limit)
      const other = yield* limiter.wait("b", limit)
      assert.deepStrictEqual([Duration.toMillis(first), Duration.toMillis(other)], [0, 0])
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("two limiters over one store (two workers) share the budget", () =>
    Effect.gen(function* () {
      const store = yield* Layer.build(RateLimitStore.layerMemory)
      const [a, b] = yield* Effect.all([
        RateLimiter.make.pipe(Effect.provideContext(store)),
        RateLimiter.make.pipe(Effect.provideContext(store))
      ])
      const fiber = yield* Effect.forkChild(
        Effect.all([a.wait("sync", limit), b.wait("sync", limit)], { concurrency: 2 })
      )
      yield* TestClock.adjust("1 second")
      const waits = (yield* Fiber.join(fiber)).map(Duration.toMillis).sort((x, y) => x - y)
      assert.strictEqual(waits[0], 0)
      assert.closeTo(waits[1]!, interval, 1e-6)
    })
  )
})

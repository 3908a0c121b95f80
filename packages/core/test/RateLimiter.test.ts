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

describe("RateLimiter, told hostile values", () => {
  it.effect("a 429 whose Retry-After is NaN (a classify's bad parse) pauses as one without it", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      yield* limiter.limited("nan", { limit, retryAfterMillis: Number.NaN })
      const fiber = yield* Effect.forkChild(limiter.wait("nan", limit))
      yield* TestClock.adjust(Duration.millis(RateLimitStore.defaultPauseMillis + 100))
      assert.isDefined(fiber.pollUnsafe(), "the caller still waits (or spins) after the default pause")
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it("takes the strictest of several advertised policies", () => {
    assert.deepStrictEqual(RateLimiter.advertisedBy({ "ratelimit-policy": "10;w=1, 50;w=60" }), {
      limit: 50,
      windowMillis: 60_000
    })
    assert.deepStrictEqual(
      RateLimiter.advertisedBy({ "ratelimit-policy": '"burst";q=100;w=1, "day";q=1000;w=86400' }),
      {
        limit: 1000,
        windowMillis: 86_400_000
      }
    )
  })

  it("ignores an advertised limit with no window, or none at all", () => {
    assert.isUndefined(RateLimiter.advertisedBy({ "ratelimit-policy": "10;w=0" }))
    assert.isUndefined(RateLimiter.advertisedBy({ "x-ratelimit-limit": "Infinity" }))
    assert.isUndefined(RateLimiter.advertisedBy({ "x-ratelimit-limit": "1e999" }))
  })

  it.effect("a learned limit without a ceiling stays finite whatever the headers say", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const auto = { limit: Number.POSITIVE_INFINITY, window: "1 second", learn: true } as const
      yield* limiter.heard("wild", auto, { "ratelimit-policy": "10;w=0" })
      const { learnedPerSecond } = yield* limiter.snapshot("wild")
      assert.isTrue(learnedPerSecond === undefined || Number.isFinite(learnedPerSecond), `${learnedPerSecond}`)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )
})

describe("RateLimiter, an advertised limit", () => {
  const auto = { limit: Number.POSITIVE_INFINITY, window: "1 second", learn: true } as const
  const headers = { "ratelimit-policy": "5;w=1" }

  it.effect("is paced again after a 429 cut it, while the answers still advertise it", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      yield* limiter.heard("told", auto, headers)
      yield* limiter.limited("told", { limit: auto, retryAfterMillis: 1000 })
      assert.strictEqual((yield* limiter.snapshot("told")).source, "probed")
      yield* TestClock.adjust("2 seconds")
      yield* limiter.heard("told", auto, headers)
      const { learnedPerSecond, source } = yield* limiter.snapshot("told")
      assert.strictEqual(source, "advertised")
      assert.closeTo(learnedPerSecond!, 5 / RateLimiter.headroom, 1e-9)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("is told again to a store that forgot it (its state expired)", () =>
    Effect.gen(function* () {
      // A store whose state can be lost, as Redis's expires after a day unused.
      let current = yield* RateLimitStore.makeMemory
      const forgetful = RateLimitStore.RateLimitStore.of({
        take: (vendor, pace) => current.take(vendor, pace),
        limited: (vendor, options) => current.limited(vendor, options),
        advertise: (vendor, perSecond) => current.advertise(vendor, perSecond),
        acquireSlot: (vendor, options) => current.acquireSlot(vendor, options),
        releaseSlot: (vendor, holder) => current.releaseSlot(vendor, holder),
        snapshot: (vendor) => current.snapshot(vendor)
      })
      const limiter = yield* RateLimiter.make.pipe(Effect.provideService(RateLimitStore.RateLimitStore, forgetful))
      yield* limiter.heard("forgot", auto, headers)
      current = yield* RateLimitStore.makeMemory
      yield* TestClock.adjust("1 minute")
      yield* limiter.heard("forgot", auto, headers)
      assert.strictEqual((yield* limiter.snapshot("forgot")).source, "advertised")
    })
  )
})

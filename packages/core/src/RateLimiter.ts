/**
 * Per-vendor rate limits, shared by every worker that uses the same store.
 *
 * Built on `effect/persistence/RateLimiter`: {@link layerMemory} keeps the budget in the process, and
 * `@vendorflow/redis` provides the Redis store so every worker process draws on one budget.
 *
 * Calls are paced evenly (a token bucket holding one token, refilled every `window / limit`) rather
 * than let through in bursts: a burst at the end of one window and another at the start of the next
 * would put up to twice the limit into one second as the vendor sees it. The pace carries 5% headroom
 * so that jitter between us and the vendor (timers, connection set-up; 10–30 ms seen on
 * loopback) cannot squeeze `limit + 1` calls into the vendor's window.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer } from "effect"
import { RateLimiter as PersistedRateLimiter } from "effect/persistence"
import type { RateLimit } from "./Vendor.ts"

/**
 * Headroom on the pace, see the module comment.
 *
 * @category constants
 */
export const headroom = 1.05

/**
 * The per-vendor rate limiter service.
 *
 * @category services
 */
export class RateLimiter extends Context.Service<
  RateLimiter,
  {
    /** Waits until `vendor` may be called once more under `limit`; returns how long it waited. */
    readonly wait: (
      vendor: string,
      limit: RateLimit
    ) => Effect.Effect<Duration.Duration, PersistedRateLimiter.RateLimiterError>
  }
>()("@vendorflow/core/RateLimiter") {}

/**
 * The limiter over whichever `effect/persistence` store is provided.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const limiter = yield* PersistedRateLimiter.RateLimiter
  return RateLimiter.of({
    wait: Effect.fn("RateLimiter.wait")(function* (vendor, limit) {
      const interval = (Duration.toMillis(Duration.fromInputUnsafe(limit.window)) / limit.limit) * headroom
      const { delay } = yield* limiter.consume({
        key: `vendor:${vendor}`,
        algorithm: "token-bucket",
        onExceeded: "delay",
        limit: 1,
        window: Duration.millis(interval)
      })
      if (Duration.isGreaterThan(delay, Duration.zero)) yield* Effect.sleep(delay)
      return delay
    })
  })
})

/**
 * The limiter over a provided `effect/persistence` RateLimiter store.
 *
 * @category layers
 */
export const layer: Layer.Layer<RateLimiter, never, PersistedRateLimiter.RateLimiterStore> = Layer.effect(
  RateLimiter,
  make
).pipe(Layer.provide(PersistedRateLimiter.layer))

/**
 * The limiter with its budget in this process.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimiter> = layer.pipe(Layer.provide(PersistedRateLimiter.layerStoreMemory))

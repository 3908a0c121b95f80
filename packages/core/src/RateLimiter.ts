/**
 * Per-vendor rate limits, shared by every worker that uses the same store.
 *
 * Built on `effect/persistence/RateLimiter`: {@link layerMemory} keeps the budget in the process, and
 * `@vendorflow/redis` provides the Redis store so every worker process draws on one budget.
 *
 * Calls are paced evenly (a token bucket holding one token, refilled every `window / limit`) rather
 * than let through in bursts: a burst at the end of one window and another at the start of the next
 * would put up to twice the limit into one second as the vendor sees it. The pace carries 4% headroom
 * so that jitter between us and the vendor (timers, connection set-up) cannot squeeze `limit + 1`
 * calls into the vendor's window; and a caller that wakes later than its slot (a busy event loop)
 * takes a fresh one rather than bunch up with the next.
 * How late is too late follows from the headroom: with slots `I = 1.04 W / L` apart, arrivals up to
 * `t·I` late put at most `floor(L / 1.04 + t) + 1` calls into a window `W`, which stays within `L`
 * while `t < L (1 - 1/1.04)`; the tolerance is 90% of that, and never more than half a slot.
 * The bound is at most `L` for every limit. The headroom is no larger than that needs, since what it
 * holds back is the vendor's budget left unused (`docs/benchmarks.md` has the measurements).
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { RateLimiter as PersistedRateLimiter } from "effect/persistence"
import type { RateLimit } from "./Vendor.ts"

/**
 * Headroom on the pace, see the module comment.
 *
 * @category constants
 */
export const headroom = 1.04

/**
 * The per-vendor rate limiter service.
 *
 * @category services
 */
export class RateLimiter extends Context.Service<
  RateLimiter,
  {
    /** Waits until `vendor` may be called once more under `limit`; returns the wait its slot asked for. */
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
      const tolerance = interval * Math.min(0.5, 0.9 * limit.limit * (1 - 1 / headroom))
      let first: { readonly seen: number; readonly delay: number } | undefined
      while (true) {
        const { delay } = yield* limiter.consume({
          key: `vendor:${vendor}`,
          algorithm: "token-bucket",
          onExceeded: "delay",
          limit: 1,
          window: Duration.millis(interval)
        })
        const seen = yield* Clock.currentTimeMillis
        const due = seen + Duration.toMillis(delay)
        first ??= { seen, delay: Duration.toMillis(delay) }
        if (Duration.isGreaterThan(delay, Duration.zero)) yield* Effect.sleep(delay)
        // The wait the store asked for, plus how much later a retaken slot came.
        if ((yield* Clock.currentTimeMillis) - due <= tolerance) return Duration.millis(due - first.seen)
        // Woken too late (a busy event loop): the caller with the next slot may be on time, and going
        // now would put the two calls closer than the pace allows. Take a fresh slot instead.
      }
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

/**
 * The conformance suite every {@link RateLimiter} layer runs: memory in core's unit tests, Redis in
 * `@vendorflow/redis`'s integration tests.
 *
 * It runs on the real clock, because a store outside the process (Redis) does not see the test
 * clock; the limits are small (10 per 500 ms) so that it stays quick, and timings are checked with
 * tolerances. Each test uses its own vendor names, so one limiter instance serves the whole suite.
 *
 * "Two independently built instances share one budget" builds `layer` twice more with
 * `Layer.fresh`, which is how two worker processes look to a shared store. A layer whose store
 * lives inside the layer (memory) gives each build its own budget; run it with the store built
 * once and provided to both.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { headroom, RateLimiter, tolerance } from "../RateLimiter.ts"

const limit = { limit: 10, window: "500 millis" } as const
/** The pace the limiter keeps: one call per interval. */
const interval = (500 / 10) * headroom
/** How far it may lead it: by rounding and the moment between a call and the store seeing it. */
const precision = 10
/** How late a caller may go after its slot, so how much closer than the pace it may come to the next. */
const late = tolerance(interval, limit.limit)

const vendorName = () => `suite-${crypto.randomUUID().slice(0, 8)}`

interface Grant {
  /** What `wait` returned. */
  readonly delay: number
  /** When `wait` returned, ms after the test started. */
  readonly released: number
}

const waitAll = (calls: ReadonlyArray<readonly [RateLimiter["Service"], string]>) =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    return yield* Effect.forEach(
      calls,
      ([limiter, vendor]) =>
        Effect.gen(function* () {
          const delay = Duration.toMillis(yield* limiter.wait(vendor, limit))
          const released = (yield* Clock.currentTimeMillis) - start
          return { delay, released } satisfies Grant
        }),
      { concurrency: "unbounded" }
    )
  })

// The invariant: the limiter lets calls through one interval apart, less how late a caller may go
// (measured when `wait` returned: what the store's clock said is not seen here).
const assertPaced = (label: string, grants: ReadonlyArray<Grant>) => {
  const at = grants.map((grant) => grant.released).sort((a, b) => a - b)
  at.slice(1).forEach((time, n) => {
    const gap = time - (at[n] ?? 0)
    assert.isAtLeast(gap, interval - late - precision, `${label}: calls ${n} and ${n + 1} let through ${gap} ms apart`)
  })
}

/**
 * Registers the suite under `name`, against the limiter that `layer` builds.
 *
 * @category suites
 */
export const suite = <E>(name: string, layer: Layer.Layer<RateLimiter, E>): void => {
  describe(`RateLimiter conformance: ${name}`, () => {
    it.layer(layer, { timeout: 30_000, excludeTestServices: true })((it) => {
      it.effect("paces concurrent callers evenly: the nth waits about n intervals", () =>
        Effect.gen(function* () {
          const limiter = yield* RateLimiter
          const vendor = vendorName()
          const grants = yield* waitAll(Array.from({ length: 8 }, () => [limiter, vendor] as const))
          assertPaced("grants", grants)
          const released = grants.map((grant) => grant.released).sort((a, b) => a - b)
          released.forEach((at, n) => {
            assert.isAtLeast(at, n * interval - precision, `caller ${n} went through at ${at} ms, before its turn`)
          })
        })
      )

      it.effect("never lets more than the limit through in any window", () =>
        Effect.gen(function* () {
          const limiter = yield* RateLimiter
          const vendor = vendorName()
          const grants = yield* waitAll(Array.from({ length: 25 }, () => [limiter, vendor] as const))
          const at = grants.map((grant) => grant.released).sort((a, b) => a - b)
          const window = 500 - precision
          const busiest = Math.max(...at.map((start) => at.filter((t) => t >= start && t < start + window).length))
          assert.isAtMost(busiest, limit.limit)
        })
      )

      it.effect("keeps a separate budget per vendor", () =>
        Effect.gen(function* () {
          const limiter = yield* RateLimiter
          const [a, b] = [vendorName(), vendorName()]
          const grants = yield* waitAll([a, b, a, b, a, b].map((vendor) => [limiter, vendor] as const))
          assertPaced(
            `vendor ${a}`,
            grants.filter((_, i) => i % 2 === 0)
          )
          assertPaced(
            `vendor ${b}`,
            grants.filter((_, i) => i % 2 === 1)
          )
        })
      )

      it.effect("two independently built limiters over the same backend share one budget", () =>
        Effect.gen(function* () {
          const build = Layer.build(Layer.fresh(layer)).pipe(Effect.map(Context.get(RateLimiter)))
          const first = yield* build
          const second = yield* build
          const vendor = vendorName()
          const grants = yield* waitAll(
            [first, second, first, second, first, second].map((limiter) => [limiter, vendor] as const)
          )
          assertPaced("both limiters together", grants)
        })
      )
    })
  })
}

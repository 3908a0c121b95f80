import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import * as Stats from "../src/Stats.ts"
import { VendorError } from "../src/Vendor.ts"

const vendors: ReadonlyArray<Stats.VendorInfo> = [
  { name: "sync", mode: "sync", rateLimit: { limit: 5, window: "1 second" } },
  { name: "async", mode: "async" }
]

const report = Stats.report({
  vendors,
  backlog: (vendor) => Effect.succeed(vendor === "sync" ? 3 : undefined),
  circuit: () => Effect.succeed("Closed")
})

describe("Stats", () => {
  it.effect("windows, rates, percentiles and the rate-limit use", () =>
    Effect.gen(function* () {
      const stats = yield* Stats.makeMemory
      yield* TestClock.adjust("90 minutes")
      // Out of both windows by the time of the report.
      yield* stats.recordCompleted("sync", 1)
      yield* TestClock.adjust("61 minutes")
      for (let i = 1; i <= 100; i++) yield* stats.recordCall("sync", "ok", i)
      yield* stats.recordCall("sync", "Unavailable", 1000)
      for (let i = 0; i < 9; i++) yield* stats.recordCompleted("sync", 200)
      yield* stats.recordFailed("sync", "Rejected")
      yield* TestClock.adjust("30 seconds")

      const answer = yield* report.pipe(Effect.provideService(Stats.Stats, stats))
      assert.isTrue(answer.collecting)
      const sync = answer.vendors[0]
      assert.strictEqual(sync?.backlog, 3)
      assert.strictEqual(sync?.circuit, "Closed")
      const five = sync?.windows[0]
      assert.strictEqual(five?.minutes, 5)
      assert.strictEqual(five?.calls, 101)
      assert.deepStrictEqual(five?.call_errors, { Unavailable: 1 })
      assert.strictEqual(five?.completed, 9)
      assert.strictEqual(five?.failed, 1)
      assert.deepStrictEqual(five?.failure_reasons, { Rejected: 1 })
      assert.closeTo(five?.success_rate ?? 0, 0.9, 1e-9)
      assert.closeTo(five?.throughput_per_minute ?? 0, 2, 1e-9)
      // Log bins are 4% wide.
      assert.closeTo(five?.call_latency_ms?.p50 ?? 0, 51, 3)
      assert.closeTo(five?.call_latency_ms?.p95 ?? 0, 96, 4)
      assert.closeTo(five?.end_to_end_ms?.p50 ?? 0, 200, 8)
      assert.strictEqual(sync?.windows[1]?.completed, 9)
      // 101 calls in the last minute against 5 a second.
      assert.closeTo(sync?.rate_limit?.used_per_second ?? 0, 101 / 60, 1e-9)
      assert.closeTo(sync?.rate_limit?.use ?? 0, 101 / 60 / 5, 1e-9)
      assert.strictEqual(sync?.series.length, 30)
      assert.strictEqual(
        sync?.series.reduce((n, point) => n + point.calls, 0),
        101
      )
      const other = answer.vendors[1]
      assert.strictEqual(other?.backlog, undefined)
      assert.strictEqual(other?.rate_limit, undefined)
      assert.strictEqual(other?.windows[0]?.calls, 0)
      assert.strictEqual(other?.windows[0]?.success_rate, undefined)
    })
  )

  it.effect("records a call's exit, but not a refusal by the circuit", () =>
    Effect.gen(function* () {
      const stats = yield* Stats.makeMemory
      const options = { vendor: "sync", startedAt: 0 }
      yield* Stats.recordCallExit(stats, options, Exit.succeed(1))
      yield* Stats.recordCallExit(
        stats,
        options,
        Exit.fail(new VendorError({ vendor: "sync", reason: "Rejected", message: "400" }))
      )
      yield* Stats.recordCallExit(stats, options, Exit.fail({ _tag: "CircuitBreakerError" }))
      const summary = yield* stats.summary("sync", 5)
      assert.strictEqual(summary.calls, 2)
      assert.deepStrictEqual(summary.callErrors, { Rejected: 1 })
    })
  )

  it.effect("the default collects nothing", () =>
    Effect.gen(function* () {
      const answer = yield* report
      assert.isFalse(answer.collecting)
      assert.strictEqual(answer.vendors[0]?.windows[0]?.calls, 0)
    })
  )

  it.effect("a learned limit, calls in flight and a pause come from the shared rate-limit state", () =>
    Effect.gen(function* () {
      const answer = yield* Stats.report({
        vendors: [
          {
            name: "auto",
            mode: "sync",
            rateLimit: { limit: Infinity, window: "1 second", learn: true },
            maxInFlight: 10
          },
          { name: "fresh", mode: "sync", rateLimit: { limit: 50, window: "1 second", learn: true } }
        ],
        backlog: () => Effect.succeed(undefined),
        circuit: () => Effect.succeed("Closed"),
        limits: (vendor) =>
          Effect.succeed(
            vendor === "auto"
              ? { learnedPerSecond: 37.5, source: "probed", pausedForMillis: 800, inFlight: 4 }
              : { learnedPerSecond: undefined, source: "none", pausedForMillis: 0, inFlight: 0 }
          )
      })
      const [auto, fresh] = answer.vendors
      assert.deepInclude(auto?.rate_limit, {
        limit: 37.5,
        limit_per_second: 37.5,
        learned: true,
        source: "probed",
        paused_ms: 800
      })
      assert.deepStrictEqual(auto?.in_flight, { calls: 4, max: 10 })
      // Nothing learned yet: its ceiling.
      assert.deepInclude(fresh?.rate_limit, { limit_per_second: 50, learned: true, source: "none" })
      assert.strictEqual(fresh?.in_flight, undefined)
    })
  )
})

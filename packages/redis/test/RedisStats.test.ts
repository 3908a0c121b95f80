import { assert, it } from "@effect/vitest"
import { Stats } from "@vendorflow/core"
import { Context, Effect, Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisStats from "../src/RedisStats.ts"
import { RedisTest } from "../src/testing/index.ts"
import { eventually, vendorName } from "./RedisFixtures.ts"

RedisTest.describeRedis("RedisStats", () => {
  it.live("what two workers record is what the server reads, summed over the window and in the series", () =>
    Effect.gen(function* () {
      const { prefix } = yield* RedisTest.scratch
      // Three processes, each with its own connection and collector, as a server and two workers.
      const collector = Layer.build(
        Layer.effect(Stats.Stats, RedisStats.make({ flushInterval: "50 millis" })).pipe(
          Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix }))
        )
      ).pipe(Effect.map(Context.get(Stats.Stats)))
      const [first, second, server] = [yield* collector, yield* collector, yield* collector]
      const vendor = vendorName()
      yield* first.recordCall(vendor, "ok", 100)
      yield* first.recordCompleted(vendor, 150)
      yield* second.recordCall(vendor, "Unavailable", 400)
      yield* second.recordCall(vendor, "ok", 110)
      yield* second.recordCompleted(vendor, 160)
      yield* second.recordFailed(vendor, "Rejected")

      const summary = yield* eventually(
        server.summary(vendor, 5),
        (seen) => seen.calls === 3 && seen.completed === 2 && seen.failed === 1,
        { within: "3 seconds", what: "both workers' figures" }
      )
      assert.deepStrictEqual(summary.callErrors, { Unavailable: 1 })
      assert.deepStrictEqual(summary.failureReasons, { Rejected: 1 })
      // Latencies within the bins' 4%.
      assert.approximately(summary.callLatency?.p50 ?? 0, 110, 5)
      assert.approximately(summary.callLatency?.p95 ?? 0, 400, 16)
      assert.approximately(summary.endToEnd?.p95 ?? 0, 160, 7)
      const series = yield* server.series(vendor, 5)
      assert.strictEqual(series.length, 30)
      assert.strictEqual(
        series.reduce((sum, point) => sum + point.calls, 0),
        3
      )
      // Read again (some buckets from the cache): the same figures.
      assert.deepStrictEqual(yield* server.summary(vendor, 60), { ...summary, observedMillis: 60_000 })
    })
  )

  it.live("a process's figures are flushed when it stops", () =>
    Effect.gen(function* () {
      const { prefix } = yield* RedisTest.scratch
      const vendor = vendorName()
      const stack = Layer.effect(Stats.Stats, RedisStats.make({ flushInterval: "1 hour" })).pipe(
        Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix }))
      )
      // A worker whose flush has not come round yet when it stops.
      yield* Effect.scoped(
        Effect.flatMap(Layer.build(stack), (context) => Context.get(context, Stats.Stats).recordFailed(vendor, "x"))
      )
      const reader = yield* Layer.build(stack).pipe(Effect.map(Context.get(Stats.Stats)))
      const summary = yield* reader.summary(vendor, 5)
      assert.strictEqual(summary.failed, 1)
    })
  )
})

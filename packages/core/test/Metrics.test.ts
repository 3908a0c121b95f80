import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import * as JobQueue from "../src/JobQueue.ts"
import * as Metrics from "../src/Metrics.ts"
import * as RateLimiter from "../src/RateLimiter.ts"
import * as RateLimitStore from "../src/RateLimitStore.ts"
import type * as Vendor from "../src/Vendor.ts"
import * as VendorCircuit from "../src/VendorCircuit.ts"
import * as VendorRegistry from "../src/VendorRegistry.ts"

// What a series holds in the registry in context.
const countOf = (metric: Metric.Counter<number>, labels: Metrics.Labels) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, labels)), (state) => state.count)

describe("Metrics", () => {
  it.effect("each label set is its own series, and repeated updates add up in it", () =>
    Effect.gen(function* () {
      yield* Metrics.count(Metrics.jobsCompleted, { vendor: "a" })
      yield* Metrics.count(Metrics.jobsCompleted, { vendor: "a" })
      yield* Metrics.count(Metrics.jobsCompleted, { vendor: "b" }, 5)
      yield* Metrics.count(Metrics.jobsFailed, { vendor: "a", reason: "Rejected" })
      // The same labels written in another order are the same series.
      yield* Metrics.count(Metrics.jobsFailed, { reason: "Rejected", vendor: "a" })
      yield* Metrics.count(Metrics.jobsFailed, { vendor: "a", reason: "Unavailable" })
      assert.deepStrictEqual(
        [
          yield* countOf(Metrics.jobsCompleted, { vendor: "a" }),
          yield* countOf(Metrics.jobsCompleted, { vendor: "b" }),
          yield* countOf(Metrics.jobsFailed, { vendor: "a", reason: "Rejected" }),
          yield* countOf(Metrics.jobsFailed, { vendor: "a", reason: "Unavailable" })
        ],
        [2, 5, 2, 1]
      )
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a series lives in the registry of the update's context, not of the first update's", () =>
    Effect.gen(function* () {
      const first = new Map()
      const second = new Map()
      yield* Metrics.count(Metrics.retries, { vendor: "a" }).pipe(Effect.provideService(Metric.MetricRegistry, first))
      yield* Metrics.count(Metrics.retries, { vendor: "a" }, 3).pipe(
        Effect.provideService(Metric.MetricRegistry, second)
      )
      const read = (registry: typeof first) =>
        countOf(Metrics.retries, { vendor: "a" }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
      assert.deepStrictEqual([yield* read(first), yield* read(second)], [1, 3])
    })
  )

  it.effect("names follow Prometheus: counters end in _total, histograms are in seconds", () =>
    Effect.gen(function* () {
      const labels = { vendor: "a" }
      for (const counter of [
        Metrics.jobsCreated,
        Metrics.jobsCompleted,
        Metrics.jobsFailed,
        Metrics.retries,
        Metrics.deadLetters,
        Metrics.vendorAnswers,
        Metrics.webhooksRejected
      ]) {
        yield* Metrics.count(counter, labels)
      }
      for (const histogram of [Metrics.queueWait, Metrics.vendorCall, Metrics.endToEnd, Metrics.rateLimitWait]) {
        yield* Metrics.observe(histogram, labels, 1500)
      }
      const text = yield* PrometheusMetrics.format()
      const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({ name, type }))
      assert.deepStrictEqual(
        types.filter(({ type }) => type === "counter").map(({ name }) => name?.endsWith("_total")),
        Array(7).fill(true)
      )
      assert.deepStrictEqual(
        types.filter(({ type }) => type === "histogram").map(({ name }) => name?.endsWith("_seconds")),
        Array(4).fill(true)
      )
      // 1500 ms is 1.5 s: above the 1.024 s bucket, inside the 2.048 s one.
      assert.include(text, 'vendorflow_vendor_call_seconds_sum{vendor="a"} 1.5\n')
      assert.include(text, 'vendorflow_vendor_call_seconds_bucket{vendor="a",le="1.024"} 0\n')
      assert.include(text, 'vendorflow_vendor_call_seconds_bucket{vendor="a",le="2.048"} 1\n')
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("samples each vendor's rate limit, configured or learned, and its calls in flight", () =>
    Effect.gen(function* () {
      const vendor = (name: string, extra: Partial<Vendor.Vendor>): Vendor.Vendor => ({
        name,
        mode: "sync",
        concurrency: 1,
        call: () => Effect.succeed({ _tag: "Accepted" }),
        ...extra
      })
      const vendors = [
        vendor("fixed", { rateLimit: { limit: 100, window: "2 seconds" } }),
        vendor("auto", { rateLimit: { limit: Infinity, window: "1 second", learn: true }, maxInFlight: 3 })
      ]
      const store = yield* RateLimitStore.RateLimitStore
      yield* store.advertise("auto", 12)
      yield* store.acquireSlot("auto", { holder: "a", max: 3, leaseMillis: 60_000 })
      yield* Metrics.sample.pipe(
        Effect.provide(
          Layer.mergeAll(
            JobQueue.layerMemory,
            VendorCircuit.layerMemory(),
            RateLimiter.layer,
            Layer.effect(VendorRegistry.VendorRegistry, VendorRegistry.make(vendors))
          )
        )
      )
      const gauge = (metric: Metric.Gauge<number>, name: string) =>
        Effect.map(Metric.value(Metric.withAttributes(metric, { vendor: name })), (state) => state.value)
      assert.deepStrictEqual(
        [
          yield* gauge(Metrics.rateLimit, "fixed"),
          yield* gauge(Metrics.rateLimit, "auto"),
          yield* gauge(Metrics.callsInFlight, "auto")
        ],
        [50, 12, 1]
      )
    }).pipe(Effect.provide(RateLimitStore.layerMemory), Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})

import { NodeHttpClient } from "@effect/platform-node"
import { AdapterSuite } from "@vendorflow/adapter-kit/testing"
import { Job, type Vendor } from "@vendorflow/core"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Schedule } from "effect"
import * as MockSyncServer from "../src/MockSyncServer.ts"
import * as MockSyncVendor from "../src/MockSyncVendor.ts"

AdapterSuite.suite("MockSyncVendor", {
  definition: MockSyncVendor.definition,
  payload: { query: "acme" },
  answer: (request) => ({
    success: true,
    data: {
      vendor_type: "sync",
      processed_at: "2026-01-01T00:00:00.000Z",
      request: request.url,
      user_info: { name: " Jane Doe ", email: " jane.doe42@example.com", phone: "+1-555-0042 " }
    }
  }),
  pii: ["jane.doe42@example.com", "+1-555-0042"],
  expectRequest: (request, call) => {
    const body: unknown = JSON.parse(request.body)
    return request.method === "POST" &&
      request.url === "/process" &&
      JSON.stringify(body) === JSON.stringify({ job_id: call.jobId, payload: call.payload })
      ? undefined
      : `sent ${request.method} ${request.url} ${request.body}`
  }
})

const request = (): Vendor.VendorRequest => ({
  jobId: Job.makeJobId(),
  payload: { query: "acme" },
  attempt: 1,
  webhookUrl: "http://127.0.0.1:1/unused"
})

const failureOf = (vendor: Vendor.Vendor) => Effect.flip(vendor.call(request()))

// Polls until `check` holds, failing the test past the deadline instead of hanging it.
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean) =>
  read.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: check }),
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("condition not met within 5 seconds") })
  )

describe("MockSyncVendor", () => {
  it.live("calls the vendor and completes with its data", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ latencyMs: { min: 0, max: 20 }, userInfoProbability: 1 })
      const vendor = yield* MockSyncVendor.make({ baseUrl: server.url })
      assert.strictEqual(vendor.name, "sync")
      assert.strictEqual(vendor.mode, "sync")
      const sent = request()
      const outcome = yield* vendor.call(sent)
      assert.strictEqual(outcome._tag, "Completed")
      const result = outcome._tag === "Completed" ? outcome.result : undefined
      assert.propertyVal(result, "vendor_type", "sync")
      assert.property(result, "user_info")
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => [a.jobId, a.idempotencyKey, a.status]),
        [[sent.jobId, sent.jobId, 200]]
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("takes its name and limits from options", () =>
    Effect.gen(function* () {
      const vendor = yield* MockSyncVendor.make({
        baseUrl: "http://127.0.0.1:1",
        name: "sync-b",
        concurrency: 2,
        rateLimit: { limit: 5, window: "1 second" }
      })
      assert.strictEqual(vendor.name, "sync-b")
      assert.strictEqual(vendor.concurrency, 2)
      assert.deepStrictEqual(vendor.rateLimit, { limit: 5, window: "1 second" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("classifies the mock server's own 429 as RateLimited with its Retry-After", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({
        latencyMs: { min: 0, max: 0 },
        rateLimit: { limit: 1, windowMs: 3000 }
      })
      const vendor = yield* MockSyncVendor.make({ baseUrl: server.url })
      yield* vendor.call(request())
      const error = yield* failureOf(vendor)
      assert.strictEqual(error.reason, "RateLimited")
      assert.strictEqual(error.status, 429)
      assert.isTrue(error.isRetryable)
      const retryAfter = error.retryAfterMillis ?? 0
      assert.isTrue(retryAfter >= 1000 && retryAfter <= 3000, `retryAfterMillis ${retryAfter}`)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("classifies a too-slow answer as Unavailable, and the vendor sees the hang-up", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ latencyMs: { min: 5000, max: 5000 } })
      const vendor = yield* MockSyncVendor.make({ baseUrl: server.url, timeout: Duration.millis(100) })
      const started = Date.now()
      const error = yield* failureOf(vendor)
      assert.strictEqual(error.reason, "Unavailable")
      assert.isBelow(Date.now() - started, 2000)
      const arrivals = yield* eventually(server.arrivals, (all) => all.length === 1)
      assert.strictEqual(arrivals[0]?.status, 499)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("reads VENDOR_SYNC_URL and VENDOR_SYNC_RATE_LIMIT, else MOCK_SYNC_URL and MOCK_SYNC_RATE_LIMIT", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ latencyMs: { min: 0, max: 0 } })
      const fromEnv = (env: Record<string, string>) =>
        MockSyncVendor.fromConfig.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
      const vendor = yield* fromEnv({ MOCK_SYNC_URL: `${server.url}/`, MOCK_SYNC_RATE_LIMIT: "5/2s" })
      assert.strictEqual(vendor.rateLimit?.limit, 5)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(vendor.rateLimit?.window ?? 0)), 2000)
      assert.strictEqual((yield* vendor.call(request()))._tag, "Completed")

      const preferred = yield* fromEnv({
        VENDOR_SYNC_URL: server.url,
        MOCK_SYNC_URL: "http://127.0.0.1:1",
        VENDOR_SYNC_RATE_LIMIT: "none",
        MOCK_SYNC_RATE_LIMIT: "5/2s"
      })
      assert.isUndefined(preferred.rateLimit)
      assert.strictEqual((yield* preferred.call(request()))._tag, "Completed")

      const byDefault = yield* MockSyncVendor.config.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))
      )
      assert.deepStrictEqual(byDefault, { baseUrl: "http://127.0.0.1:8001", secrets: {} })

      // Every other VENDOR_SYNC_* setting reaches the adapter too (the all-in-one builds it this way).
      const tuned = yield* MockSyncVendor.config.pipe(
        Effect.flatMap((options) => MockSyncVendor.make(options)),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ VENDOR_SYNC_MAX_ATTEMPTS: "2" })))
      )
      assert.strictEqual(tuned.maxAttempts, 2)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

import { createServer } from "node:net"
import { NodeHttpClient } from "@effect/platform-node"
import { Job, type Vendor } from "@vendorflow/core"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Schedule } from "effect"
import * as MockSyncServer from "../src/MockSyncServer.ts"
import * as MockSyncVendor from "../src/MockSyncVendor.ts"
import * as StubServer from "../src/StubServer.ts"

const request = (): Vendor.VendorRequest => ({
  jobId: Job.makeJobId(),
  payload: { query: "acme" },
  attempt: 1,
  webhookUrl: "http://127.0.0.1:1/unused"
})

const failureOf = (vendor: Vendor.Vendor) => Effect.flip(vendor.call(request()))

// A port nothing listens on: bound once by the OS, then released.
const freePort = Effect.callback<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

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

  it.live("classifies a 429 as RateLimited with the vendor's Retry-After", () =>
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

  it.live("classifies a 500 as Unavailable", () =>
    Effect.gen(function* () {
      const stub = yield* StubServer.make(() => ({ status: 500, body: `{"error":"boom"}` }))
      const error = yield* failureOf(yield* MockSyncVendor.make({ baseUrl: stub.url }))
      assert.strictEqual(error.reason, "Unavailable")
      assert.strictEqual(error.status, 500)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("classifies a garbage body as InvalidResponse", () =>
    Effect.gen(function* () {
      for (const body of ["<html>oops</html>", `{"success":false}`, `{"success":true,"data":[1,2]}`, ""]) {
        const stub = yield* StubServer.make(() => ({ status: 200, body }))
        const error = yield* failureOf(yield* MockSyncVendor.make({ baseUrl: stub.url }))
        assert.strictEqual(error.reason, "InvalidResponse", `body ${JSON.stringify(body)}`)
        assert.isFalse(error.isRetryable)
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("classifies a refused connection as Unavailable", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const error = yield* failureOf(yield* MockSyncVendor.make({ baseUrl: `http://127.0.0.1:${port}` }))
      assert.strictEqual(error.reason, "Unavailable")
      assert.isUndefined(error.status)
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

  it.live("reads MOCK_SYNC_URL and MOCK_SYNC_RATE_LIMIT", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ latencyMs: { min: 0, max: 0 } })
      const vendor = yield* MockSyncVendor.fromConfig.pipe(
        Effect.provide(
          ConfigProvider.layer(
            ConfigProvider.fromUnknown({
              MOCK_SYNC_URL: `${server.url}/`,
              MOCK_SYNC_RATE_LIMIT: "5/2s"
            })
          )
        )
      )
      assert.strictEqual(vendor.rateLimit?.limit, 5)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(vendor.rateLimit?.window ?? 0)), 2000)
      assert.strictEqual((yield* vendor.call(request()))._tag, "Completed")

      const byDefault = yield* MockSyncVendor.config.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))
      )
      assert.deepStrictEqual(byDefault, { baseUrl: "http://127.0.0.1:8001", rateLimit: undefined })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

import { fileURLToPath } from "node:url"
import { NodeHttpClient } from "@effect/platform-node"
import { FaultScript, StubServer } from "@vendorflow/adapter-kit/simulator"
import { Job, type Vendor } from "@vendorflow/core"
import { ChildProcess } from "@vendorflow/core/testing"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import * as MockAsyncServer from "../src/MockAsyncServer.ts"
import * as MockAsyncVendor from "../src/MockAsyncVendor.ts"

const fast = { callbackDelayMs: { min: 0, max: 20 }, webhookRetry: { times: 2, baseDelayMs: 10 } }

// Polls until `check` holds, failing the test past the deadline instead of hanging it.
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean) =>
  read.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: check }),
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("condition not met within 5 seconds") })
  )

const request = (webhookUrl: string): Vendor.VendorRequest => ({
  jobId: Job.makeJobId(),
  payload: { company: "acme" },
  attempt: 1,
  webhookUrl
})

const postProcess = (url: string, body: string) =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    client.execute(HttpClientRequest.post(`${url}/process`).pipe(HttpClientRequest.bodyText(body, "application/json")))
  )

describe("MockAsyncServer", () => {
  it.live("accepts with 202, then delivers a signed webhook that the adapter accepts", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make({ ...fast, userInfoProbability: 1 })
      const receiver = yield* StubServer.make(() => ({ status: 204 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      const sent = request(`${receiver.url}/webhooks/async`)

      assert.deepStrictEqual(yield* vendor.call(sent), { _tag: "Accepted" })
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => [a.jobId, a.idempotencyKey, a.status]),
        [[sent.jobId, sent.jobId, 202]]
      )

      const [delivery] = yield* eventually(receiver.received, (all) => all.length === 1)
      assert.isDefined(delivery)
      if (delivery === undefined) return
      assert.strictEqual(delivery.method, "POST")
      assert.strictEqual(delivery.url, "/webhooks/async")
      assert.match(delivery.headers["content-type"] ?? "", /^application\/json/)
      assert.match(delivery.headers["x-vendorflow-signature"] ?? "", /^t=\d+,v1=[0-9a-f]{64}$/)

      const parsed = yield* vendor.parseWebhook?.(delivery) ?? Effect.die("no parseWebhook")
      assert.strictEqual(parsed.jobId, sent.jobId)
      assert.propertyVal(parsed.data, "vendor_type", "async")
      assert.property(parsed.data, "user_info")

      const callbacks = yield* eventually(server.callbacks, (all) => all.length === 1)
      assert.deepInclude(callbacks[0], { jobId: sent.jobId, attempts: 1, status: 204, outcome: "delivered" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("retries a refused delivery with backoff and records the outcome", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make(fast)
      const flaky = yield* StubServer.make((_, index) => ({ status: index < 2 ? 503 : 200 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      const sent = request(flaky.url)
      yield* vendor.call(sent)
      const [record] = yield* eventually(server.callbacks, (all) => all.length === 1)
      assert.deepInclude(record, { jobId: sent.jobId, attempts: 3, status: 200, outcome: "delivered" })
      assert.strictEqual((yield* flaky.received).length, 3)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("with signOnce, resends a refused delivery byte for byte, and records the data it carried", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make({ ...fast, signOnce: true })
      const flaky = yield* StubServer.make((_, index) => ({ status: index < 2 ? 503 : 200 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      const sent = request(flaky.url)
      yield* vendor.call(sent)
      const [record] = yield* eventually(server.callbacks, (all) => all.length === 1)
      const received = yield* flaky.received
      assert.strictEqual(received.length, 3)
      assert.strictEqual(new Set(received.map((r) => `${r.headers["x-vendorflow-signature"]}\n${r.body}`)).size, 1)
      assert.deepStrictEqual(record?.data, (JSON.parse(received[0]?.body ?? "{}") as { data: unknown }).data)
      assert.isAtMost(record?.sentAt ?? Infinity, record?.at ?? 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("sends a late callback that much later, and a deep one nested 20,000 levels", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make({
        ...fast,
        callbackFaults: FaultScript.parse("late:300|deep", FaultScript.parseCallbackStep)
      })
      const receiver = yield* StubServer.make(() => ({ status: 204 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      const [late, deep] = [request(receiver.url), request(receiver.url)]
      const calledAt = Date.now()
      for (const sent of [late, deep]) yield* vendor.call(sent)
      const records = yield* eventually(server.callbacks, (all) => all.length === 2)
      const lateRecord = records.find((c) => c.jobId === late.jobId)
      assert.isAtLeast((lateRecord?.sentAt ?? 0) - calledAt, 300)
      assert.strictEqual(lateRecord?.fault, "late:300")
      const deepRecord = records.find((c) => c.jobId === deep.jobId)
      assert.deepInclude(deepRecord, { fault: "deep", outcome: "delivered" })
      assert.notProperty(deepRecord, "data")
      const body = (yield* receiver.received).find((r) => r.body.includes(deep.jobId))?.body ?? ""
      assert.include(body, FaultScript.deepJson)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("gives up after its retries and records the failure", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make(fast)
      const down = yield* StubServer.make(() => ({ status: 500 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      yield* vendor.call(request(down.url))
      const [record] = yield* eventually(server.callbacks, (all) => all.length === 1)
      assert.deepInclude(record, { attempts: 3, status: 500, outcome: "failed" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("counts a refused connection as a failed attempt, with no status", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make(fast)
      // A receiver that has come and gone: its port now refuses connections.
      const gone = yield* Effect.scoped(StubServer.make(() => ({ status: 204 })))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      yield* vendor.call(request(gone.url))
      const [record] = yield* eventually(server.callbacks, (all) => all.length === 1)
      assert.deepInclude(record, { attempts: 3, status: null, outcome: "failed" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("answers 400 to a body without webhook_url or job_id, and to malformed JSON", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make(fast)
      const bodies = [
        JSON.stringify({ job_id: "j-1", payload: {} }),
        JSON.stringify({ job_id: "j-2", payload: {}, webhook_url: "not a url" }),
        JSON.stringify({ payload: {}, webhook_url: "http://127.0.0.1:1/hook" }),
        "{nope"
      ]
      const statuses = yield* Effect.forEach(bodies, (body) =>
        Effect.map(postProcess(server.url, body), (r) => r.status)
      )
      assert.deepStrictEqual(statuses, [400, 400, 400, 400])
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => a.jobId),
        ["j-1", "j-2", null, null]
      )
      assert.deepStrictEqual(yield* server.callbacks, [])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("answers 429 with Retry-After over its limit", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.make({ ...fast, rateLimit: { limit: 1, windowMs: 2000 } })
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      const receiver = yield* StubServer.make(() => ({ status: 204 }))
      yield* vendor.call(request(receiver.url))
      const error = yield* Effect.flip(vendor.call(request(receiver.url)))
      assert.strictEqual(error.reason, "RateLimited")
      assert.isTrue((error.retryAfterMillis ?? 0) >= 1000)
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => a.status),
        [202, 429]
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("interrupts pending callbacks when its scope closes", () =>
    Effect.gen(function* () {
      const receiver = yield* StubServer.make(() => ({ status: 204 }))
      const scope = yield* Scope.make()
      const server = yield* MockAsyncServer.make({ callbackDelayMs: { min: 60_000, max: 60_000 } }).pipe(
        Scope.provide(scope)
      )
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      yield* vendor.call(request(receiver.url))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      assert.isBelow(Date.now() - started, 3000)
      assert.deepStrictEqual(yield* server.callbacks, [])
      assert.deepStrictEqual(yield* receiver.received, [])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

describe("MockAsyncServer scripted callback faults", () => {
  it.live("drops, duplicates, and holds a callback back until the job's next one (out of order)", () =>
    Effect.gen(function* () {
      const server = yield* MockAsyncServer.MockAsyncServer
      const receiver = yield* StubServer.make(() => ({ status: 204 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
      // Dealt in turn: the first job "drop", the second "duplicate", the third "hold,ok".
      const [dropped, duplicated, held] = [request(receiver.url), request(receiver.url), request(receiver.url)]
      for (const sent of [dropped, duplicated, held]) yield* vendor.call(sent)
      const firstRound = yield* eventually(server.callbacks, (all) => all.length === 3)
      assert.deepStrictEqual(
        firstRound.map((c) => [c.jobId, c.outcome, c.fault ?? null]).sort(),
        [
          [dropped.jobId, "dropped", "drop"],
          [duplicated.jobId, "delivered", "duplicate"],
          [duplicated.jobId, "delivered", "duplicate"]
        ].sort()
      )
      // The held job is resubmitted: its second callback goes first, then the held one.
      yield* vendor.call({ ...held, attempt: 2 })
      const all = yield* eventually(server.callbacks, (all) => all.length === 5)
      assert.deepStrictEqual(
        all.slice(3).map((c) => [c.jobId, c.outcome, c.fault ?? null]),
        [
          [held.jobId, "delivered", null],
          [held.jobId, "delivered", "hold"]
        ]
      )
      const bodies = (yield* receiver.received).filter((r) => r.body.includes(held.jobId)).map((r) => r.body)
      assert.strictEqual(bodies.length, 2)
      assert.notStrictEqual(bodies[0], bodies[1], "each callback carries its own answer")
      assert.strictEqual(
        (yield* receiver.received).filter((r) => r.body.includes(dropped.jobId)).length,
        0,
        "a dropped callback is never sent"
      )
    }).pipe(
      Effect.provide(
        MockAsyncServer.layerConfig().pipe(
          Layer.provide(
            ConfigProvider.layer(
              ConfigProvider.fromUnknown({
                PORT: "0",
                MOCK_ASYNC_DELAY_MS: "0-20",
                MOCK_ASYNC_CALLBACK_FAULTS: "drop|duplicate|hold,ok"
              })
            )
          )
        )
      ),
      Effect.provide(NodeHttpClient.layerUndici)
    )
  )
})

describe("bin", () => {
  it.live("serves on PORT, and exits promptly on SIGTERM with a callback pending", () =>
    Effect.gen(function* () {
      const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
      const child = yield* ChildProcess.start(bin, { PORT: "0", MOCK_ASYNC_DELAY_MS: "60000" })
      const [, url] = yield* child.waitFor(/listening on (http:\/\/\S+)/)
      const receiver = yield* StubServer.make(() => ({ status: 204 }))
      const vendor = yield* MockAsyncVendor.make({ baseUrl: url ?? "" })
      assert.deepStrictEqual(yield* vendor.call(request(receiver.url)), { _tag: "Accepted" })
      assert.strictEqual(yield* child.stop("SIGTERM", "5 seconds"), 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

import { NodeHttpClient } from "@effect/platform-node"
import { StubServer } from "@vendorflow/adapter-kit/simulator"
import { AdapterSuite } from "@vendorflow/adapter-kit/testing"
import { Job, type Vendor, WebhookSignature } from "@vendorflow/core"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Redacted, Schedule } from "effect"
import * as MockAsyncServer from "../src/MockAsyncServer.ts"
import * as MockAsyncVendor from "../src/MockAsyncVendor.ts"

AdapterSuite.suite("MockAsyncVendor", {
  definition: MockAsyncVendor.definition,
  payload: { company: "acme" },
  answer: (request) => ({ accepted: true, job_id: JSON.parse(request.body).job_id }),
  callback: (jobId) => ({
    job_id: jobId,
    data: {
      vendor_type: "async",
      user_info: { name: "Wei Chen", email: " wei.chen7@example.com ", phone: "+1-555-0007" }
    }
  }),
  pii: ["wei.chen7@example.com", "+1-555-0007"]
})

const nowSeconds = () => Math.floor(Date.now() / 1000)

const signed = (body: string, options: { readonly secret?: string; readonly timestamp?: number } = {}) => ({
  headers: {
    "content-type": "application/json",
    [WebhookSignature.header]: WebhookSignature.sign({
      secret: options.secret ?? MockAsyncVendor.defaultWebhookSecret,
      body,
      timestamp: options.timestamp ?? nowSeconds()
    })
  },
  body
})

const parse = (request: Vendor.WebhookRequest, secret: string = MockAsyncVendor.defaultWebhookSecret) =>
  MockAsyncVendor.parseWebhook({ secret })(request)

const refusal = (request: Vendor.WebhookRequest, secret?: string) =>
  Effect.map(Effect.flip(parse(request, secret)), (error) => ({ reason: error.reason, message: error.message }))

// One real delivery from the mock vendor, as a receiver captured it, for the tests below to start from.
class Delivery extends Context.Service<Delivery, StubServer.Received>()("test/Delivery") {}

const DeliveryLive = Layer.effect(
  Delivery,
  Effect.gen(function* () {
    const server = yield* MockAsyncServer.make({ callbackDelayMs: { min: 0, max: 0 } })
    const receiver = yield* StubServer.make(() => ({ status: 204 }))
    const vendor = yield* MockAsyncVendor.make({ baseUrl: server.url })
    yield* vendor.call({ jobId: Job.makeJobId(), payload: {}, attempt: 1, webhookUrl: receiver.url })
    const [first] = yield* receiver.received.pipe(
      Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (all) => all.length === 1 }),
      Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("no webhook within 5 seconds") })
    )
    return first ?? (yield* Effect.die("no webhook"))
  })
).pipe(Layer.provide(NodeHttpClient.layerUndici))

const delivery = Effect.gen(function* () {
  return yield* Delivery
})

layer(DeliveryLive, { excludeTestServices: true })("MockAsyncVendor.parseWebhook", (test) => {
  test.effect("accepts the vendor's delivery exactly as it arrived", () =>
    Effect.gen(function* () {
      const { body, headers } = yield* delivery
      const parsed = yield* parse({ headers, body })
      assert.strictEqual(parsed.jobId, JSON.parse(body).job_id)
      assert.propertyVal(parsed.data, "vendor_type", "async")
    })
  )

  test.effect("refuses a tampered body as BadSignature", () =>
    Effect.gen(function* () {
      const { body, headers } = yield* delivery
      const tampered = body.replace(`"vendor_type":"async"`, `"vendor_type":"evil"`)
      assert.notStrictEqual(tampered, body)
      assert.deepStrictEqual(yield* refusal({ headers, body: tampered }), {
        reason: "BadSignature",
        message: "the signature does not match the body"
      })
    })
  )

  test.effect("refuses a delivery signed with another secret, or checked against another", () =>
    Effect.gen(function* () {
      const { body, headers } = yield* delivery
      assert.strictEqual((yield* refusal(signed(body, { secret: "not-the-secret" }))).reason, "BadSignature")
      assert.strictEqual((yield* refusal({ headers, body }, "another-secret")).reason, "BadSignature")
    })
  )

  test.effect("refuses a malformed signature header as BadSignature", () =>
    Effect.gen(function* () {
      const { body } = yield* delivery
      const refused = yield* refusal({ headers: { [WebhookSignature.header]: "v1=abc" }, body })
      assert.deepStrictEqual(refused, { reason: "BadSignature", message: "the signature header is malformed" })
    })
  )
})

describe("MockAsyncVendor", () => {
  it.live("reads MOCK_ASYNC_URL, WEBHOOK_SECRET and MOCK_ASYNC_RATE_LIMIT", () =>
    Effect.gen(function* () {
      const configured = yield* MockAsyncVendor.config.pipe(
        Effect.provide(
          ConfigProvider.layer(
            ConfigProvider.fromUnknown({
              MOCK_ASYNC_URL: "http://vendor.test:9000",
              WEBHOOK_SECRET: "s3cret",
              MOCK_ASYNC_RATE_LIMIT: "3/1s"
            })
          )
        )
      )
      assert.strictEqual(configured.baseUrl, "http://vendor.test:9000")
      assert.strictEqual(Redacted.isRedacted(configured.secret) ? Redacted.value(configured.secret) : "", "s3cret")
      assert.strictEqual(configured.rateLimit?.limit, 3)

      const vendor = yield* MockAsyncVendor.fromConfig.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ WEBHOOK_SECRET: "s3cret" })))
      )
      assert.strictEqual(vendor.name, "async")
      assert.strictEqual(vendor.mode, "async")
      const accepted = yield* Effect.result(
        vendor.parseWebhook?.(
          signed(`{"job_id":"${Job.makeJobId()}","data":1}`, {
            secret: "s3cret"
          })
        ) ?? Effect.die("no parseWebhook")
      )
      assert.strictEqual(accepted._tag, "Success")

      const byDefault = yield* MockAsyncVendor.config.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))
      )
      assert.strictEqual(byDefault.baseUrl, "http://127.0.0.1:8002")
      assert.strictEqual(
        Redacted.isRedacted(byDefault.secret) ? Redacted.value(byDefault.secret) : "",
        MockAsyncVendor.defaultWebhookSecret
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

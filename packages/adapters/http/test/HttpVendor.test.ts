import { NodeHttpClient } from "@effect/platform-node"
import { Job, VendorDefinition } from "@vendorflow/adapter-kit"
import { VendorSimulator } from "@vendorflow/adapter-kit/simulator"
import { AdapterSuite } from "@vendorflow/adapter-kit/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { configure, HttpVendor } from "../src/index.ts"

// What an operator writes under `vendors.rest` in vendorflow.config.json.
const restOptions = {
  url: "https://api.example.com",
  method: "POST",
  path: "/v1/lookup/${payload.country}",
  query: { detail: "full" },
  headers: { authorization: "Bearer ${secret.API_KEY}", "x-attempt": "${job.attempt}" },
  body: {
    query: "${payload.company}",
    size: "${payload.size}",
    reference: "${job.id}",
    note: "for ${payload.company}"
  },
  result: "data.result",
  piiKeys: ["taxNumber"],
  rateLimit: "5/1s",
  timeout: "4s"
}

const rest = Effect.runSync(configure("rest", restOptions))

AdapterSuite.suite("adapter-http (sync)", {
  definition: rest,
  payload: { company: "Acme", size: 12, country: "de" },
  answer: () => ({ data: { result: { rating: "A", tax_number: "DE-811-907-980" } }, meta: { took: 3 } }),
  expectRequest: (request, call) => {
    const body = VendorSimulator.jsonBody(request)
    const expected = { query: "Acme", size: 12, reference: call.jobId, note: "for Acme" }
    if (request.url !== "/v1/lookup/de?detail=full") return `sent ${request.url}`
    if (request.headers["x-attempt"] !== "1") return `x-attempt: ${request.headers["x-attempt"]}`
    return JSON.stringify(body) === JSON.stringify(expected) ? undefined : `sent ${request.body}`
  }
})

const hooks = Effect.runSync(
  configure("hooks", {
    mode: "async",
    url: "https://hooks.example.com",
    path: "/v2/jobs",
    body: { reference: "${job.id}", callback_url: "${webhookUrl}", input: "${payload}" },
    accepted: "ticket",
    webhook: { jobId: "reference", result: "outcome" },
    status: { path: "/v2/jobs/${job.id}", result: "outcome" }
  })
)

AdapterSuite.suite("adapter-http (async)", {
  definition: hooks,
  payload: { company: "Globex" },
  answer: () => ({ ticket: "T-1" }),
  callback: (jobId) => ({ reference: jobId, outcome: { score: 0.7, email: "ops@globex.example" } }),
  status: (jobId) => ({ reference: jobId, outcome: { score: 0.7 } }),
  pii: ["ops@globex.example"]
})

describe("adapter-http", () => {
  it("renders templates: whole placeholders keep their type, embedded ones become text", () => {
    const call: VendorDefinition.Call = {
      jobId: Job.makeJobId(),
      payload: { a: { b: [1, { c: "x" }] }, n: 3 },
      attempt: 2,
      webhookUrl: "http://us/vendor-webhook/v",
      secret: (name) => `s-${name}`
    }
    assert.deepStrictEqual(
      HttpVendor.render(
        {
          n: "${payload.n}",
          deep: "${payload.a.b.1.c}",
          all: "${payload.a}",
          text: "n=${payload.n}, a=${payload.a.b}",
          missing: "${payload.nope}",
          missingText: "[${payload.nope}]",
          hook: "${webhookUrl}",
          key: "${secret.KEY}",
          attempt: "${job.attempt}",
          list: ["${job.id}", 7, null]
        },
        call
      ),
      {
        n: 3,
        deep: "x",
        all: { b: [1, { c: "x" }] },
        text: `n=3, a=[1,{"c":"x"}]`,
        missing: null,
        missingText: "[]",
        hook: "http://us/vendor-webhook/v",
        key: "s-KEY",
        attempt: 2,
        list: [call.jobId, 7, null]
      }
    )
    assert.deepStrictEqual(HttpVendor.secretsIn({ h: "Bearer ${secret.A}", q: ["${secret.B}", "${secret.A}"] }), [
      "A",
      "B"
    ])
    assert.strictEqual(HttpVendor.valueAt({ a: [{ b: 1 }] }, "a.0.b"), 1)
    assert.isUndefined(HttpVendor.valueAt({ a: 1 }, "a.b"))
    assert.isUndefined(HttpVendor.valueAt({}, "constructor"))
  })

  it.effect("takes its limits from the options, and its secrets from VENDOR_<NAME>_<SECRET>", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(rest.secrets, ["API_KEY"])
      const vendor = yield* VendorDefinition.build(rest, { secrets: { API_KEY: "k" } })
      assert.strictEqual(vendor.rateLimit?.limit, 5)
      assert.deepStrictEqual(vendor.cleaning?.piiKeys, ["taxNumber"])
      const missing = yield* Effect.flip(VendorDefinition.build(rest))
      assert.match(missing.message, /VENDOR_REST_API_KEY/)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.effect("refuses options it cannot use, saying which", () =>
    Effect.gen(function* () {
      const message = (options: unknown) => Effect.map(Effect.flip(configure("bad", options)), (error) => error.message)
      assert.match(yield* message({ url: "ftp://x" }), /the options of @vendorflow\/adapter-http are wrong/)
      assert.match(yield* message({ url: "https://x", methd: "GET" }), /methd/)
      assert.match(yield* message({ url: "https://x", mode: "async" }), /needs "webhook"/)
    })
  )
})

import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schema } from "effect"
import { defineVendor, Job, permanent, transient, VendorDefinition, WebhookSignature } from "../src/index.ts"
import { VendorSimulator } from "../src/simulator/index.ts"
import { AdapterSuite } from "../src/testing/index.ts"
import { lookup, lookupAnswer, lookupSamples, rating, ratingSamples, ratingWebhook } from "./fixtures.ts"

AdapterSuite.suite("a sync vendor", lookupSamples())
AdapterSuite.suite("an async vendor", ratingSamples())

// Which checks fail, by name; the rest must pass (none is skipped unless asked).
const failedChecks = (options: AdapterSuite.Options) =>
  Effect.map(AdapterSuite.run(options), (results) => {
    const failed = results.filter((result) => result.outcome === "failed")
    return { names: failed.map((result) => result.check), messages: failed.map((result) => result.message ?? "") }
  })

// A copy of a definition with some fields replaced, as a careless author would have written it.
const broken = (definition: VendorDefinition.VendorDefinition, changes: object): VendorDefinition.VendorDefinition =>
  ({ ...definition, ...changes }) as VendorDefinition.VendorDefinition

interface BrokenAdapter {
  readonly mistake: string
  readonly options: AdapterSuite.Options
  /** The checks that must fail, in order; every other check must pass. */
  readonly caughtBy: ReadonlyArray<AdapterSuite.CheckName>
  /** What the first failure must say. */
  readonly saying: RegExp
}

const trusting: WebhookSignature.Scheme = { ...WebhookSignature.hmacSha256, verify: () => "valid" }

const brokenAdapters: ReadonlyArray<BrokenAdapter> = [
  {
    mistake: "wrong error classification: a 5xx taken for a permanent failure",
    options: lookupSamples(
      broken(lookup, {
        classify: (answer: { readonly status: number }) => (answer.status >= 500 ? permanent() : undefined)
      })
    ),
    caughtBy: ["classifies 500 as transient"],
    saying: /expected Unavailable, but the call failed as Rejected/
  },
  {
    mistake: "wrong error classification: a 429 without its wait, and a 404 retried",
    options: lookupSamples(
      broken(lookup, {
        classify: (answer: { readonly status: number }) =>
          answer.status === 429 || answer.status === 404 ? transient() : undefined
      })
    ),
    caughtBy: ["classifies 404 as permanent", "classifies 429 as rate-limited with its Retry-After"],
    saying: /expected Rejected, but the call failed as Unavailable/
  },
  {
    mistake: "no signature check: a scheme that accepts anything",
    options: ratingSamples(broken(rating, { webhook: { ...ratingWebhook, signature: trusting } })),
    caughtBy: ["refuses a bad signature", "refuses a missing signature", "refuses a stale timestamp"],
    saying: /expected the callback to be refused as BadSignature, but it was accepted/
  },
  {
    mistake: "PII left in: the result moves a declared PII field under a key nobody declared",
    options: lookupSamples(
      broken(lookup, {
        result: (answer: { readonly report: { readonly holder: { readonly national_id: string } } }) => ({
          subject: answer.report.holder.national_id
        })
      })
    ),
    caughtBy: ["cleans declared PII"],
    saying: /PII "ZX-448-1190-Q" survives cleaning under "subject"/
  },
  {
    mistake: "PII left in: the PII key is not declared at all",
    options: { ...lookupSamples(broken(lookup, { piiKeys: undefined })), pii: ["ZX-448-1190-Q"] },
    caughtBy: ["cleans declared PII"],
    saying: /survives cleaning under "national_id"/
  },
  {
    mistake: "a schema that accepts garbage",
    options: lookupSamples(
      defineVendor({
        ...lookup,
        mode: "sync",
        secrets: ["API_KEY"],
        response: Schema.Unknown,
        result: (answer) => ({ raw: String(answer) })
      })
    ),
    caughtBy: ["refuses malformed answers"],
    saying: /for the answer \{\}: expected InvalidResponse, but the call succeeded/
  },
  {
    mistake: "an async vendor that forgets to pass the webhook URL",
    options: ratingSamples(broken(rating, { request: () => ({ path: "/v1/jobs", body: { input: {} } }) })),
    caughtBy: [
      "passes the webhook URL",
      "accepts a signed callback",
      "maps duplicate and out-of-order callbacks to their jobs"
    ],
    saying:
      /expected the webhook URL http:\/\/127\.0\.0\.1:\d+\/vendor-webhook\/rating\?token=[\w-]+ in the request, found none/
  }
]

describe("AdapterSuite catches broken adapters by name", () => {
  it.live("the sample adapters pass every check", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual((yield* failedChecks(lookupSamples())).names, [])
      assert.deepStrictEqual((yield* failedChecks(ratingSamples())).names, [])
      assert.strictEqual(AdapterSuite.applicable(lookup).length, 13)
      assert.strictEqual(AdapterSuite.applicable(rating).length, 22)
    })
  )

  it.live.each(brokenAdapters)("$mistake", ({ caughtBy, options, saying }) =>
    Effect.gen(function* () {
      const { messages, names } = yield* failedChecks(options)
      assert.deepStrictEqual(names, caughtBy)
      assert.match(messages[0] ?? "", saying)
    })
  )

  it.live("a known gap is reported as skipped with its reason, never as passed", () =>
    Effect.gen(function* () {
      const results = yield* AdapterSuite.run({
        ...lookupSamples(),
        skip: { "classifies 404 as permanent": "this vendor answers 404 while a report is being built" }
      })
      const skipped = results.filter((result) => result.outcome === "skipped")
      assert.deepStrictEqual(skipped, [
        {
          check: "classifies 404 as permanent",
          outcome: "skipped",
          message: "this vendor answers 404 while a report is being built"
        }
      ])
    })
  )

  it.live("a timeout is found within the adapter's budget", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const result = yield* AdapterSuite.runCheck("classifies a timeout as transient", lookupSamples())
      assert.strictEqual(result.outcome, "passed")
      assert.isBelow(Date.now() - started, Duration.toMillis(Duration.seconds(2)))
    })
  )
})

describe("a definition's own classification", () => {
  it.live("reads a spent quota from a 200's headers as a rate limit with the vendor's wait", () =>
    Effect.gen(function* () {
      const simulator = yield* VendorSimulator.make({ respond: () => ({ status: 200, json: lookupAnswer }) })
      const vendor = yield* VendorDefinition.build(lookup, { url: simulator.url, secrets: { API_KEY: "k" } })
      const request = { jobId: Job.makeJobId(), payload: {}, attempt: 1, webhookUrl: "" }
      assert.strictEqual((yield* vendor.call(request))._tag, "Completed")
      yield* simulator.inject(
        VendorSimulator.reply(200, { json: lookupAnswer, headers: { "x-quota-remaining": "0", "x-quota-reset": "12" } })
      )
      const error = yield* Effect.flip(vendor.call(request))
      assert.deepInclude(error, { reason: "RateLimited", retryAfterMillis: 12_000, message: "lookup: quota exceeded" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

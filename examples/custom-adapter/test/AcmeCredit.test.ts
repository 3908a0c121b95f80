import { NodeHttpClient } from "@effect/platform-node"
import { Job, VendorDefinition } from "@vendorflow/adapter-kit"
import { AdapterSuite } from "@vendorflow/adapter-kit/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { acmeCredit } from "../src/index.ts"
import * as AcmeCreditSimulator from "./AcmeCreditSimulator.ts"

AdapterSuite.suite("Acme Credit", {
  definition: acmeCredit,
  payload: { company: "Acme Corp", country: "DE" },
  answer: AcmeCreditSimulator.answer,
  secrets: { API_KEY: AcmeCreditSimulator.apiKey },
  pii: ["treasurer@acme.example"]
})

// The same adapter against the vendor's own behaviour: its key check and its errors in 200 bodies.
const check = (company: string, key = AcmeCreditSimulator.apiKey) =>
  Effect.gen(function* () {
    const simulator = yield* AcmeCreditSimulator.make()
    const vendor = yield* VendorDefinition.build(acmeCredit, { url: simulator.url, secrets: { API_KEY: key } })
    return yield* vendor.call({ jobId: Job.makeJobId(), payload: { company }, attempt: 1, webhookUrl: "" })
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))

describe("Acme Credit", () => {
  it.live("completes a check with Acme's data", () =>
    Effect.gen(function* () {
      const outcome = yield* check("Acme Corp")
      assert.strictEqual(outcome._tag, "Completed")
      assert.deepInclude(outcome._tag === "Completed" ? outcome.result : {}, { band: "B", score: 633 })
    })
  )

  it.live("a spent quota is a rate limit with Acme's wait; an unknown company is permanent", () =>
    Effect.gen(function* () {
      const quota = yield* Effect.flip(check(AcmeCreditSimulator.quotaCompany))
      assert.deepInclude(quota, { reason: "RateLimited", retryAfterMillis: 30_000 })
      const unknown = yield* Effect.flip(check(AcmeCreditSimulator.unknownCompany))
      assert.deepInclude(unknown, { reason: "Rejected", message: "Acme Credit does not know this company" })
    })
  )

  it.live("a wrong API key is refused for good", () =>
    Effect.gen(function* () {
      const refused = yield* Effect.flip(check("Acme Corp", "stolen"))
      assert.deepInclude(refused, { reason: "Rejected", status: 401 })
    })
  )
})

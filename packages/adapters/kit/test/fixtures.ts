/**
 * Two small vendors written the way an adapter author would, a sync one and an async one with a
 * status check, and the samples AdapterSuite needs for them. The kit's tests run the suite against
 * these and against broken copies of them.
 */
import { Schema } from "effect"
import { defineVendor, permanent, rateLimited, type VendorDefinition } from "../src/index.ts"
import type { AdapterSuite } from "../src/testing/index.ts"

const Report = Schema.Struct({
  report: Schema.Struct({
    score: Schema.Number,
    holder: Schema.Struct({ name: Schema.String, national_id: Schema.String, email: Schema.String })
  })
})

/**
 * A sync vendor: a POST with the API key in a header. It signals a spent quota in headers, even on
 * a 200: `x-quota-remaining: 0` with `x-quota-reset` seconds to wait.
 */
export const lookup = defineVendor({
  name: "lookup",
  mode: "sync",
  url: "http://127.0.0.1:1",
  secrets: ["API_KEY"],
  request: (call) => ({
    method: "POST",
    path: "/v2/reports",
    headers: { authorization: `Bearer ${call.secret("API_KEY")}` },
    body: { reference: call.jobId, subject: call.payload }
  }),
  response: Report,
  classify: ({ headers }) =>
    headers["x-quota-remaining"] === "0"
      ? rateLimited(Number(headers["x-quota-reset"] ?? "60") * 1000, "lookup: quota exceeded")
      : undefined,
  result: (answer) => answer.report,
  piiKeys: ["nationalId"],
  defaults: { rateLimit: "10/1s", timeout: "5s", concurrency: 3 }
})

/** The good answer of {@link lookup}. */
export const lookupAnswer = {
  report: { score: 0.82, holder: { name: " Jane Roe ", national_id: "ZX-448-1190-Q", email: "jane@example.com" } }
}

/** The samples AdapterSuite needs for {@link lookup}. */
export const lookupSamples = (definition: VendorDefinition.VendorDefinition = lookup): AdapterSuite.Options => ({
  definition,
  payload: { company: "Acme" },
  answer: () => lookupAnswer,
  pii: ["jane@example.com"],
  expectRequest: (request) =>
    request.method === "POST" && request.url === "/v2/reports" ? undefined : `sent ${request.method} ${request.url}`
})

const Accepted = Schema.Struct({ ticket: Schema.String, state: Schema.Literal("queued") })
const Hook = Schema.Struct({
  reference: Schema.String,
  outcome: Schema.Struct({ rating: Schema.String, ssn: Schema.String })
})
const Status = Schema.Struct({ state: Schema.Literals(["queued", "done"]), outcome: Schema.optionalKey(Schema.Json) })

/** How {@link rating} calls back. */
export const ratingWebhook: VendorDefinition.WebhookSpec<typeof Hook.Type> = {
  schema: Hook,
  jobId: (hook) => hook.reference,
  result: (hook) => hook.outcome
}

/** An async vendor: accepts with 202, calls back signed, answers `GET /v1/jobs/<id>` when asked. */
export const rating = defineVendor({
  name: "rating",
  mode: "async",
  url: "http://127.0.0.1:1",
  request: (call) => ({
    path: "/v1/jobs",
    body: { reference: call.jobId, notify: call.webhookUrl, input: call.payload }
  }),
  response: Accepted,
  webhook: ratingWebhook,
  checkStatus: {
    request: (call) => ({ method: "GET", path: `/v1/jobs/${call.jobId}` }),
    response: Status,
    result: (status) => (status.state === "done" ? (status.outcome ?? null) : undefined)
  },
  classify: (answer) => (answer.status === 409 ? permanent("rating: duplicate reference") : undefined),
  defaults: { callbackDeadline: "10m" }
})

/** The samples AdapterSuite needs for {@link rating}. */
export const ratingSamples = (definition: VendorDefinition.VendorDefinition = rating): AdapterSuite.Options => ({
  definition,
  payload: { company: "Globex" },
  answer: () => ({ ticket: "t-1", state: "queued" }),
  callback: (jobId) => ({ reference: jobId, outcome: { rating: "AA", ssn: "219-09-9999" } }),
  status: (jobId) => ({ state: "done", outcome: { rating: "AA", reference: jobId } }),
  pii: ["219-09-9999"]
})

/**
 * The shared table of HTTP cases: every answer the API gives, by status, headers, problem type and
 * body shape, run against a real server with `HOT_PATH=true` and one with `HOT_PATH=false`, over
 * real sockets (see `support/HttpCases.ts`). Tests of what a request does beyond its answer (what
 * is stored, queued, counted or applied) stay in the feature's own file.
 */
import { Access, Api, Job, JobService, JobStore, WebhookSignature } from "@vendorflow/core"
import { assert } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import {
  type Case,
  type Expected,
  type Given,
  type Request,
  describeCases,
  isArray,
  post,
  problem
} from "./support/HttpCases.ts"
import * as TestServer from "./support/TestServer.ts"

// ---------------------------------------------------------------------------------------------
// Vendors, requests and set-ups
// ---------------------------------------------------------------------------------------------

const secret = "test-webhook-secret"
const alpha = TestServer.syncVendor("alpha")
const beta = TestServer.asyncVendor("beta", secret)

const mib = 1024 * 1024

const signed = (body: string) => ({
  "content-type": "application/json",
  [WebhookSignature.header]: WebhookSignature.sign({ secret, body, timestamp: Math.floor(Date.now() / 1000) })
})

/** A signed callback to `vendor`, at the URL of the job the body names (as the engine hands it out). */
const callback = (vendor: string, body: string, jobId = ""): Request => {
  const token = WebhookSignature.callbackToken({ secret: WebhookSignature.defaultCallbackSecret, jobId, run: 1 })
  return post(body, signed(body), `/vendor-webhook/${vendor}?token=${encodeURIComponent(token)}`)
}

/** A job submitted for `vendor` (and `owner`), as `POST /jobs` stores it. */
const submitted = (vendor: string, owner?: string) =>
  JobService.JobService.use((jobs) => jobs.submit({ payload: { company: "Acme" }, vendor, owner }))

/** A job moved from pending to `to`: taken by a worker, then perhaps finished. */
const jobIn = (to: "processing" | "complete" | "failed") =>
  Effect.gen(function* () {
    const job = yield* submitted("beta")
    const store = yield* JobStore.JobStore
    const moved = yield* store.transition({ id: job.id, from: "pending", to: "processing" })
    const finished =
      to === "processing"
        ? moved
        : yield* store.transition({
            id: job.id,
            from: "processing",
            to,
            set: to === "complete" ? { result: 1 } : { error: { reason: "Rejected", message: "no" } }
          })
    const version = Option.getOrThrow(finished).version
    return { id: job.id, etag: `"${job.id}.${version}"` }
  })

const asCursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
/** Cursors no page handed out: a date that is not one, a date in another form, a bad id, not base64 JSON. */
const forgedCursors = [
  asCursor(["not-a-date", Job.makeJobId()]),
  asCursor(["1970-01-01", Job.makeJobId()]),
  asCursor(["2026-01-02T03:04:05Z", Job.makeJobId()]),
  asCursor(["+275760-09-13T00:00:00.000Z", Job.makeJobId()]),
  asCursor(["2026-02-30T00:00:00.000Z", Job.makeJobId()]),
  asCursor(["2026-01-02T03:04:05.678Z", "not-a-uuid"]),
  asCursor({ updatedAt: "2026-01-02T03:04:05.678Z" }),
  "%%%",
  ""
]
const forgedCursorCases = (expect: Expected): ReadonlyArray<Case> =>
  forgedCursors.map((cursor, i) => ({
    name: `GET /jobs with forged cursor ${i + 1}: 400`,
    request: { path: `/jobs?status=failed&cursor=${encodeURIComponent(cursor)}` },
    expect
  }))

const unknownId = Job.makeJobId()

// ---------------------------------------------------------------------------------------------
// No API keys
// ---------------------------------------------------------------------------------------------

const postCases: ReadonlyArray<Case> = [
  {
    name: "POST /jobs with a JSON object: 200 { request_id }, a UUID v4, no RateLimit headers",
    request: post('{"company":"  Acme  ","vendor":"alpha"}'),
    expect: {
      status: 200,
      keys: ["request_id"],
      headers: { ratelimit: null, "ratelimit-policy": null },
      check: (body) => assert.isTrue(Schema.is(Job.JobId)(body["request_id"]), "a UUID v4")
    }
  },
  ...["application/json; charset=utf-8", "application/vnd.acme+json", "Application/JSON"].map((contentType): Case => ({
    name: `POST /jobs as ${contentType}: 200`,
    request: post("{}", { "content-type": contentType }),
    expect: { status: 200, keys: ["request_id"] }
  })),
  {
    name: "POST /jobs with a byte order mark: 200",
    request: post('\uFEFF{"company":"Acme"}'),
    expect: { status: 200, keys: ["request_id"] }
  },
  {
    name: "POST /jobs with a body just under the limit: 200",
    request: post(JSON.stringify({ filler: "x".repeat(mib - 100) })),
    expect: { status: 200, keys: ["request_id"] }
  },
  {
    name: "POST /jobs for an unknown vendor in the payload: 422 with the known vendors",
    request: post('{"vendor":"nope"}'),
    expect: problem(422, "unknown-vendor", { body: { vendor: "nope", known_vendors: ["alpha", "beta"] } })
  },
  {
    name: "POST /jobs?vendor= an unknown vendor: 422",
    request: post("{}", {}, "/jobs?vendor=gone"),
    expect: problem(422, "unknown-vendor", { body: { vendor: "gone", known_vendors: ["alpha", "beta"] } })
  },
  ...[
    "{not json",
    '{"query": "acme"',
    '{"company": "acme",',
    '{"company": "ac',
    "{'single': 'quotes'}",
    '{"company":',
    "",
    "   "
  ].map((body): Case => ({
    name: `POST /jobs with ${JSON.stringify(body)}: 400`,
    request: post(body),
    expect: problem(400, "malformed-json")
  })),
  ...["[1,2]", '"text"', "42", "null", "true", '{"vendor":7}'].map((body): Case => ({
    name: `POST /jobs with ${body}, not an object or a vendor that is not a string: 422`,
    request: post(body),
    expect: problem(422, "invalid-payload")
  })),
  {
    name: "POST /jobs with JSON nested 10,000 deep: 422",
    request: post(`${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`),
    expect: problem(422, "invalid-payload")
  },
  {
    name: "POST /jobs with an array nested 500 deep: 422",
    request: post(`${"[".repeat(500)}${"]".repeat(500)}`),
    expect: problem(422, "invalid-payload")
  },
  {
    name: "POST /jobs with invalid UTF-8 in a string: 400",
    request: post(Buffer.concat([Buffer.from('{"company":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')])),
    expect: problem(400, "malformed-json")
  },
  {
    name: "POST /jobs with invalid UTF-8 in a key: 400",
    request: post(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])),
    expect: problem(400, "malformed-json")
  },
  ...[
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=latin1",
    "application/xml",
    "multipart/form-data; boundary=x"
  ].map((contentType): Case => ({
    name: `POST /jobs as ${contentType}: 415`,
    request: post('{"a":1}', { "content-type": contentType }),
    expect: problem(415, "unsupported-media-type")
  })),
  {
    name: "POST /jobs with a body and no content type: 415",
    request: { method: "POST", path: "/jobs", body: "{}" },
    expect: problem(415, "unsupported-media-type")
  },
  {
    name: "POST /jobs with 2 MiB and its Content-Length: 413 naming the limit",
    request: post(JSON.stringify({ blob: "x".repeat(2 * mib) })),
    expect: problem(413, "payload-too-large", { body: { max_bytes: mib } })
  },
  {
    name: "POST /jobs with 10 MB and its Content-Length: 413",
    request: post(`{"a":"${"x".repeat(10 * 1024 * 1024)}"}`),
    expect: problem(413, "payload-too-large")
  },
  {
    name: "POST /jobs with 2 MiB chunked: cut off at the limit, 413",
    request: { ...post(JSON.stringify({ blob: "x".repeat(2 * mib) })), chunked: true },
    expect: problem(413, "payload-too-large", { body: { max_bytes: mib } })
  },
  {
    name: "POST /jobs with 10 MB chunked: 413",
    request: { ...post(`{"a":"${"x".repeat(10 * 1024 * 1024)}"}`), chunked: true },
    expect: problem(413, "payload-too-large")
  },
  {
    name: "POST /jobs with a million-element array, chunked: 413",
    request: { ...post(`{"a":[${Array.from({ length: 1_000_000 }, () => "0").join(",")}]}`), chunked: true },
    expect: problem(413, "payload-too-large")
  },
  {
    name: "POST /jobs with ?vendor= twice: 400 listing the failed check",
    request: post("{}", {}, "/jobs?vendor=alpha&vendor=beta"),
    expect: problem(400, "invalid-request", { check: isArray("errors") })
  },
  {
    name: "POST /jobs with a used Idempotency-Key and another body: 422 naming the first job",
    given: Effect.gen(function* () {
      const key = `order-${crypto.randomUUID()}`
      const job = yield* JobService.JobService.use((jobs) =>
        jobs.submit({ payload: { order: 1 }, vendor: "alpha", idempotencyKey: key })
      )
      return { key, id: job.id }
    }),
    request: ({ key = "" }) => post('{"order":2}', { "idempotency-key": key }, "/jobs?vendor=alpha"),
    expect: ({ id }) => problem(422, "idempotency-conflict", { body: { request_id: id } })
  },
  {
    name: "POST /jobs with a used Idempotency-Key for another vendor: 422",
    given: Effect.gen(function* () {
      const key = `order-${crypto.randomUUID()}`
      yield* JobService.JobService.use((jobs) =>
        jobs.submit({ payload: { order: 1 }, vendor: "alpha", idempotencyKey: key })
      )
      return { key }
    }),
    request: ({ key = "" }) => post('{"order":1}', { "idempotency-key": key }, "/jobs?vendor=beta"),
    expect: problem(422, "idempotency-conflict")
  }
]

const readCases: ReadonlyArray<Case> = [
  {
    name: "GET /jobs/{id} of an unknown job: 404 naming it",
    request: { path: `/jobs/${unknownId}` },
    expect: problem(404, "job-not-found", { body: { job_id: unknownId } })
  },
  ...[
    "not-a-uuid",
    encodeURIComponent("../etc/passwd"),
    "..%2F..%2Fetc%2Fpasswd",
    "%7B%22%24gt%22%3A%22%22%7D",
    "$where",
    "123e4567-e89b-12d3-a456-426614174000"
  ].map((id): Case => ({
    name: `GET /jobs/${id}, not a job id: 400 listing the failed check`,
    request: { path: `/jobs/${id}` },
    expect: problem(400, "invalid-request", { check: isArray("errors") })
  })),
  {
    name: "GET /jobs/{id} of a pending job: its view, never cached",
    given: Effect.map(submitted("alpha"), ({ id }) => ({ id })),
    request: ({ id }) => ({ path: `/jobs/${id}` }),
    expect: ({ id }) => ({
      status: 200,
      headers: { "cache-control": "no-store", etag: null },
      schema: Api.JobView,
      body: { request_id: id, status: "pending", vendor: "alpha", attempts: 0 }
    })
  },
  {
    name: "GET /jobs/{id} of a complete job: a strong ETag, cached for a year",
    given: jobIn("complete"),
    request: ({ id }) => ({ path: `/jobs/${id}` }),
    expect: ({ etag = "" }) => ({
      status: 200,
      headers: { etag, "cache-control": "private, max-age=31536000, immutable" },
      schema: Api.JobView,
      body: { status: "complete", result: 1 }
    })
  },
  {
    name: "GET /jobs/{id} of a complete job with its ETag in If-None-Match: 304, no body",
    given: jobIn("complete"),
    request: ({ id, etag = "" }) => ({ path: `/jobs/${id}`, headers: { "if-none-match": etag } }),
    expect: ({ etag = "" }) => ({ status: 304, empty: true, headers: { etag } })
  },
  {
    name: "GET /jobs/{id} with its ETag among others in If-None-Match: 304",
    given: jobIn("failed"),
    request: ({ id, etag }) => ({ path: `/jobs/${id}`, headers: { "if-none-match": `"other", ${etag}` } }),
    expect: { status: 304, empty: true }
  },
  {
    name: "GET /jobs/{id} with a stale If-None-Match: 200",
    given: jobIn("complete"),
    request: ({ id }) => ({ path: `/jobs/${id}`, headers: { "if-none-match": '"something-else"' } }),
    expect: { status: 200, schema: Api.JobView }
  },
  {
    name: "GET /jobs/{id} of a failed job: an ETag, but revalidated (it may be sent round again)",
    given: jobIn("failed"),
    request: ({ id }) => ({ path: `/jobs/${id}` }),
    expect: ({ etag = "" }) => ({
      status: 200,
      headers: { etag, "cache-control": "private, no-cache" },
      body: { status: "failed" }
    })
  },
  {
    name: "GET /jobs/{id} of a failed job with its ETag in If-None-Match: 304",
    given: jobIn("failed"),
    request: ({ id, etag = "" }) => ({ path: `/jobs/${id}`, headers: { "if-none-match": etag } }),
    expect: { status: 304, empty: true }
  }
]

const listAndRetryCases: ReadonlyArray<Case> = [
  ...["/jobs?status=lost", "/jobs?status=failed&limit=0", "/jobs"].map((path): Case => ({
    name: `GET ${path}: 400`,
    request: { path },
    expect: problem(400, "invalid-request")
  })),
  ...forgedCursorCases(
    problem(400, "invalid-request", { check: (body) => assert.match(String(body["detail"]), /query\.cursor/) })
  ),
  {
    name: "GET /jobs with a cursor a page could have handed out: 200",
    request: {
      path: `/jobs?status=failed&cursor=${Api.encodeCursor({ updatedAt: new Date().toISOString(), id: Job.makeJobId() })}`
    },
    expect: { status: 200, schema: Api.JobList }
  },
  {
    name: "POST /jobs/{id}/retry of a job that has not failed: 409",
    given: Effect.map(submitted("alpha"), ({ id }) => ({ id })),
    request: ({ id }) => ({ method: "POST", path: `/jobs/${id}/retry` }),
    expect: ({ id }) => problem(409, "not-retryable", { body: { job_id: id, job_status: "pending" } })
  },
  {
    name: "POST /jobs/{id}/retry of an unknown job: 404",
    request: { method: "POST", path: `/jobs/${unknownId}/retry` },
    expect: problem(404, "job-not-found")
  }
]

const webhookCases: ReadonlyArray<Case> = [
  ...["{not json", JSON.stringify({ job_id: "not-a-uuid", data: 1 }), JSON.stringify([1])].map((body): Case => ({
    name: `a signed callback of ${body}: 400`,
    request: callback("beta", body),
    expect: problem(400, "malformed-webhook")
  })),
  {
    name: "a signed callback naming its job by an operator ({ $gt }): 400",
    request: (() => {
      const body = JSON.stringify({ job_id: { $gt: "" }, data: {} })
      return post(body, signed(body), "/vendor-webhook/beta")
    })(),
    expect: problem(400, "malformed-webhook")
  },
  {
    name: "a callback to an unknown vendor: 404 with the vendors that take webhooks",
    request: callback("nope", JSON.stringify({ job_id: unknownId, data: 1 })),
    expect: problem(404, "vendor-not-found", { body: { vendor: "nope", known_vendors: ["beta"] } })
  },
  {
    name: "a callback to a vendor that takes none: 404",
    request: callback("alpha", JSON.stringify({ job_id: unknownId, data: 1 })),
    expect: problem(404, "vendor-not-found")
  },
  {
    name: "a callback to a vendor path that climbs out: 404",
    request: post("{}", {}, "/vendor-webhook/..%2F..%2Fadmin"),
    expect: problem(404, "vendor-not-found")
  },
  {
    name: "a callback for an unknown job: 404 naming it",
    request: callback("beta", JSON.stringify({ job_id: unknownId, data: 1 }), unknownId),
    expect: problem(404, "job-not-found", { body: { job_id: unknownId } })
  },
  {
    name: "a callback for a job of another vendor: 404",
    given: Effect.map(submitted("alpha"), ({ id }) => ({ id })),
    request: ({ id = "" }) => callback("beta", JSON.stringify({ job_id: id, data: 1 }), id),
    expect: problem(404, "job-not-found")
  },
  {
    name: "an oversize callback: 413",
    request: callback("beta", JSON.stringify({ job_id: unknownId, data: "x".repeat(2 * mib) }), unknownId),
    expect: problem(413, "payload-too-large")
  }
]

const systemCases: ReadonlyArray<Case> = [
  {
    name: "GET /health: 200 with the loaded vendors",
    request: { path: "/health" },
    expect: {
      status: 200,
      keys: ["status", "checks", "circuits", "vendors", "workers"],
      body: { status: "ok", checks: {}, circuits: {}, vendors: ["alpha", "beta"], workers: [] }
    }
  },
  { name: "GET /ready while every backend answers: 200", request: { path: "/ready" }, expect: { status: 200 } },
  ...["/nope", "/jobs/a/b"].map((path): Case => ({
    name: `GET ${path}: 404`,
    request: { path },
    expect: problem(404, "route-not-found")
  })),
  {
    name: "DELETE /jobs: 405 with Allow",
    request: { method: "DELETE", path: "/jobs" },
    expect: problem(405, "method-not-allowed", {
      headers: { allow: "GET, HEAD, POST" },
      body: { allowed: ["GET", "HEAD", "POST"] }
    })
  },
  {
    name: "PUT /jobs/{id}: 405 with Allow",
    request: { method: "PUT", path: `/jobs/${unknownId}`, body: "{}" },
    expect: problem(405, "method-not-allowed", { headers: { allow: "GET, HEAD" } })
  }
]

describeCases(
  "without API keys",
  TestServer.layerCore([alpha, beta]),
  [...postCases, ...readCases, ...listAndRetryCases, ...webhookCases, ...systemCases],
  { ordinary: post('{"company":"still fine"}') }
)

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

const limit = 1000
const keys = { alice: "alice-secret-1", bob: "bob-secret-2", carol: "carol-secret-3" }
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const unauthorized = problem(401, "unauthorized", { headers: { "www-authenticate": 'Bearer realm="vendorflow"' } })

/** Alice's job, and Carol's key with its limit used up. */
const alicesJob = Effect.map(submitted("alpha", "alice"), ({ id }) => ({ id }))
const carolSpent = Effect.gen(function* () {
  const access = yield* Access.Access
  yield* Effect.ignore(access.authorize(keys.carol)).pipe(Effect.repeat({ times: limit }))
  return { id: Job.makeJobId() }
})

const tooManyRequests = problem(429, "too-many-requests", {
  headers: { ratelimit: /^"default";r=0;t=\d+$/, "ratelimit-policy": `"default";q=${limit};w=600` },
  body: { limit, window_seconds: 600 },
  check: (body) => {
    const retryAfter = Number(body["retry_after"])
    assert.isTrue(retryAfter > 0 && retryAfter <= 600, `retry_after ${retryAfter}`)
  }
})

const keyedCases: ReadonlyArray<Case> = [
  ...[{}, bearer("wrong"), { "x-api-key": "wrong" }, { authorization: "Basic YTpi" }].flatMap(
    (headers): ReadonlyArray<Case> => [
      {
        name: `POST /jobs with ${JSON.stringify(headers)}: 401 with a Bearer challenge`,
        request: post('{"company":"Acme"}', headers),
        expect: unauthorized
      },
      {
        name: `GET /jobs/{id} with ${JSON.stringify(headers)}: 401`,
        request: { path: `/jobs/${unknownId}`, headers },
        expect: unauthorized
      }
    ]
  ),
  {
    name: "POST /jobs with no key and a bad body: 401, the key is checked first",
    request: post('{"company":'),
    expect: unauthorized
  },
  { name: "GET /jobs?status= with no key: 401", request: { path: "/jobs?status=failed" }, expect: unauthorized },
  { name: "GET /stats with no key: 401", request: { path: "/stats" }, expect: unauthorized },
  { name: "GET /health needs no key: 200", request: { path: "/health" }, expect: { status: 200 } },
  {
    name: "a webhook needs no key, only its vendor: 404 for one without webhooks",
    request: { method: "POST", path: "/vendor-webhook/alpha", body: "{}" },
    expect: problem(404, "vendor-not-found")
  },
  {
    name: "POST /jobs with a key and a bad body: 400",
    request: post('{"company":', bearer(keys.alice)),
    expect: problem(400, "malformed-json")
  },
  {
    name: "POST /jobs with a key: 200 with the RateLimit headers",
    request: post('{"company":"Acme"}', { "x-api-key": keys.alice }),
    expect: {
      status: 200,
      keys: ["request_id"],
      headers: { "ratelimit-policy": `"default";q=${limit};w=600`, ratelimit: /^"default";r=\d+;t=\d+$/ }
    }
  },
  {
    name: "GET /jobs/{id} by its owner: 200 with the RateLimit headers",
    given: alicesJob,
    request: ({ id }) => ({ path: `/jobs/${id}`, headers: bearer(keys.alice) }),
    expect: ({ id }) => ({
      status: 200,
      headers: { "ratelimit-policy": `"default";q=${limit};w=600` },
      body: { request_id: id }
    })
  },
  {
    name: "GET /jobs/{id} by another key: 404, as for no such job",
    given: alicesJob,
    request: ({ id }) => ({ path: `/jobs/${id}`, headers: bearer(keys.bob) }),
    expect: ({ id }) => problem(404, "job-not-found", { body: { job_id: id } })
  },
  {
    name: "GET /jobs/{id} of a job with no key: 401",
    given: alicesJob,
    request: ({ id }) => ({ path: `/jobs/${id}` }),
    expect: unauthorized
  },
  ...(
    [
      ["POST /jobs", () => post('{"company":"Acme"}', bearer(keys.carol))],
      ["GET /jobs/{id}", ({ id }: Given) => ({ path: `/jobs/${id}`, headers: bearer(keys.carol) })],
      ["GET /jobs?status=", () => ({ path: "/jobs?status=failed", headers: bearer(keys.carol) })]
    ] as const
  ).map(([what, request]): Case => ({
    name: `${what} by a key over its limit: 429 with Retry-After and RateLimit headers`,
    given: carolSpent,
    request,
    expect: tooManyRequests,
    // The seconds until the window resets may tick between the two servers' answers.
    same: false
  }))
]

describeCases(
  "with API keys",
  TestServer.layerCore([alpha], {
    access: {
      keys: new Map(Object.entries(keys).map(([name, key]) => [name, Redacted.make(key)])),
      // A window long enough that no test's requests straddle two windows.
      rateLimit: { limit, window: Duration.minutes(10) }
    }
  }),
  keyedCases,
  { ordinary: post('{"company":"still fine"}', bearer(keys.bob)) }
)

// ---------------------------------------------------------------------------------------------
// A store that is down, and a bug
// ---------------------------------------------------------------------------------------------

const degradedCases: ReadonlyArray<Case> = [
  {
    name: "GET /health with the store down: 200, degraded",
    request: { path: "/health" },
    expect: { status: 200, body: { status: "degraded" } }
  },
  {
    name: "GET /ready with the store down: 503 naming it",
    request: { path: "/ready" },
    expect: problem(503, "not-ready", { check: (body) => assert.match(String(body["detail"]), /store down/) })
  },
  {
    name: "POST /jobs with the store down: 503 with Retry-After, no internals",
    request: post('{"query":"acme"}'),
    expect: problem(503, "service-unavailable", {
      headers: { "retry-after": "5" },
      body: { retry_after: 5 },
      check: (body) => assert.notInclude(String(body["detail"]), "10.0.0.1")
    })
  },
  {
    name: "GET /jobs/{id} with the store down: 503 with Retry-After",
    request: { path: `/jobs/${unknownId}` },
    expect: problem(503, "service-unavailable", { headers: { "retry-after": "5" } })
  },
  // Refused before the store is asked, so every store answers them alike.
  ...forgedCursorCases(problem(400, "invalid-request")),
  {
    name: "POST /jobs meeting a bug (a forced defect): 500 without internals or a stack trace",
    request: post('{"bug":true}'),
    expect: problem(500, "internal-error", {
      keys: ["detail", "status", "title", "type"],
      check: (body) => {
        assert.notInclude(JSON.stringify(body), "secret internals")
        assert.notInclude(JSON.stringify(body), "at ")
      }
    })
  }
]

describeCases(
  "with the store down",
  TestServer.layerCore([alpha, beta], {
    store: TestServer.layerStoreDown,
    health: TestServer.layerHealthStoreDown
  }),
  degradedCases,
  { ordinary: { path: "/health" }, quiet: true }
)

// ---------------------------------------------------------------------------------------------
// Back-pressure
// ---------------------------------------------------------------------------------------------

describeCases(
  "with MAX_BACKLOG=3",
  TestServer.layerCore([alpha, beta]).pipe(
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ MAX_BACKLOG: "3" })))
  ),
  [
    {
      name: "POST /jobs for a vendor with 3 jobs waiting: 503 with Retry-After",
      given: Effect.as(
        Effect.forEach([0, 1, 2], (n) =>
          JobService.JobService.use((jobs) => jobs.submit({ payload: { n }, vendor: "alpha" }))
        ),
        {}
      ),
      request: post('{"n":3}', {}, "/jobs?vendor=alpha"),
      expect: problem(503, "service-unavailable", {
        headers: { "retry-after": "5" },
        check: (body) => assert.match(String(body["detail"]), /alpha has 3 jobs waiting \(the limit is 3\)/)
      })
    },
    {
      name: "POST /jobs for another vendor meanwhile: 200, not held up",
      request: post('{"n":0}', {}, "/jobs?vendor=beta"),
      expect: { status: 200, keys: ["request_id"] }
    }
  ]
)

/**
 * The API's behaviour over real sockets: what a request stores, queues, applies or lists, and the
 * typed client against the real server. What each answer looks like (status, headers, problem
 * type, body shape) is the shared case table's (HttpCases.test.ts), run on both transports.
 */
import { assert, layer } from "@effect/vitest"
import { Api, ApiClient, Cleaner, Job, JobQueue, JobStore, WebhookSignature } from "@vendorflow/core"
import { Effect, Layer, Logger, Option, Schema } from "effect"
import { FetchHttpClient, HttpServer } from "effect/http"
import * as TestServerLayer from "./support/TestServer.ts"

// ---------------------------------------------------------------------------------------------
// Fixtures: two vendors, the real core memory layers, the server on a free port
// ---------------------------------------------------------------------------------------------

const secret = "test-webhook-secret"

const alpha = TestServerLayer.syncVendor("alpha")
const beta = TestServerLayer.asyncVendor("beta", secret)

const TestServer = TestServerLayer.layer([alpha, beta])

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const baseUrl = Effect.map(HttpServer.HttpServer, (server) => HttpServer.formatAddress(server.address))

const send = (path: string, init?: RequestInit) =>
  Effect.flatMap(baseUrl, (base) => Effect.promise(() => fetch(`${base}${path}`, init)))

const postJson = (path: string, body: unknown) =>
  send(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

const bodyOf = (response: Response) => Effect.promise((): Promise<unknown> => response.json())

const Problem = Schema.StructWithRest(
  Schema.Struct({ type: Schema.String, title: Schema.String, status: Schema.Number, detail: Schema.String }),
  [Schema.Record(Schema.String, Schema.Unknown)]
)

/** Asserts the exact status, the problem+json content type and the RFC 9457 members. */
const expectProblem = Effect.fnUntraced(function* (response: Response, status: number, type: string) {
  assert.strictEqual(response.status, status)
  assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/)
  const problem = yield* Schema.decodeUnknownEffect(Problem)(yield* bodyOf(response))
  assert.strictEqual(problem.status, status)
  assert.strictEqual(problem.type, `${Api.problemTypePrefix}${type}`)
  assert.isNotEmpty(problem.title)
  assert.isNotEmpty(problem.detail)
  return problem
})

const Submitted = Schema.Struct({ request_id: Schema.String })

const submit = Effect.fnUntraced(function* (path: string, payload: unknown) {
  const response = yield* postJson(path, payload)
  assert.strictEqual(response.status, 200)
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/)
  const body = yield* Schema.decodeUnknownEffect(Submitted)(yield* bodyOf(response))
  assert.deepStrictEqual(Object.keys(body), ["request_id"])
  assert.isTrue(Schema.is(Job.JobId)(body.request_id), `${body.request_id} is a UUID v4`)
  return Job.JobId.make(body.request_id)
})

const readJob = Effect.fnUntraced(function* (id: string) {
  const response = yield* send(`/jobs/${id}`)
  assert.strictEqual(response.status, 200)
  return yield* Schema.decodeUnknownEffect(Api.JobView)(yield* bodyOf(response))
})

/** After a bad request, the server still takes an ordinary one. */
const stillServes = Effect.gen(function* () {
  const id = yield* submit("/jobs", { query: "still fine" })
  assert.strictEqual((yield* readJob(id)).status, "pending")
})

// The server runs on the real clock, as it does in production: job timestamps are real.
const live = { excludeTestServices: true }

const signed = (body: string, timestamp = Math.floor(Date.now() / 1000)) => ({
  "content-type": "application/json",
  [WebhookSignature.header]: WebhookSignature.sign({ secret, body, timestamp })
})

/** A job taken by a worker and waiting for the vendor's callback, as the consumer leaves it. */
const processingJob = Effect.gen(function* () {
  const id = yield* submit("/jobs?vendor=beta", { query: "async" })
  const store = yield* JobStore.JobStore
  const moved = yield* store.transition({
    id,
    from: "pending",
    to: "processing",
    set: { attempts: 1, awaitingCallback: true }
  })
  assert.isTrue(Option.isSome(moved))
  return id
})

/** The callback token the engine puts in the webhook URLs of a job's first run. */
const tokenFor = (jobId: string) =>
  WebhookSignature.callbackToken({ secret: WebhookSignature.defaultCallbackSecret, jobId, run: 1 })

// Posts to the webhook URL of the job the body names (as the vendor does), or with the token given.
const postWebhook = (vendor: string, body: string, headers: Record<string, string>, token?: string) => {
  const named = (() => {
    try {
      const parsed: unknown = JSON.parse(body)
      return typeof parsed === "object" && parsed !== null && "job_id" in parsed ? String(parsed.job_id) : ""
    } catch {
      return ""
    }
  })()
  const query = `?token=${encodeURIComponent(token ?? tokenFor(named))}`
  return send(`/vendor-webhook/${vendor}${query}`, { method: "POST", headers, body })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

layer(TestServer, live)("POST /jobs and GET /jobs/{id}", (it) => {
  it.effect("a good job answers 200 { request_id } and reads back pending with its vendor", () =>
    Effect.gen(function* () {
      const id = yield* submit("/jobs", { query: "acme", vendor: "alpha" })
      const job = yield* readJob(id)
      assert.strictEqual(job.request_id, id)
      assert.strictEqual(job.status, "pending")
      assert.strictEqual(job.vendor, "alpha")
      assert.strictEqual(job.attempts, 0)
      assert.isBelow(Math.abs(Date.parse(job.created_at) - Date.now()), 60_000)
      assert.strictEqual(job.updated_at, job.created_at)
      assert.isUndefined(job.result)
    })
  )

  it.effect("routes by ?vendor= and by the payload's vendor, the payload winning", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* readJob(yield* submit("/jobs?vendor=beta", { q: 1 }))).vendor, "beta")
      assert.strictEqual((yield* readJob(yield* submit("/jobs", { q: 1, vendor: "beta" }))).vendor, "beta")
      assert.strictEqual((yield* readJob(yield* submit("/jobs?vendor=beta", { vendor: "alpha" }))).vendor, "alpha")
    })
  )

  it.effect("without a vendor, jobs go round-robin over the loaded vendors", () =>
    Effect.gen(function* () {
      const first = (yield* readJob(yield* submit("/jobs", { n: 1 }))).vendor
      const second = (yield* readJob(yield* submit("/jobs", { n: 2 }))).vendor
      const third = (yield* readJob(yield* submit("/jobs", { n: 3 }))).vendor
      assert.deepStrictEqual([first, second].sort(), ["alpha", "beta"])
      assert.strictEqual(third, first)
    })
  )
})

layer(TestServer, live)("Idempotency-Key", (it) => {
  const post = (key: string, body: unknown, path = "/jobs?vendor=alpha") =>
    send(path, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify(body)
    })

  // Another body or vendor with a used key is a 422: see the case table (HttpCases.test.ts).
  it.effect("the same key and body answer the same request_id", () =>
    Effect.gen(function* () {
      const key = `order-${crypto.randomUUID()}`
      const first = yield* bodyOf(yield* post(key, { order: 1 }))
      const again = yield* post(key, { order: 1 })
      assert.strictEqual(again.status, 200)
      assert.deepStrictEqual(yield* bodyOf(again), first)
    })
  )

  it.effect("concurrent requests with one key create one job and queue it once", () =>
    Effect.gen(function* () {
      const key = `burst-${crypto.randomUUID()}`
      const responses = yield* Effect.all(
        Array.from({ length: 10 }, () => post(key, { burst: true })),
        {
          concurrency: "unbounded"
        }
      )
      const bodies = yield* Effect.forEach(responses, bodyOf)
      assert.deepStrictEqual(new Set(responses.map((r) => r.status)), new Set([200]))
      assert.strictEqual(new Set(bodies.map((b) => (b as { request_id: string }).request_id)).size, 1)
      const queue = yield* JobQueue.JobQueue
      const taken = yield* queue.take("alpha", { max: 1000, block: "100 millis" })
      const id = (bodies[0] as { request_id: string }).request_id
      assert.strictEqual(taken.filter((d) => d.jobId === id).length, 1)
    })
  )
})

layer(TestServer, live)("dead letters", (it) => {
  const failJob = (id: Job.JobId) =>
    JobStore.JobStore.use((store) =>
      store.transition({
        id,
        from: "processing",
        to: "failed",
        set: { error: { reason: "Rejected", message: "400 from beta" } }
      })
    )

  it.effect(
    "GET /jobs?status=failed lists failed jobs with reasons, paged, by vendor; retry sends one round again",
    () =>
      Effect.gen(function* () {
        const ids = yield* Effect.forEach([1, 2, 3], () => processingJob)
        for (const id of ids) yield* failJob(id)
        const seen: Array<string> = []
        let cursor: string | undefined
        for (let page = 0; page < 10; page++) {
          const response = yield* send(
            `/jobs?status=failed&vendor=beta&limit=2${cursor === undefined ? "" : `&cursor=${cursor}`}`
          )
          assert.strictEqual(response.status, 200)
          const body = (yield* bodyOf(response)) as Api.JobList
          assert.isAtMost(body.jobs.length, 2)
          for (const job of body.jobs) {
            assert.deepStrictEqual([job.status, job.vendor, job.error?.reason], ["failed", "beta", "Rejected"])
            seen.push(job.request_id)
          }
          cursor = body.next_cursor
          if (cursor === undefined) break
        }
        for (const id of ids) assert.include(seen, id)
        assert.strictEqual(new Set(seen).size, seen.length)

        const retried = yield* send(`/jobs/${ids[0]}/retry`, { method: "POST" })
        assert.strictEqual(retried.status, 200)
        const view = (yield* bodyOf(retried)) as Api.JobView
        assert.deepStrictEqual(
          [view.request_id, view.status, view.attempts, view.error],
          [ids[0], "pending", 0, undefined]
        )
      })
  )
})

layer(TestServer, live)("POST /vendor-webhook/{vendor}", (it) => {
  it.effect("a correctly signed callback completes the job with the cleaned data", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const data = { name: "  Acme Corp  ", email: "ceo@acme.example", revenue: 12 }
      const body = JSON.stringify({ job_id: id, data })
      const response = yield* postWebhook("beta", body, signed(body))
      assert.strictEqual(response.status, 200)
      const view = yield* Schema.decodeUnknownEffect(Api.JobView)(yield* bodyOf(response))
      assert.strictEqual(view.status, "complete")
      assert.deepStrictEqual(view.result, Cleaner.clean(data))
      assert.notDeepEqual(view.result, data)
      assert.isUndefined(view.awaiting_callback)
      const stored = yield* readJob(id)
      assert.strictEqual(stored.status, "complete")
      assert.deepStrictEqual(stored.result, Cleaner.clean(data))
    })
  )

  it.effect("a callback URL's token must be this job's: another job's, a forged or a missing token is a 401", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const other = yield* processingJob
      const body = JSON.stringify({ job_id: id, data: { n: 1 } })
      yield* expectProblem(yield* postWebhook("beta", body, signed(body), tokenFor(other)), 401, "invalid-signature")
      yield* expectProblem(yield* postWebhook("beta", body, signed(body), "1.forged"), 401, "invalid-signature")
      const bare = yield* send(`/vendor-webhook/beta`, { method: "POST", headers: signed(body), body })
      yield* expectProblem(bare, 401, "invalid-signature")
      assert.strictEqual((yield* readJob(id)).status, "processing")
      // Refused, so not spent: the same signed bytes with the right token are applied.
      assert.strictEqual((yield* postWebhook("beta", body, signed(body))).status, 200)
    })
  )

  it.effect("a repeat for a finished job answers 200 and changes nothing", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const first = JSON.stringify({ job_id: id, data: { n: 1 } })
      assert.strictEqual((yield* postWebhook("beta", first, signed(first))).status, 200)
      const store = yield* JobStore.JobStore
      const before = Option.getOrThrow(yield* store.get(id))
      const again = JSON.stringify({ job_id: id, data: { n: 2 } })
      const response = yield* postWebhook("beta", again, signed(again))
      assert.strictEqual(response.status, 200)
      const view = yield* Schema.decodeUnknownEffect(Api.JobView)(yield* bodyOf(response))
      assert.deepStrictEqual(view.result, { n: 1 })
      const after = Option.getOrThrow(yield* store.get(id))
      assert.strictEqual(after.version, before.version)
      assert.strictEqual(after.updatedAt, before.updatedAt)
    })
  )

  it.effect("a callback while its job is pending (queued to be sent again) completes it", () =>
    Effect.gen(function* () {
      const id = yield* submit("/jobs?vendor=beta", { query: "async" })
      const body = JSON.stringify({ job_id: id, data: { n: 1 } })
      const response = yield* postWebhook("beta", body, signed(body))
      assert.strictEqual(response.status, 200)
      assert.deepInclude(yield* readJob(id), { status: "complete", result: { n: 1 } })
    })
  )

  it.effect("a callback for a failed job is a 409 and is not stored; after a retry, the old run's is a 409 too", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const store = yield* JobStore.JobStore
      yield* store.transition({
        id,
        from: "processing",
        to: "failed",
        set: { error: { reason: "callback_timeout", message: "no callback" } }
      })
      const body = JSON.stringify({ job_id: id, data: { n: 1 } })
      const problem = yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 409, "callback-not-applied")
      assert.strictEqual(problem["job_id"], id)
      assert.deepInclude(yield* readJob(id), { status: "failed" })
      assert.strictEqual((yield* send(`/jobs/${id}/retry`, { method: "POST" })).status, 200)
      // The same bytes again: refused for what they are, a callback of the run before the retry.
      yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 409, "callback-not-applied")
      assert.deepInclude(yield* readJob(id), { status: "pending" })
      const runTwo = WebhookSignature.callbackToken({
        secret: WebhookSignature.defaultCallbackSecret,
        jobId: id,
        run: 2
      })
      assert.strictEqual((yield* postWebhook("beta", body, signed(body), runTwo)).status, 200)
      assert.deepInclude(yield* readJob(id), { status: "complete", result: { n: 1 } })
    })
  )

  it.effect("a signed callback nested 20,000 deep is a 400 (the limit of POST /jobs), and the server serves on", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const body = `{"job_id":"${id}","data":${"[".repeat(20_000)}1${"]".repeat(20_000)}}`
      const problem = yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 400, "malformed-webhook")
      assert.include(problem.detail, "nests deeper than 64 levels")
      assert.strictEqual((yield* readJob(id)).status, "processing")
      const good = JSON.stringify({ job_id: id, data: { n: 1 } })
      assert.strictEqual((yield* postWebhook("beta", good, signed(good))).status, 200)
    })
  )

  it.effect("a bad, missing or stale signature is 401 and leaves the job alone", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const body = JSON.stringify({ job_id: id, data: { n: 1 } })
      const tampered = JSON.stringify({ job_id: id, data: { n: 2 } })
      const stale = Math.floor(Date.now() / 1000) - WebhookSignature.defaultToleranceSeconds - 60
      const cases: ReadonlyArray<Record<string, string>> = [
        signed(body),
        { "content-type": "application/json" },
        signed(tampered, stale),
        { "content-type": "application/json", [WebhookSignature.header]: "t=1,v1=zz" }
      ]
      const [forBody, missing, staleHeaders, garbage] = cases
      yield* expectProblem(yield* postWebhook("beta", tampered, forBody ?? {}), 401, "invalid-signature")
      yield* expectProblem(yield* postWebhook("beta", body, missing ?? {}), 401, "invalid-signature")
      yield* expectProblem(yield* postWebhook("beta", tampered, staleHeaders ?? {}), 401, "invalid-signature")
      yield* expectProblem(yield* postWebhook("beta", body, garbage ?? {}), 401, "invalid-signature")
      assert.strictEqual((yield* readJob(id)).status, "processing")
      yield* stillServes
    })
  )
})

layer(TestServer, live)("docs, health and the rest", (it) => {
  it.effect("GET /openapi.json is an OpenAPI 3.1 document with every path", () =>
    Effect.gen(function* () {
      const response = yield* send("/openapi.json")
      assert.strictEqual(response.status, 200)
      const OpenApiDoc = Schema.Struct({
        openapi: Schema.String,
        info: Schema.Struct({ title: Schema.String, version: Schema.String }),
        paths: Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown))
      })
      const doc = yield* Schema.decodeUnknownEffect(OpenApiDoc)(yield* bodyOf(response))
      assert.match(doc.openapi, /^3\.1\./)
      assert.strictEqual(doc.info.title, "vendorflow")
      assert.strictEqual(doc.info.version, Api.version)
      assert.deepStrictEqual(Object.keys(doc.paths).sort(), [
        "/health",
        "/jobs",
        "/jobs/{id}",
        "/jobs/{id}/retry",
        "/ready",
        "/stats",
        "/vendor-webhook/{vendor}"
      ])
      assert.deepStrictEqual(Object.keys(doc.paths["/jobs"] ?? {}).sort(), ["get", "post"])
      assert.deepStrictEqual(Object.keys(doc.paths["/vendor-webhook/{vendor}"] ?? {}), ["post"])
    })
  )

  it.effect("GET /docs is the HTML reference, built on the first request and kept", () =>
    Effect.gen(function* () {
      const first = yield* send("/docs")
      assert.strictEqual(first.status, 200)
      assert.match(first.headers.get("content-type") ?? "", /^text\/html/)
      const page = yield* Effect.promise(() => first.text())
      assert.include(page, "<html")
      const again = yield* send("/docs")
      assert.strictEqual(yield* Effect.promise(() => again.text()), page)
    })
  )
})

layer(TestServer, live)("ApiClient against the real server", (it) => {
  it.effect("submits a job, reads it back, and gets typed problems", () =>
    Effect.gen(function* () {
      const client = yield* ApiClient.make(yield* baseUrl)
      const { request_id } = yield* client.jobs.submit({
        payload: { query: "acme", vendor: "beta" },
        query: {},
        headers: {}
      })
      const job = yield* client.jobs.get({ params: { id: request_id } })
      assert.strictEqual(job.status, "pending")
      assert.strictEqual(job.vendor, "beta")
      const missing = yield* Effect.flip(client.jobs.get({ params: { id: Job.makeJobId() } }))
      assert.strictEqual(missing._tag, "JobNotFound")
      const unknown = yield* Effect.flip(client.jobs.submit({ payload: {}, query: { vendor: "nope" }, headers: {} }))
      assert.strictEqual(unknown._tag, "UnknownVendor")
      const health = yield* client.system.health()
      assert.deepStrictEqual(health.vendors, ["alpha", "beta"])
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

const DegradedServer = TestServerLayer.layer([alpha, beta], {
  store: TestServerLayer.layerStoreDown,
  health: TestServerLayer.layerHealthStoreDown
}).pipe(
  // The server logs the 503s; the assertions are on the answers.
  Layer.provide(Logger.layer([]))
)

layer(DegradedServer, live)("a degraded store", (it) => {
  it.effect("the typed client decodes the 503", () =>
    Effect.gen(function* () {
      const client = yield* ApiClient.make(yield* baseUrl)
      const error = yield* Effect.flip(client.jobs.get({ params: { id: Job.makeJobId() } }))
      assert.strictEqual(error._tag, "ServiceUnavailable")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

import { assert, layer } from "@effect/vitest"
import { Api, ApiClient, Cleaner, Health, Job, JobQueue, JobStore, Vendor, WebhookSignature } from "@vendorflow/core"
import { ConfigProvider, Effect, Layer, Logger, Option, Schema } from "effect"
import { FetchHttpClient, HttpServer } from "effect/http"
import * as TestServerLayer from "./support/TestServer.ts"
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"

// ---------------------------------------------------------------------------------------------
// Fixtures: two vendors, the real core memory layers, the server on a free port
// ---------------------------------------------------------------------------------------------

const secret = "test-webhook-secret"

const notCalled = () => Effect.die(new Error("API tests run no consumer, so no vendor is called"))

const alpha: Vendor.Vendor = { name: "alpha", mode: "sync", concurrency: 1, call: notCalled }

// An async vendor whose webhooks are checked by the reference adapter's own code, with a test secret.
const beta: Vendor.Vendor = {
  name: "beta",
  mode: "async",
  concurrency: 1,
  call: notCalled,
  parseWebhook: MockAsyncVendor.parseWebhook({ secret })
}

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

const mib = 1024 * 1024

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

  it.effect("accepts application/*+json and a charset parameter", () =>
    Effect.gen(function* () {
      for (const contentType of ["application/json; charset=utf-8", "application/vnd.acme+json", "Application/JSON"]) {
        const response = yield* send("/jobs", { method: "POST", headers: { "content-type": contentType }, body: "{}" })
        assert.strictEqual(response.status, 200, contentType)
        yield* Effect.promise(() => response.arrayBuffer())
      }
    })
  )

  it.effect("an unknown vendor is 422 with the known vendors listed", () =>
    Effect.gen(function* () {
      const byPayload = yield* expectProblem(yield* postJson("/jobs", { vendor: "nope" }), 422, "unknown-vendor")
      assert.strictEqual(byPayload["vendor"], "nope")
      assert.deepStrictEqual(byPayload["known_vendors"], ["alpha", "beta"])
      const byQuery = yield* expectProblem(yield* postJson("/jobs?vendor=gone", {}), 422, "unknown-vendor")
      assert.strictEqual(byQuery["vendor"], "gone")
      yield* stillServes
    })
  )

  it.effect("malformed and truncated JSON are 400", () =>
    Effect.gen(function* () {
      for (const body of ["{not json", '{"query": "acme"', ""]) {
        const response = yield* send("/jobs", { method: "POST", headers: { "content-type": "application/json" }, body })
        yield* expectProblem(response, 400, "malformed-json")
        yield* stillServes
      }
    })
  )

  it.effect("JSON that is not an object (array, string, number, null) is 422", () =>
    Effect.gen(function* () {
      for (const body of ["[1,2]", '"text"', "42", "null", "true"]) {
        const response = yield* send("/jobs", { method: "POST", headers: { "content-type": "application/json" }, body })
        yield* expectProblem(response, 422, "invalid-payload")
      }
      yield* expectProblem(yield* postJson("/jobs", { vendor: 7 }), 422, "invalid-payload")
      yield* stillServes
    })
  )

  it.effect("a body that is not JSON is 415: text/plain, form data, no content type, another charset", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<Record<string, string>> = [
        { "content-type": "text/plain" },
        { "content-type": "application/x-www-form-urlencoded" },
        { "content-type": "application/json; charset=latin1" }
      ]
      for (const headers of cases) {
        yield* expectProblem(
          yield* send("/jobs", { method: "POST", headers, body: "{}" }),
          415,
          "unsupported-media-type"
        )
      }
      // fetch labels a string body text/plain; bytes go without a content type.
      const bare = yield* send("/jobs", { method: "POST", body: new TextEncoder().encode("{}") })
      yield* expectProblem(bare, 415, "unsupported-media-type")
      yield* stillServes
    })
  )

  it.effect("a 2 MiB body with its content-length is 413", () =>
    Effect.gen(function* () {
      const problem = yield* expectProblem(
        yield* postJson("/jobs", { blob: "x".repeat(2 * mib) }),
        413,
        "payload-too-large"
      )
      assert.strictEqual(problem["max_bytes"], mib)
      yield* stillServes
    })
  )

  it.effect("a chunked body without content-length is cut off at the limit with 413", () =>
    Effect.gen(function* () {
      const chunk = new TextEncoder().encode("x".repeat(64 * 1024))
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode('{"blob":"'))
          sent += chunk.length
          controller.enqueue(chunk)
          if (sent >= 2 * mib) {
            controller.enqueue(new TextEncoder().encode('"}'))
            controller.close()
          }
        }
      })
      const response = yield* send("/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        duplex: "half"
      })
      yield* expectProblem(response, 413, "payload-too-large")
      yield* stillServes
    })
  )

  it.effect("a body just under the limit is accepted", () =>
    Effect.gen(function* () {
      const filler = "x".repeat(mib - 100)
      yield* submit("/jobs", { filler })
    })
  )

  it.effect("a repeated ?vendor= is 400 with the failed check listed", () =>
    Effect.gen(function* () {
      const problem = yield* expectProblem(
        yield* postJson("/jobs?vendor=alpha&vendor=beta", {}),
        400,
        "invalid-request"
      )
      assert.isArray(problem["errors"])
      yield* stillServes
    })
  )

  it.effect("GET of an unknown id is 404", () =>
    Effect.gen(function* () {
      const id = Job.makeJobId()
      const problem = yield* expectProblem(yield* send(`/jobs/${id}`), 404, "job-not-found")
      assert.strictEqual(problem["job_id"], id)
      yield* stillServes
    })
  )

  it.effect("GET of a malformed id is 400 with the failed check listed", () =>
    Effect.gen(function* () {
      for (const id of ["not-a-uuid", encodeURIComponent("../etc/passwd"), "123e4567-e89b-12d3-a456-426614174000"]) {
        const problem = yield* expectProblem(yield* send(`/jobs/${id}`), 400, "invalid-request")
        assert.isArray(problem["errors"])
      }
      yield* stillServes
    })
  )
})

layer(TestServer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ MAX_BACKLOG: "3" })))), live)(
  "back-pressure",
  (it) => {
    it.effect("past MAX_BACKLOG jobs waiting for a vendor, POST /jobs answers 503 with Retry-After", () =>
      Effect.gen(function* () {
        for (let i = 0; i < 3; i++) yield* submit("/jobs?vendor=alpha", { n: i })
        const refused = yield* postJson("/jobs?vendor=alpha", { n: 3 })
        const problem = yield* expectProblem(refused, 503, "service-unavailable")
        assert.strictEqual(refused.headers.get("retry-after"), "5")
        assert.match(String(problem.detail), /alpha has 3 jobs waiting \(the limit is 3\)/)
        // Other vendors are not held up by this one.
        yield* submit("/jobs?vendor=beta", { n: 0 })
      })
    )
  }
)

layer(TestServer, live)("Idempotency-Key", (it) => {
  const post = (key: string, body: unknown, path = "/jobs?vendor=alpha") =>
    send(path, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify(body)
    })

  it.effect("the same key and body answer the same request_id; another body is a 422", () =>
    Effect.gen(function* () {
      const key = `order-${crypto.randomUUID()}`
      const first = yield* bodyOf(yield* post(key, { order: 1 }))
      const again = yield* post(key, { order: 1 })
      assert.strictEqual(again.status, 200)
      assert.deepStrictEqual(yield* bodyOf(again), first)
      const other = yield* post(key, { order: 2 })
      const problem = yield* expectProblem(other, 422, "idempotency-conflict")
      assert.strictEqual(problem["request_id"], (first as { request_id: string }).request_id)
      const otherVendor = yield* post(key, { order: 1 }, "/jobs?vendor=beta")
      assert.strictEqual(otherVendor.status, 422)
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
        const again = yield* send(`/jobs/${ids[0]}/retry`, { method: "POST" })
        yield* expectProblem(again, 409, "not-retryable")
        const missing = yield* send(`/jobs/${Job.makeJobId()}/retry`, { method: "POST" })
        yield* expectProblem(missing, 404, "job-not-found")
      })
  )

  it.effect("a bad status or limit is a 400 problem", () =>
    Effect.gen(function* () {
      yield* expectProblem(yield* send("/jobs?status=lost"), 400, "invalid-request")
      yield* expectProblem(yield* send("/jobs?status=failed&limit=0"), 400, "invalid-request")
      yield* expectProblem(yield* send("/jobs"), 400, "invalid-request")
    })
  )

  it.effect("a forged or damaged cursor is a 400 problem naming the cursor", () =>
    Effect.gen(function* () {
      for (const cursor of forgedCursors) {
        const problem = yield* expectProblem(
          yield* send(`/jobs?status=failed&cursor=${encodeURIComponent(cursor)}`),
          400,
          "invalid-request"
        )
        assert.match(problem.detail, /query\.cursor/)
      }
      // A real one still pages.
      const valid = Api.encodeCursor({ updatedAt: new Date().toISOString(), id: Job.makeJobId() })
      assert.strictEqual((yield* send(`/jobs?status=failed&cursor=${valid}`)).status, 200)
    })
  )
})

layer(TestServer, live)("caching of finished jobs", (it) => {
  const finish = (id: Job.JobId, to: "complete" | "failed") =>
    JobStore.JobStore.use((store) =>
      store.transition({
        id,
        from: "processing",
        to,
        set: to === "complete" ? { result: 1 } : { error: { reason: "Rejected", message: "no" } }
      })
    )

  it.effect("a complete job has a strong ETag, a long Cache-Control, and answers 304 to If-None-Match", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      const pending = yield* send(`/jobs/${id}`)
      assert.strictEqual(pending.headers.get("cache-control"), "no-store")
      assert.isNull(pending.headers.get("etag"))
      yield* finish(id, "complete")
      const first = yield* send(`/jobs/${id}`)
      const etag = first.headers.get("etag") ?? ""
      assert.match(etag, /^"[0-9a-f-]+\.\d+"$/)
      assert.strictEqual(first.headers.get("cache-control"), "private, max-age=31536000, immutable")
      const again = yield* send(`/jobs/${id}`, { headers: { "if-none-match": etag } })
      assert.strictEqual(again.status, 304)
      assert.strictEqual(yield* Effect.promise(() => again.text()), "")
      const other = yield* send(`/jobs/${id}`, { headers: { "if-none-match": '"something-else"' } })
      assert.strictEqual(other.status, 200)
    })
  )

  it.effect("a failed job has an ETag but must be revalidated (it may be sent round again)", () =>
    Effect.gen(function* () {
      const id = yield* processingJob
      yield* finish(id, "failed")
      const response = yield* send(`/jobs/${id}`)
      assert.strictEqual(response.headers.get("cache-control"), "private, no-cache")
      const etag = response.headers.get("etag") ?? ""
      assert.strictEqual((yield* send(`/jobs/${id}`, { headers: { "if-none-match": etag } })).status, 304)
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

  it.effect("a signed but malformed body is 400", () =>
    Effect.gen(function* () {
      for (const body of ["{not json", JSON.stringify({ job_id: "not-a-uuid", data: 1 }), JSON.stringify([1])]) {
        yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 400, "malformed-webhook")
      }
      yield* stillServes
    })
  )

  it.effect("an unknown vendor, or one without webhooks, is 404", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ job_id: Job.makeJobId(), data: 1 })
      const unknown = yield* expectProblem(yield* postWebhook("nope", body, signed(body)), 404, "vendor-not-found")
      assert.strictEqual(unknown["vendor"], "nope")
      assert.deepStrictEqual(unknown["known_vendors"], ["beta"])
      yield* expectProblem(yield* postWebhook("alpha", body, signed(body)), 404, "vendor-not-found")
      yield* stillServes
    })
  )

  it.effect("an unknown job is 404", () =>
    Effect.gen(function* () {
      const id = Job.makeJobId()
      const body = JSON.stringify({ job_id: id, data: 1 })
      const problem = yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 404, "job-not-found")
      assert.strictEqual(problem["job_id"], id)
    })
  )

  it.effect("a job of another vendor is 404", () =>
    Effect.gen(function* () {
      const id = yield* submit("/jobs?vendor=alpha", {})
      const body = JSON.stringify({ job_id: id, data: 1 })
      yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 404, "job-not-found")
    })
  )

  it.effect("an oversize callback is 413", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ job_id: Job.makeJobId(), data: "x".repeat(2 * mib) })
      yield* expectProblem(yield* postWebhook("beta", body, signed(body)), 413, "payload-too-large")
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

  it.effect("GET /docs is the HTML reference", () =>
    Effect.gen(function* () {
      const response = yield* send("/docs")
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /^text\/html/)
      assert.include(yield* Effect.promise(() => response.text()), "<html")
    })
  )

  it.effect("GET /ready is 200 while every backend answers", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* send("/ready")).status, 200)
    })
  )

  it.effect("GET /health lists the loaded vendors", () =>
    Effect.gen(function* () {
      const response = yield* send("/health")
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(yield* bodyOf(response), {
        status: "ok",
        checks: {},
        circuits: {},
        vendors: ["alpha", "beta"],
        workers: []
      })
    })
  )

  it.effect("an unknown route is a 404 problem", () =>
    Effect.gen(function* () {
      yield* expectProblem(yield* send("/nope"), 404, "route-not-found")
      yield* expectProblem(yield* send("/jobs/a/b"), 404, "route-not-found")
      yield* stillServes
    })
  )

  it.effect("a wrong method on a known path is a 405 problem with Allow", () =>
    Effect.gen(function* () {
      const response = yield* send("/jobs", { method: "DELETE" })
      assert.strictEqual(response.headers.get("allow"), "GET, HEAD, POST")
      const problem = yield* expectProblem(response, 405, "method-not-allowed")
      assert.deepStrictEqual(problem["allowed"], ["GET", "HEAD", "POST"])
      const put = yield* send(`/jobs/${Job.makeJobId()}`, { method: "PUT", body: "{}" })
      assert.strictEqual(put.headers.get("allow"), "GET, HEAD")
      yield* expectProblem(put, 405, "method-not-allowed")
      yield* stillServes
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

// A store that is down, except that a payload with `bug: true` hits a programming error instead.
const unavailable = new JobStore.JobStoreError({ reason: "Unavailable", message: "store at 10.0.0.1 is down" })
const BrokenStore = Layer.succeed(
  JobStore.JobStore,
  JobStore.JobStore.of({
    create: (job) =>
      Effect.fail(
        job.payload["bug"] === true
          ? new JobStore.JobStoreError({ reason: "Duplicate", message: "secret internals" })
          : unavailable
      ),
    createMany: (jobs) =>
      Effect.fail(
        jobs.some((job) => job.payload["bug"] === true)
          ? new JobStore.JobStoreError({ reason: "Duplicate", message: "secret internals" })
          : unavailable
      ),
    get: () => Effect.fail(unavailable),
    getMany: () => Effect.fail(unavailable),
    transition: () => Effect.fail(unavailable),
    listOverdue: () => Effect.fail(unavailable),
    list: () => Effect.fail(unavailable)
  })
)

const DegradedServer = TestServerLayer.layer([alpha, beta], {
  store: BrokenStore,
  health: Health.layer([{ name: "store", check: Effect.fail({ message: "store at 10.0.0.1 is down" }) }])
}).pipe(
  // The server logs the 503s and the defect; the assertions are on the responses.
  Layer.provide(Logger.layer([]))
)

layer(DegradedServer, live)("a degraded store", (it) => {
  it.effect("/health stays 200 but says degraded; /ready answers 503 naming what is down", () =>
    Effect.gen(function* () {
      const health = yield* send("/health")
      assert.strictEqual(health.status, 200)
      assert.strictEqual(((yield* bodyOf(health)) as { status: string }).status, "degraded")
      const problem = yield* expectProblem(yield* send("/ready"), 503, "not-ready")
      assert.match(String(problem.detail), /store down/)
    })
  )

  it.effect("store unavailable is a 503 problem with Retry-After", () =>
    Effect.gen(function* () {
      const submitted = yield* postJson("/jobs", { query: "acme" })
      assert.strictEqual(submitted.headers.get("retry-after"), "5")
      const problem = yield* expectProblem(submitted, 503, "service-unavailable")
      assert.strictEqual(problem["retry_after"], 5)
      assert.notInclude(problem.detail, "10.0.0.1")
      const read = yield* send(`/jobs/${Job.makeJobId()}`)
      assert.strictEqual(read.headers.get("retry-after"), "5")
      yield* expectProblem(read, 503, "service-unavailable")
    })
  )

  it.effect("a forged cursor is refused before the store is asked, so every store answers 400 alike", () =>
    Effect.gen(function* () {
      for (const cursor of forgedCursors) {
        yield* expectProblem(
          yield* send(`/jobs?status=failed&cursor=${encodeURIComponent(cursor)}`),
          400,
          "invalid-request"
        )
      }
    })
  )

  it.effect("a bug is a 500 problem without internals or a stack trace", () =>
    Effect.gen(function* () {
      const response = yield* postJson("/jobs", { bug: true })
      const problem = yield* expectProblem(response, 500, "internal-error")
      const text = JSON.stringify(problem)
      assert.notInclude(text, "secret internals")
      assert.notInclude(text, "at ")
      assert.deepStrictEqual(Object.keys(problem).sort(), ["detail", "status", "title", "type"])
    })
  )

  it.effect("the typed client decodes the 503", () =>
    Effect.gen(function* () {
      const client = yield* ApiClient.make(yield* baseUrl)
      const error = yield* Effect.flip(client.jobs.get({ params: { id: Job.makeJobId() } }))
      assert.strictEqual(error._tag, "ServiceUnavailable")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import { WebhookSignature } from "../src/index.ts"
import { FaultScript, StubServer, VendorSimulator } from "../src/simulator/index.ts"

const post = (url: string, body: unknown) =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    client
      .execute(HttpClientRequest.post(url).pipe(HttpClientRequest.bodyJsonUnsafe(body)))
      .pipe(
        Effect.flatMap((response) =>
          Effect.map(response.text, (text) => ({ status: response.status, headers: response.headers, text }))
        )
      )
  )

// Polls until `check` holds, failing the test past the deadline instead of hanging it.
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean) =>
  read.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: check }),
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("condition not met within 5 seconds") })
  )

// A simulator that calls back to the URL in each request with `{ n }`.
const withCallbacks = (options: VendorSimulator.Options = {}) =>
  VendorSimulator.make({
    respond: () => ({ status: 202, json: { accepted: true } }),
    callback: (request) => {
      const url = VendorSimulator.findWebhookUrl(request)
      const body = VendorSimulator.jsonBody(request)
      return url === undefined ? undefined : { url, body: { n: (body as { n?: number }).n ?? 0 } }
    },
    ...options
  })

describe("VendorSimulator", () => {
  it.live("answers with respond, records each request, and applies faults in order", () =>
    Effect.gen(function* () {
      const simulator = yield* VendorSimulator.make({ respond: () => ({ status: 200, json: { ok: true } }) })
      yield* simulator.inject(
        VendorSimulator.tooManyRequests(2),
        VendorSimulator.tooManyRequests(2),
        VendorSimulator.reply(503, { json: { error: "down" } }),
        VendorSimulator.garbage("<html>")
      )
      const answers = yield* Effect.forEach([1, 2, 3, 4, 5], (n) => post(`${simulator.url}/q`, { n }))
      assert.deepStrictEqual(
        answers.map((a) => a.status),
        [429, 429, 503, 200, 200]
      )
      assert.strictEqual(answers[0]?.headers["retry-after"], "2")
      assert.deepStrictEqual([answers[3]?.text, answers[4]?.text], ["<html>", `{"ok":true}`])
      const requests = yield* simulator.requests
      assert.deepStrictEqual(
        requests.map((r) => [r.method, r.url, VendorSimulator.jsonBody(r)]),
        [1, 2, 3, 4, 5].map((n) => ["POST", "/q", { n }])
      )
      yield* simulator.clear
      assert.deepStrictEqual(yield* simulator.requests, [])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("delays an answer, and drops a connection without answering", () =>
    Effect.gen(function* () {
      const simulator = yield* VendorSimulator.make({ latencyMs: { min: 20, max: 20 } })
      yield* simulator.inject(VendorSimulator.delay(200), VendorSimulator.drop)
      const started = Date.now()
      assert.strictEqual((yield* post(simulator.url, {})).status, 200)
      assert.isAtLeast(Date.now() - started, 200)
      const dropped = yield* Effect.flip(post(simulator.url, {}))
      assert.strictEqual(dropped._tag, "HttpClientError")
      assert.strictEqual((yield* post(simulator.url, {})).status, 200, "the next request is answered again")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("sends signed callbacks that verify with the shared secret", () =>
    Effect.gen(function* () {
      const receiver = yield* StubServer.make(() => ({ status: 200 }))
      const simulator = yield* withCallbacks({ secret: "s3cret" })
      yield* post(simulator.url, { n: 1, notify: `${receiver.url}/vendor-webhook/acme?token=abc` })
      const [callback] = yield* eventually(receiver.received, (all) => all.length === 1)
      assert.strictEqual(callback?.url, "/vendor-webhook/acme?token=abc")
      assert.strictEqual(callback?.body, `{"n":1}`)
      const verification = WebhookSignature.verify({
        secret: "s3cret",
        body: callback?.body ?? "",
        header: callback?.headers[WebhookSignature.header]
      })
      assert.strictEqual(verification, "valid")
      // The simulator records a callback once our answer is in, a moment after the receiver saw it.
      const [recorded] = yield* eventually(simulator.callbacks, (all) => all.length === 1)
      assert.deepInclude(recorded, { outcome: "delivered", status: 200, attempts: 1 })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("drops, duplicates and holds callbacks, and releases held ones out of order", () =>
    Effect.gen(function* () {
      const receiver = yield* StubServer.make(() => ({ status: 200 }))
      const simulator = yield* withCallbacks()
      const webhookUrl = `${receiver.url}/vendor-webhook/acme`
      yield* simulator.injectCallbacks("Drop", "Duplicate", "Hold", "Hold")
      yield* Effect.forEach([1, 2, 3, 4, 5], (n) => post(simulator.url, { n, webhook: webhookUrl }))
      // 1 dropped, 2 twice, 3 and 4 held, 5 sent.
      yield* eventually(receiver.received, (all) => all.length === 3)
      assert.strictEqual(yield* simulator.held, 2)
      yield* simulator.release("reverse")
      const bodies = (yield* receiver.received).map((r) => JSON.parse(r.body).n)
      assert.sameMembers(bodies.slice(0, 3), [2, 2, 5])
      assert.deepStrictEqual(bodies.slice(3), [4, 3])
      const records = yield* simulator.callbacks
      assert.deepStrictEqual(
        records.filter((r) => r.outcome === "dropped").map((r) => r.body),
        [`{"n":1}`]
      )
      assert.strictEqual(yield* simulator.held, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("retries a callback our webhook refuses, re-signing each attempt", () =>
    Effect.gen(function* () {
      const receiver = yield* StubServer.make((_, index) => ({ status: index === 0 ? 503 : 204 }))
      const simulator = yield* withCallbacks({ callbackRetry: { times: 2, baseDelayMs: 10 } })
      yield* post(simulator.url, { n: 7, webhook: `${receiver.url}/vendor-webhook/acme` })
      const [record] = yield* eventually(simulator.callbacks, (all) => all.length === 1)
      assert.deepInclude(record, { attempts: 2, status: 204, outcome: "delivered" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("keeps its own rate limit, goes down in an outage, and plays each job's script, recording every call", () =>
    Effect.gen(function* () {
      const simulator = yield* VendorSimulator.make({
        name: "acme",
        jobId: (request) => (VendorSimulator.jsonBody(request) as { job?: string } | undefined)?.job,
        rateLimit: { limit: 3, windowMs: 60_000 },
        // Down for the first millisecond; its one 503 comes 20 ms late, so the next call is after.
        outages: FaultScript.parseOutages("503/20:0-1"),
        faults: FaultScript.parse("502,ok|slow:50", FaultScript.parseAnswerStep)
      })
      const answers = yield* Effect.forEach(["a", "a", "b", "b"], (job) => post(simulator.url, { job }))
      assert.deepStrictEqual(
        answers.map((a) => [a.status, a.headers["retry-after"] ?? null]),
        [
          [503, null],
          [502, null],
          [200, null],
          [429, "60"]
        ]
      )
      assert.deepStrictEqual(JSON.parse(answers[3]?.text ?? "{}"), {
        error: "rate_limited",
        message: "acme: rate limit exceeded, retry in 60s"
      })
      assert.deepStrictEqual(
        (yield* simulator.arrivals).map((a) => [a.jobId, a.status, a.fault ?? null]),
        [
          ["a", 503, "outage:503"],
          ["a", 502, "502"],
          ["b", 200, "slow:50"],
          ["b", 429, null]
        ]
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("advertises its limit in headers, lowers it mid-run, and caps calls in flight", () =>
    Effect.gen(function* () {
      const advertised = yield* VendorSimulator.make({
        rateLimit: { limit: 2, windowMs: 60_000, advertise: true, later: { limit: 1, windowMs: 60_000, afterMs: 0 } }
      })
      const [first, second] = yield* Effect.forEach([1, 2], () => post(advertised.url, {}))
      assert.deepInclude(first?.headers, {
        "ratelimit-policy": `"default";q=1;w=60`,
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0"
      })
      // Lowered to 1 from the first call on: the second is refused, and still told the limit.
      assert.strictEqual(second?.status, 429)
      assert.strictEqual(second?.headers["x-ratelimit-limit"], "1")

      const capped = yield* VendorSimulator.make({
        maxInFlight: { limit: 2, status: 503 },
        latencyMs: { min: 200, max: 200 }
      })
      const answers = yield* Effect.forEach([1, 2, 3], () => post(capped.url, {}), { concurrency: "unbounded" })
      assert.deepStrictEqual(answers.map((answer) => answer.status).sort(), [200, 200, 503])
      assert.deepStrictEqual(
        (yield* capped.arrivals).filter((arrival) => arrival.fault === "in-flight").map((arrival) => arrival.status),
        [503]
      )
      // Once the two have been answered, there is room again.
      assert.strictEqual((yield* post(capped.url, {})).status, 200)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("plays each job's callback script: a held one goes after the job's next, a deep one is nested", () =>
    Effect.gen(function* () {
      const receiver = yield* StubServer.make(() => ({ status: 200 }))
      const simulator = yield* withCallbacks({
        jobId: (request) => (VendorSimulator.jsonBody(request) as { job?: string } | undefined)?.job,
        callbackFaults: FaultScript.parse("hold,ok|deep", FaultScript.parseCallbackStep)
      })
      const webhook = `${receiver.url}/vendor-webhook/acme`
      yield* post(simulator.url, { n: 1, job: "a", webhook })
      yield* post(simulator.url, { n: 2, job: "b", webhook })
      yield* eventually(simulator.callbacks, (all) => all.length === 1)
      assert.strictEqual(yield* simulator.held, 1)
      yield* post(simulator.url, { n: 3, job: "a", webhook })
      const records = yield* eventually(simulator.callbacks, (all) => all.length === 3)
      assert.deepStrictEqual(
        records.map((r) => [r.jobId, r.fault ?? null, r.body === FaultScript.deepJson ? "deep" : r.body]),
        [
          ["b", "deep", "deep"],
          ["a", null, `{"n":3}`],
          ["a", "hold", `{"n":1}`]
        ]
      )
      assert.strictEqual(yield* simulator.held, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it("finds our webhook URL in a body, the query or a header", () => {
    const received = (url: string, body: string, headers: Record<string, string> = {}): StubServer.Received => ({
      at: 0,
      method: "POST",
      url,
      headers,
      body
    })
    const hook = "http://127.0.0.1:8000/vendor-webhook/acme?token=1.x"
    assert.strictEqual(VendorSimulator.findWebhookUrl(received("/", JSON.stringify({ a: [{ cb: hook }] }))), hook)
    assert.strictEqual(VendorSimulator.findWebhookUrl(received(`/?cb=${encodeURIComponent(hook)}`, "")), hook)
    assert.strictEqual(VendorSimulator.findWebhookUrl(received("/", "", { "x-callback": hook })), hook)
    assert.isUndefined(VendorSimulator.findWebhookUrl(received("/", `{"url":"http://elsewhere/x"}`)))
  })
})

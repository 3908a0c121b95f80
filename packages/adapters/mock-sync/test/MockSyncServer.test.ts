import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Schedule, Schema } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import { FaultScript, VendorSimulator } from "@vendorflow/adapter-kit/simulator"
import * as MockSyncServer from "../src/MockSyncServer.ts"

const fast = { latencyMs: { min: 0, max: 20 } }

const UserInfo = Schema.Struct({ name: Schema.String, email: Schema.String, phone: Schema.String })

// The documented answer, strictly: unknown keys are an error so a drift in shape shows.
const Answer = Schema.Struct({
  success: Schema.Literal(true),
  data: Schema.Struct({
    vendor_type: Schema.Literal("sync"),
    processed_at: Schema.String,
    result: Schema.Struct({
      status: Schema.Literal("completed"),
      data_points: Schema.Int,
      confidence_score: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
      processing_time_ms: Schema.Int,
      metadata: Schema.Struct({ source: Schema.String, version: Schema.Literal("1.0.0") })
    }),
    user_info: Schema.optionalKey(UserInfo)
  })
})

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(
      HttpClientRequest.post(`${url}/process`).pipe(
        HttpClientRequest.setHeaders(headers),
        HttpClientRequest.bodyText(body, "application/json")
      )
    )
    return { status: response.status, headers: response.headers, json: yield* response.json }
  })

// The answer as text, whatever its content type.
const postRaw = (url: string, jobId: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(
      HttpClientRequest.post(`${url}/process`).pipe(
        HttpClientRequest.bodyText(JSON.stringify({ job_id: jobId }), "application/json")
      )
    )
    return { status: response.status, headers: response.headers, text: yield* response.text }
  })

const postJob = (url: string, jobId: string) =>
  post(url, JSON.stringify({ job_id: jobId, payload: { q: 1 } }), { "idempotency-key": jobId })

const decodeAnswer = Schema.decodeUnknownEffect(Answer, { onExcessProperty: "ignore" })

describe("MockSyncServer", () => {
  it.live("answers the documented shape, with padded user_info when the probability is 1", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ ...fast, userInfoProbability: 1 })
      const { json, status } = yield* postJob(server.url, "job-1")
      assert.strictEqual(status, 200)
      const answer = yield* decodeAnswer(json)
      assert.isFalse(Number.isNaN(Date.parse(answer.data.processed_at)))
      const info = answer.data.user_info
      assert.isDefined(info)
      const strings = [info?.name, info?.email, info?.phone].filter((s) => s !== undefined)
      assert.isTrue(
        strings.some((s) => s !== s.trim()),
        "some user_info string carries stray whitespace"
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("leaves user_info out when the probability is 0", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ ...fast, userInfoProbability: 0 })
      const answers = yield* Effect.forEach(["a", "b", "c", "d", "e"], (id) => postJob(server.url, id))
      for (const { json } of answers) {
        const answer = yield* decodeAnswer(json)
        assert.notProperty(answer.data, "user_info")
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("answers 429 with Retry-After over its limit, and records every arrival with its status", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({ ...fast, rateLimit: { limit: 2, windowMs: 10_000 } })
      const answers = yield* Effect.forEach(["j1", "j2", "j3"], (id) => postJob(server.url, id))
      assert.deepStrictEqual(
        answers.map((a) => a.status),
        [200, 200, 429]
      )
      const retryAfter = Number(answers[2]?.headers["retry-after"])
      assert.isTrue(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`)

      const arrivals = yield* server.arrivals
      assert.deepStrictEqual(
        arrivals.map((a) => [a.jobId, a.idempotencyKey, a.status]),
        [
          ["j1", "j1", 200],
          ["j2", "j2", 200],
          ["j3", "j3", 429]
        ]
      )
      assert.deepStrictEqual(yield* VendorSimulator.readArrivals(server.url), arrivals)

      const client = yield* HttpClient.HttpClient
      const cleared = yield* client.del(`${server.url}/arrivals`)
      assert.strictEqual(cleared.status, 204)
      assert.deepStrictEqual(yield* server.arrivals, [])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("answers 400 to malformed JSON and to a body without job_id", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make(fast)
      const malformed = yield* post(server.url, "{not json")
      const missing = yield* post(server.url, JSON.stringify({ payload: {} }))
      assert.strictEqual(malformed.status, 400)
      assert.strictEqual(missing.status, 400)
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => [a.jobId, a.status]),
        [
          [null, 400],
          [null, 400]
        ]
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("answers GET /health", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make(fast)
      const response = yield* (yield* HttpClient.HttpClient).get(`${server.url}/health`)
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(yield* response.json, { status: "ok" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.live("reads its options from env", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.MockSyncServer
      const answers = yield* Effect.forEach(["e1", "e2"], (id) => postJob(server.url, id))
      assert.deepStrictEqual(
        answers.map((a) => a.status),
        [200, 429]
      )
      const answer = yield* decodeAnswer(answers[0]?.json)
      assert.isDefined(answer.data.user_info)
    }).pipe(
      Effect.provide(
        MockSyncServer.layerConfig().pipe(
          Layer.provide(
            ConfigProvider.layer(
              ConfigProvider.fromUnknown({
                PORT: "0",
                MOCK_SYNC_LATENCY_MS: "0",
                MOCK_SYNC_RATE_LIMIT: "1/10s",
                MOCK_SYNC_USER_INFO_PROBABILITY: "1"
              })
            )
          )
        )
      ),
      Effect.provide(NodeHttpClient.layerUndici)
    )
  )
})

describe("MockSyncServer scripted faults", () => {
  it.live("deals scripts to jobs in turn and plays each job's steps in order, then answers normally", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.MockSyncServer
      // a gets "503,429:2", b gets "garbage", c gets the first script again.
      const order = ["a", "b", "c", "a", "b", "c", "a", "c", "c"]
      const answers = yield* Effect.forEach(order, (id) => postRaw(server.url, id))
      assert.deepStrictEqual(
        answers.map((a) => [a.status, a.headers["retry-after"] ?? null]),
        [
          [503, null],
          [200, null],
          [503, null],
          [429, "2"],
          [200, null],
          [429, "2"],
          [200, null],
          [200, null],
          [200, null]
        ]
      )
      assert.match(answers[1]?.text ?? "", /^<html>/)
      assert.strictEqual(answers[1]?.headers["content-type"], "text/html")
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => [a.jobId, a.status, a.fault ?? null]),
        [
          ["a", 503, "503"],
          ["b", 200, "garbage"],
          ["c", 503, "503"],
          ["a", 429, "429:2"],
          ["b", 200, null],
          ["c", 429, "429:2"],
          ["a", 200, null],
          ["c", 200, null],
          ["c", 200, null]
        ]
      )
    }).pipe(
      Effect.provide(
        MockSyncServer.layerConfig().pipe(
          Layer.provide(
            ConfigProvider.layer(
              ConfigProvider.fromUnknown({
                PORT: "0",
                MOCK_SYNC_LATENCY_MS: "0",
                MOCK_SYNC_FAULTS: "503,429:2|garbage"
              })
            )
          )
        )
      ),
      Effect.provide(NodeHttpClient.layerUndici)
    )
  )

  it.live("answers a slow step late, and records 499 when the caller gave up first", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({
        ...fast,
        faults: FaultScript.parse("slow:400,slow:2000", FaultScript.parseAnswerStep)
      })
      const started = Date.now()
      const late = yield* postRaw(server.url, "s")
      assert.strictEqual(late.status, 200)
      assert.isAtLeast(Date.now() - started, 400)
      const gaveUp = yield* postRaw(server.url, "s").pipe(Effect.timeout("200 millis"), Effect.exit)
      assert.isTrue(Exit.isFailure(gaveUp))
      const arrivals = yield* server.arrivals.pipe(
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (all) => all.length === 2 }),
        Effect.timeout("5 seconds")
      )
      assert.deepStrictEqual(
        arrivals.map((a) => [a.status, a.fault ?? null]),
        [
          [200, "slow:400"],
          [499, "slow:2000"]
        ]
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

describe("MockSyncServer outages", () => {
  it.live("answers every call in an outage window with its 5xx, and jobs' scripts wait until it ends", () =>
    Effect.gen(function* () {
      const server = yield* MockSyncServer.make({
        ...fast,
        outages: FaultScript.parseOutages("503/100:0-400"),
        faults: FaultScript.parse("502", FaultScript.parseAnswerStep)
      })
      const sent = Date.now()
      const during = yield* Effect.forEach(["a", "b", "a"], (id) => postRaw(server.url, id))
      assert.isAtLeast(Date.now() - sent, 300, "each outage answer 100 ms late")
      const first = (yield* server.arrivals)[0]?.at ?? 0
      yield* Effect.sleep(Math.max(0, first + 450 - Date.now()))
      const after = yield* Effect.forEach(["a", "a"], (id) => postRaw(server.url, id))
      assert.deepStrictEqual(
        [...during, ...after].map((a) => a.status),
        [503, 503, 503, 502, 200]
      )
      assert.deepStrictEqual(
        (yield* server.arrivals).map((a) => a.fault ?? null),
        ["outage:503", "outage:503", "outage:503", "502", null]
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )
})

describe("MockSyncServer settings from env", () => {
  it.effect("refuses an unreadable plan in env", () =>
    Effect.gen(function* () {
      const read = yield* Effect.exit(
        MockSyncServer.config.parse(ConfigProvider.fromUnknown({ MOCK_SYNC_FAULTS: "503,teapot" }))
      )
      assert.isTrue(Exit.isFailure(read))
    })
  )
})

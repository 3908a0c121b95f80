/**
 * API keys over real sockets: two keys cannot see each other's jobs or Idempotency-Keys, and a
 * key's requests count against its one limit on both transports (plain POST and GET on the
 * batched one, a list on the HttpApi app); `API_KEYS` parsing; CORS; the typed client with a key.
 * What a refusal looks like (401, 429) is in the shared case table (HttpCases.test.ts).
 */
import { assert, layer } from "@effect/vitest"
import { Access, Api, ApiClient } from "@vendorflow/core"
import { ConfigProvider, Duration, Effect, Redacted } from "effect"
import { FetchHttpClient, HttpServer } from "effect/http"
import * as TestServerLayer from "./support/TestServer.ts"

const alpha = TestServerLayer.syncVendor("alpha")

const keys = { alice: "alice-secret-1", bob: "bob-secret-2", carol: "carol-secret-3" }
const limit = 12

const TestServer = TestServerLayer.layer([alpha], {
  access: {
    keys: new Map(Object.entries(keys).map(([name, secret]) => [name, Redacted.make(secret)])),
    // A window long enough that no test's requests straddle two windows.
    rateLimit: { limit, window: Duration.minutes(10) }
  }
})

const live = { excludeTestServices: true }

const send = (path: string, init: RequestInit = {}) =>
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.promise(() => fetch(`${HttpServer.formatAddress(server.address)}${path}`, init))
  )

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` })
const apiKey = (secret: string) => ({ "x-api-key": secret })

const postJob = (headers: Record<string, string>, body: unknown = { company: "Acme" }) =>
  send("/jobs", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })

const json = (response: Response) => Effect.promise(() => response.json() as Promise<Record<string, unknown>>)

const submitted = Effect.fnUntraced(function* (headers: Record<string, string>, extra: Record<string, string> = {}) {
  const response = yield* postJob({ ...headers, ...extra })
  assert.strictEqual(response.status, 200)
  return String((yield* json(response))["request_id"])
})

layer(TestServer, live)("API keys", (it) => {
  it.effect("two keys cannot see each other's jobs: 404 on read and retry, absent from lists", () =>
    Effect.gen(function* () {
      const alices = yield* submitted(bearer(keys.alice))
      const bobs = yield* submitted(apiKey(keys.bob))
      assert.strictEqual((yield* send(`/jobs/${alices}`, { headers: apiKey(keys.alice) })).status, 200)
      assert.strictEqual((yield* send(`/jobs/${bobs}`, { headers: bearer(keys.bob) })).status, 200)
      const hidden = yield* send(`/jobs/${alices}`, { headers: bearer(keys.bob) })
      assert.strictEqual(hidden.status, 404)
      assert.strictEqual((yield* json(hidden))["type"], `${Api.problemTypePrefix}job-not-found`)
      assert.strictEqual((yield* send(`/jobs/${bobs}`, { headers: bearer(keys.alice) })).status, 404)
      const retried = yield* send(`/jobs/${alices}/retry`, { method: "POST", headers: bearer(keys.bob) })
      assert.strictEqual(retried.status, 404)
      const listed = (secret: string) =>
        send("/jobs?status=pending&limit=500", { headers: bearer(secret) }).pipe(
          Effect.flatMap(json),
          Effect.map((page) =>
            (page["jobs"] as ReadonlyArray<{ readonly request_id: string }>).map((j) => j.request_id)
          )
        )
      const alicesList = yield* listed(keys.alice)
      assert.include(alicesList, alices)
      assert.notInclude(alicesList, bobs)
      const bobsList = yield* listed(keys.bob)
      assert.include(bobsList, bobs)
      assert.notInclude(bobsList, alices)
    })
  )

  it.effect("an Idempotency-Key is the key owner's own: the same one from two keys makes two jobs", () =>
    Effect.gen(function* () {
      const shared = { "idempotency-key": `order-${crypto.randomUUID()}` }
      const alices = yield* submitted(bearer(keys.alice), shared)
      const bobs = yield* submitted(bearer(keys.bob), shared)
      assert.notStrictEqual(alices, bobs)
      assert.strictEqual(yield* submitted(bearer(keys.alice), shared), alices)
    })
  )

  it.effect("a key's requests on both transports count against one limit; over it, 429; other keys go on", () =>
    Effect.gen(function* () {
      // The batched transport (plain POST) and the HttpApi app (a list) count against the one limit.
      const seen: Array<string | null> = []
      for (let i = 0; i < limit; i++) {
        const response =
          i % 2 === 0
            ? yield* postJob(bearer(keys.carol))
            : yield* send("/jobs?status=pending", { headers: bearer(keys.carol) })
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("ratelimit-policy"), `"default";q=${limit};w=600`)
        seen.push(response.headers.get("ratelimit"))
      }
      assert.deepStrictEqual(
        seen.map((header) => /r=(\d+)/.exec(header ?? "")?.[1]),
        Array.from({ length: limit }, (_, i) => String(limit - 1 - i))
      )
      // What a 429 carries (Retry-After, RateLimit headers, the problem) is in the case table.
      for (const over of [
        yield* postJob(bearer(keys.carol)),
        yield* send("/jobs?status=failed", { headers: bearer(keys.carol) })
      ]) {
        assert.strictEqual(over.status, 429)
      }
      assert.strictEqual((yield* postJob(bearer(keys.alice))).status, 200)
    })
  )
})

const readKeys = (API_KEYS: string) =>
  Access.keysConfig.parse(ConfigProvider.fromUnknown({ API_KEYS })).pipe(Effect.flip, Effect.map(String))

layer(TestServerLayer.layer([alpha]), live)("API_KEYS", (it) => {
  it.effect("a malformed entry is refused at start-up, named by position, without its secret", () =>
    Effect.gen(function* () {
      const error = yield* readKeys("alice:first-secret,bob-without-colon-secret")
      assert.include(error, "entry 2")
      assert.notInclude(error, "first-secret")
      assert.notInclude(error, "without-colon-secret")
      assert.include(yield* readKeys("alice:a,alice:b"), "twice")
    })
  )
})

const preflight = (origin: string) => ({
  method: "OPTIONS",
  headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" }
})

layer(TestServerLayer.layer([alpha]), live)("CORS", (it) => {
  it.effect("is off unless CORS_ORIGINS names origins", () =>
    Effect.gen(function* () {
      const response = yield* send("/jobs", preflight("https://ops.example.com"))
      assert.isNull(response.headers.get("access-control-allow-origin"))
    })
  )
})

layer(TestServerLayer.layer([alpha], { corsOrigins: ["https://ops.example.com"] }), live)("CORS on", (it) => {
  it.effect("answers the named origin's preflight and calls, and no other origin", () =>
    Effect.gen(function* () {
      const allowed = yield* send("/jobs", preflight("https://ops.example.com"))
      assert.strictEqual(allowed.headers.get("access-control-allow-origin"), "https://ops.example.com")
      const other = yield* send("/jobs", preflight("https://evil.example.com"))
      assert.notStrictEqual(other.headers.get("access-control-allow-origin"), "https://evil.example.com")
      const posted = yield* postJob({ origin: "https://ops.example.com" })
      assert.strictEqual(posted.status, 200)
      assert.strictEqual(posted.headers.get("access-control-allow-origin"), "https://ops.example.com")
      assert.include(posted.headers.get("access-control-expose-headers") ?? "", "ratelimit")
    })
  )
})

layer(TestServer, live)("ApiClient with an API key", (it) => {
  it.effect("sends the key as a bearer token: its own jobs are found, another key's are not, none is a 401", () =>
    Effect.gen(function* () {
      const base = HttpServer.formatAddress((yield* HttpServer.HttpServer).address)
      const carol = yield* ApiClient.make(base, { apiKey: keys.carol })
      const { request_id } = yield* carol.jobs.submit({ payload: { company: "Acme" }, query: {}, headers: {} })
      assert.strictEqual((yield* carol.jobs.get({ params: { id: request_id } })).request_id, request_id)
      const bob = yield* ApiClient.make(base, { apiKey: Redacted.make(keys.bob) })
      assert.strictEqual((yield* Effect.flip(bob.jobs.get({ params: { id: request_id } })))._tag, "JobNotFound")
      const nobody = yield* ApiClient.make(base)
      assert.strictEqual((yield* Effect.flip(nobody.jobs.get({ params: { id: request_id } })))._tag, "Unauthorized")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

import { assert, describe, it } from "@effect/vitest"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Agent } from "undici"
import { Config, ConfigProvider, Duration, Effect, Exit, Redacted, Schema } from "effect"
import { TestClock } from "effect/testing"
import { makeJobId } from "../src/Job.ts"
import * as Vendor from "../src/Vendor.ts"
import * as VendorDefinition from "../src/VendorDefinition.ts"
import * as WebhookSignature from "../src/WebhookSignature.ts"

// A real HTTP server answering every request with `status` and `body`, for the life of the test.
// The vendors' URLs name hosts that do not exist (vendor.test): a dispatcher sends every request
// to this server instead, and records the method, the URL as the adapter built it, and the headers.
const answering = (status: number, body: string, headers: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const sent: Array<{ readonly method: string; readonly url: string; readonly headers: Record<string, string> }> = []
    const server = createServer((_request, response) => {
      response.writeHead(status, headers)
      response.end(body)
    })
    yield* Effect.acquireRelease(
      Effect.promise(() => new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))),
      () => Effect.promise(() => new Promise((closed) => server.close(closed)))
    )
    const { port } = server.address() as AddressInfo
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent()),
      (agent) => Effect.promise(() => agent.close())
    )
    const dispatcher = agent.compose((dispatch) => (options, handler) => {
      const asked = new Headers(options.headers as Record<string, string>)
      sent.push({
        method: options.method,
        url: `${options.origin}${options.path}`,
        headers: Object.fromEntries(asked.entries())
      })
      return dispatch({ ...options, origin: `http://127.0.0.1:${port}` }, handler)
    })
    return {
      sent,
      layer: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.provideService(effect, Vendor.HttpDispatcher, dispatcher)
    }
  })

const Answer = Schema.Struct({ value: Schema.Number })

const syncSpec: VendorDefinition.SyncDefinition<typeof Answer.Type, "API_KEY"> = {
  name: "acme-credit",
  mode: "sync",
  url: "http://vendor.test/api/",
  secrets: ["API_KEY"],
  request: (call) => ({
    method: "GET",
    path: "/v1/score",
    query: { q: String(call.payload["q"]) },
    headers: { "x-api-key": call.secret("API_KEY") }
  }),
  response: Answer,
  result: (answer) => ({ score: answer.value }),
  classify: (answer) =>
    answer.status === 200 && answer.body.includes("quota")
      ? VendorDefinition.rateLimited(answer.body.includes("NaN") ? Number.NaN : 1500)
      : undefined,
  piiKeys: ["nationalId"],
  defaults: { rateLimit: "5/2s", timeout: "3s", concurrency: 2, maxAttempts: 4 }
}

const sync = VendorDefinition.defineVendor(syncSpec)

const Hook = Schema.Struct({ ref: Schema.String, data: Schema.Json })

const async = VendorDefinition.defineVendor({
  name: "slow",
  mode: "async",
  url: "http://slow.test",
  request: (call) => ({ body: { ref: call.jobId, hook: call.webhookUrl } }),
  response: Schema.Struct({ ok: Schema.Literal(true) }),
  webhook: { schema: Hook, jobId: (hook) => hook.ref, result: (hook) => hook.data },
  checkStatus: {
    request: (call) => ({ method: "GET", path: `/jobs/${call.jobId}` }),
    response: Schema.Struct({ done: Schema.Boolean, data: Schema.optionalKey(Schema.Json) }),
    result: (status) => (status.done ? (status.data ?? null) : undefined)
  }
})

const call = (vendor: Vendor.Vendor) =>
  vendor.call({ jobId: makeJobId(), payload: { q: "x" }, attempt: 1, webhookUrl: "http://us.test/vendor-webhook/x" })

const env = (values: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(values))

describe("VendorDefinition", () => {
  it("parses rate limits and durations in their env forms", () => {
    const windowMs = (text: string) => {
      const limit = VendorDefinition.parseRateLimit(text)
      return limit === undefined ? undefined : [limit.limit, Duration.toMillis(Duration.fromInputUnsafe(limit.window))]
    }
    assert.deepStrictEqual(windowMs("5/1s"), [5, 1000])
    assert.deepStrictEqual(windowMs("5"), [5, 1000])
    assert.deepStrictEqual(windowMs("100/500ms"), [100, 500])
    assert.deepStrictEqual(windowMs("60/1m"), [60, 60_000])
    assert.isUndefined(windowMs("0/1s"))
    assert.isUndefined(windowMs("fast"))
    const millis = (text: string) => {
      const duration = VendorDefinition.parseDuration(text)
      return duration === undefined ? undefined : Duration.toMillis(duration)
    }
    assert.deepStrictEqual(
      ["10s", "500ms", "2m", "1h", "250", "1.5s", "10 seconds"].map(millis),
      [10_000, 500, 120_000, 3_600_000, 250, 1500, 10_000]
    )
    assert.isUndefined(millis("soon"))
  })

  it("names a vendor's variables after it", () => {
    assert.strictEqual(VendorDefinition.envPrefix("acme-credit"), "VENDOR_ACME_CREDIT_")
    assert.strictEqual(VendorDefinition.envPrefix("sync"), "VENDOR_SYNC_")
  })

  it("marks what it defines", () => {
    assert.isTrue(VendorDefinition.isVendorDefinition(sync))
    assert.isFalse(VendorDefinition.isVendorDefinition({ name: "x", mode: "sync" }))
    assert.isFalse(VendorDefinition.isVendorDefinition(null))
  })

  it.effect("builds with the definition's defaults; the PII keys go to the cleaner", () =>
    Effect.gen(function* () {
      const { layer } = yield* answering(200, "{}")
      const vendor = yield* VendorDefinition.build(sync, { secrets: { API_KEY: "k" } }).pipe(layer)
      assert.strictEqual(vendor.name, "acme-credit")
      assert.strictEqual(vendor.mode, "sync")
      assert.strictEqual(vendor.concurrency, 2)
      assert.strictEqual(vendor.maxAttempts, 4)
      assert.strictEqual(vendor.rateLimit?.limit, 5)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(vendor.rateLimit?.window ?? 0)), 2000)
      assert.strictEqual(Duration.toMillis(vendor.timeout ?? Duration.zero), 3000)
      assert.deepStrictEqual(vendor.cleaning, { piiKeys: ["nationalId"], keepKeys: undefined })
      assert.isUndefined(vendor.parseWebhook)
      assert.isUndefined(vendor.callbackDeadline)
    })
  )

  it.effect("sends the request the definition builds, with the job id as idempotency key", () =>
    Effect.gen(function* () {
      const { layer, sent } = yield* answering(200, `{"value":7}`)
      const vendor = yield* VendorDefinition.build(sync, { secrets: { API_KEY: Redacted.make("k-1") } }).pipe(layer)
      const outcome = yield* call(vendor)
      assert.deepStrictEqual(outcome, { _tag: "Completed", result: { score: 7 } })
      assert.strictEqual(sent[0]?.method, "GET")
      assert.strictEqual(sent[0]?.url, "http://vendor.test/api/v1/score?q=x")
      assert.strictEqual(sent[0]?.headers["x-api-key"], "k-1")
      assert.match(sent[0]?.headers["idempotency-key"] ?? "", /^[0-9a-f-]{36}$/)
    })
  )

  it.effect("classifies with the definition first, then by status", () =>
    Effect.gen(function* () {
      const build = (status: number, body: string, headers?: Record<string, string>) =>
        Effect.flatMap(answering(status, body, headers), ({ layer }) =>
          VendorDefinition.build(sync, { secrets: { API_KEY: "k" } }).pipe(
            Effect.flatMap((vendor) => Effect.flip(call(vendor))),
            layer
          )
        )
      const quota = yield* build(200, `{"error":"quota"}`)
      assert.deepInclude(quota, { reason: "RateLimited", retryAfterMillis: 1500, status: 200 })
      // A wait the definition could not compute is not taken: Retry-After, else none (the backoff).
      assert.deepInclude(yield* build(200, `{"error":"quota NaN"}`, { "retry-after": "2" }), {
        reason: "RateLimited",
        retryAfterMillis: 2000
      })
      assert.notProperty(yield* build(200, `{"error":"quota NaN"}`), "retryAfterMillis")
      assert.deepInclude(yield* build(429, "", { "retry-after": "3" }), {
        reason: "RateLimited",
        retryAfterMillis: 3000
      })
      // A Retry-After of a day (or 1e300 s) pauses every worker for at most maxRetryAfterMillis.
      for (const retryAfter of ["86400", "1e300", "Fri, 31 Dec 9999 23:59:59 GMT"]) {
        assert.deepInclude(yield* build(429, "", { "retry-after": retryAfter }), {
          retryAfterMillis: Vendor.maxRetryAfterMillis
        })
      }
      assert.strictEqual((yield* build(503, "")).reason, "Unavailable")
      assert.strictEqual((yield* build(422, "{}")).reason, "Rejected")
      assert.strictEqual((yield* build(200, "<html>")).reason, "InvalidResponse")
      assert.strictEqual((yield* build(200, `{"value":"x"}`)).reason, "InvalidResponse")
    })
  )

  it.effect("turns an adapter function that throws into a classified failure", () =>
    Effect.gen(function* () {
      const throwing = VendorDefinition.defineVendor({
        ...syncSpec,
        secrets: [],
        request: () => {
          throw new Error("no q")
        }
      })
      const { layer } = yield* answering(200, `{"value":1}`)
      const error = yield* VendorDefinition.build(throwing).pipe(
        Effect.flatMap((vendor) => Effect.flip(call(vendor))),
        layer
      )
      assert.strictEqual(error.reason, "Rejected")
      assert.match(error.message, /failed to build the request: Error: no q/)
    })
  )

  it.effect("refuses to build a bad name, a missing secret or an unreadable default", () =>
    Effect.gen(function* () {
      const { layer } = yield* answering(200, "{}")
      const failure = (definition: VendorDefinition.VendorDefinition, settings?: VendorDefinition.Settings) =>
        VendorDefinition.build(definition, settings).pipe(Effect.flip, layer)
      assert.match((yield* failure(sync, { name: "Acme Credit", secrets: { API_KEY: "k" } })).message, /lower case/)
      assert.match((yield* failure(sync)).message, /needs the secret API_KEY \(VENDOR_ACME_CREDIT_API_KEY\)/)
      assert.match((yield* failure(async)).message, /needs its webhook secret \(VENDOR_SLOW_SECRET\)/)
      const odd = VendorDefinition.defineVendor({ ...syncSpec, defaults: { timeout: "soon" } })
      assert.match((yield* failure(odd, { secrets: { API_KEY: "k" } })).message, /default duration/)
      for (const rateLimit of [
        { limit: 0, window: "1 second" },
        { limit: Number.NaN, window: "1 second" },
        { limit: 5, window: "0 seconds" }
      ] as const) {
        const unpaced = VendorDefinition.defineVendor({ ...syncSpec, defaults: { rateLimit } })
        assert.match((yield* failure(unpaced, { secrets: { API_KEY: "k" } })).message, /paces no call/)
      }
      for (const maxInFlight of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const capped = VendorDefinition.defineVendor({ ...syncSpec, defaults: { maxInFlight } })
        assert.match(
          (yield* failure(capped, { secrets: { API_KEY: "k" } })).message,
          /default maxInFlight must be a whole number above 0/
        )
      }
    })
  )

  it.effect("reads the operator's overrides from VENDOR_<NAME>_*, and aliases when those are unset", () =>
    Effect.gen(function* () {
      const { layer, sent } = yield* answering(200, `{"value":1}`)
      const vendor = yield* VendorDefinition.fromConfig(sync).pipe(
        Effect.provide(
          env({
            VENDOR_ACME_CREDIT_URL: "http://elsewhere.test",
            VENDOR_ACME_CREDIT_API_KEY: "from-env",
            VENDOR_ACME_CREDIT_RATE_LIMIT: "none",
            VENDOR_ACME_CREDIT_TIMEOUT: "750ms",
            VENDOR_ACME_CREDIT_CONCURRENCY: "9",
            VENDOR_ACME_CREDIT_MAX_ATTEMPTS: "2"
          })
        ),
        layer
      )
      assert.isUndefined(vendor.rateLimit)
      assert.strictEqual(Duration.toMillis(vendor.timeout ?? Duration.zero), 750)
      assert.strictEqual(vendor.concurrency, 9)
      assert.strictEqual(vendor.maxAttempts, 2)
      yield* call(vendor).pipe(layer)
      assert.strictEqual(sent[0]?.url, "http://elsewhere.test/v1/score?q=x")
      assert.strictEqual(sent[0]?.headers["x-api-key"], "from-env")

      const aliased = VendorDefinition.defineVendor({
        ...syncSpec,
        secrets: [],
        env: {
          url: Config.String("OLD_URL"),
          rateLimit: Config.schema(VendorDefinition.RateLimitFromString, "OLD_RATE_LIMIT")
        }
      })
      const settings = yield* VendorDefinition.settingsConfig(aliased).pipe(
        Effect.provide(
          env({ OLD_URL: "http://old.test", VENDOR_ACME_CREDIT_RATE_LIMIT: "3/1s", OLD_RATE_LIMIT: "1/1s" })
        )
      )
      assert.strictEqual(settings.url, "http://old.test")
      assert.strictEqual(settings.rateLimit?.limit, 3, "the VENDOR_ variable wins over its alias")

      const bad = yield* Effect.exit(
        VendorDefinition.settingsConfig(sync).pipe(
          Effect.provide(env({ VENDOR_ACME_CREDIT_RATE_LIMIT: "lots", VENDOR_ACME_CREDIT_API_KEY: "k" }))
        )
      )
      assert.isTrue(Exit.isFailure(bad))
      const missing = yield* Effect.flip(VendorDefinition.fromConfig(sync).pipe(Effect.provide(env({})), layer))
      assert.strictEqual(missing.message, "acme-credit needs the secret API_KEY (VENDOR_ACME_CREDIT_API_KEY)")
    })
  )

  it.effect("builds an async vendor: accepted calls, verified webhooks, status checks", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(1_700_000_000_000)
      const { layer } = yield* answering(200, `{"ok":true,"done":true,"data":{"x":1}}`)
      const vendor = yield* VendorDefinition.build(async, { secret: "s" }).pipe(layer)
      assert.deepStrictEqual(yield* call(vendor), { _tag: "Accepted" })
      assert.isUndefined(vendor.callbackDeadline, "the engine's default applies")
      const configured = yield* VendorDefinition.fromConfig(async, { secret: "s" }).pipe(
        Effect.provide(env({ VENDOR_SLOW_CALLBACK_DEADLINE: "90s", VENDOR_SLOW_ON_CALLBACK_TIMEOUT: "fail" })),
        layer
      )
      assert.strictEqual(Duration.toMillis(configured.callbackDeadline ?? Duration.zero), 90_000)
      assert.strictEqual(configured.onCallbackTimeout, "fail")
      assert.deepStrictEqual(
        yield* (
          vendor.checkStatus?.({
            jobId: makeJobId(),
            payload: {},
            attempt: 1,
            webhookUrl: ""
          }) ?? Effect.die("no checkStatus")
        ),
        { _tag: "Completed", result: { x: 1 } }
      )

      const jobId = makeJobId()
      const body = JSON.stringify({ ref: jobId, data: { y: 2 } })
      const signed = (secret: string, timestamp = 1_700_000_000) => ({
        headers: { [WebhookSignature.header]: WebhookSignature.sign({ secret, body, timestamp }) },
        body
      })
      const parse = vendor.parseWebhook ?? (() => Effect.die("no parseWebhook"))
      const delivery = yield* parse(signed("s"))
      assert.deepInclude(delivery, { jobId, data: { y: 2 } })
      // Parsing spends nothing: until the engine has applied the callback, it may come again as it was.
      assert.deepInclude(yield* parse(signed("s")), { jobId })
      yield* delivery.claimReplay ?? Effect.die("no claimReplay")
      const reasons = yield* Effect.forEach(
        [
          signed("s"),
          signed("other"),
          signed("s", 1_700_000_000 - 3600),
          { headers: {}, body },
          { ...signed("s", 1_700_000_001), body: `${body} ` }
        ],
        (request) => Effect.map(Effect.flip(parse(request)), (error) => error.reason)
      )
      assert.deepStrictEqual(reasons, ["Replayed", "BadSignature", "BadSignature", "MissingSignature", "BadSignature"])

      const notOurs = JSON.stringify({ ref: "not-a-job-id", data: 1 })
      const malformed = yield* Effect.flip(
        parse({
          headers: {
            [WebhookSignature.header]: WebhookSignature.sign({ secret: "s", body: notOurs, timestamp: 1_700_000_000 })
          },
          body: notOurs
        })
      )
      assert.deepInclude(malformed, { reason: "Malformed", message: "the callback names no job id we issued" })
    })
  )

  it.live("shares a ReplayGuard from context across vendors", () =>
    Effect.gen(function* () {
      const { layer } = yield* answering(200, "{}")
      const claims: Array<string> = []
      const guard = WebhookSignature.ReplayGuard.of({
        claim: (key) => Effect.sync(() => (claims.push(key), true)),
        seen: () => Effect.succeed(false)
      })
      const vendor = yield* VendorDefinition.build(async, { secret: "s" }).pipe(
        Effect.provideService(WebhookSignature.ReplayGuard, guard),
        layer
      )
      const body = JSON.stringify({ ref: makeJobId(), data: 1 })
      const header = WebhookSignature.sign({ secret: "s", body, timestamp: Math.floor(Date.now() / 1000) })
      const delivery = yield* (
        vendor.parseWebhook?.({ headers: { [WebhookSignature.header]: header }, body }) ?? Effect.die("no parseWebhook")
      )
      assert.deepStrictEqual(claims, [], "nothing is claimed before the callback is applied")
      yield* delivery.claimReplay ?? Effect.void
      assert.deepStrictEqual(claims, [`slow:${header}`])
    })
  )
})

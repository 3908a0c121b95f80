/**
 * The hot path: which requests it takes, and that for every request it takes it answers exactly
 * what the full app answers (status, the headers that carry meaning, body), on one shared store.
 */
import { assert, layer } from "@effect/vitest"
import { type Access, JobQueue, JobStore, type Vendor } from "@vendorflow/core"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { HttpServer } from "effect/http"
import { request } from "node:http"
import type { AddressInfo } from "node:net"
import * as BatchedTransport from "../src/BatchedTransport.ts"
import * as Server from "../src/Server.ts"
import * as TestServer from "./support/TestServer.ts"

const notCalled = () => Effect.die(new Error("no consumer runs here"))
const alpha: Vendor.Vendor = { name: "alpha", mode: "sync", concurrency: 1, call: notCalled }

const coreWith = (access: Access.Options) => TestServer.layerCore([alpha], { access })

const Core = coreWith({ keys: new Map() })

const live = { excludeTestServices: true }
const maxBodyBytes = 4096

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | null>
  readonly body: string
}

// Headers that carry meaning; Date and Keep-Alive come from Node either way.
const compared = [
  "content-type",
  "content-length",
  "cache-control",
  "etag",
  "retry-after",
  "allow",
  "www-authenticate",
  "ratelimit-policy"
]

const fetchAnswer = (url: string, init?: RequestInit) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, init)
    const headers: Record<string, string | null> = {}
    for (const name of compared) headers[name] = response.headers.get(name)
    return { status: response.status, headers, body: await response.text() }
  })

const json = (body: string | Uint8Array, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body
})

// ---------------------------------------------------------------------------------------------
// Which requests the hot path takes
// ---------------------------------------------------------------------------------------------

/** A hot server whose full app answers 599, so a test can tell who answered. */
const routing = Effect.gen(function* () {
  const handler = yield* BatchedTransport.make({ maxBodyBytes })
  const server = new BatchedTransport.BatchingServer(handler)
  server.on("request", (_request, response) => {
    response.writeHead(599)
    response.end()
  })
  yield* Effect.acquireRelease(
    Effect.callback<void>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.void))
    }),
    () =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )
  const { port } = server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
})

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

layer(Core, live)("the hot path takes", (it) => {
  it.effect("the plain POST /jobs and GET /jobs/{id}, and leaves everything else to the full app", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = yield* routing
        const status = (path: string, init?: RequestInit) =>
          Effect.map(fetchAnswer(`${base}${path}`, init), (answer) => answer.status)
        const posted = yield* fetchAnswer(`${base}/jobs`, json('{"company":"Acme"}'))
        assert.strictEqual(posted.status, 200)
        const id = (JSON.parse(posted.body) as { readonly request_id: string }).request_id
        assert.strictEqual(yield* status(`/jobs/${id}`), 200)
        // Problems the hot path answers itself: the body is read, so it must.
        assert.strictEqual(yield* status("/jobs", json('{"company":')), 400)
        assert.strictEqual(yield* status("/jobs", json("[1]")), 422)
        assert.strictEqual(yield* status(`/jobs/${crypto.randomUUID()}`), 404)
        // Everything else goes to the full app.
        const full = [
          yield* status("/jobs?vendor=alpha", json("{}")),
          yield* status("/jobs", json("{}", { "idempotency-key": "k1" })),
          yield* status("/jobs", json("{}", { "content-type": "application/json; charset=utf-8" })),
          yield* status("/jobs", json("{}", { "content-type": "application/merge-patch+json" })),
          yield* status("/jobs", { method: "POST", headers: { "content-type": "text/plain" }, body: "hi" }),
          yield* status("/jobs", json("x".repeat(maxBodyBytes + 1))),
          yield* status("/jobs", { method: "POST", headers: { "content-type": "application/json" } }),
          yield* status("/jobs/not-a-uuid"),
          yield* status(`/jobs/${id}?x=1`),
          yield* status(`/jobs/${id}/retry`, json("{}")),
          yield* status("/jobs?status=failed"),
          yield* status("/health"),
          yield* status(`/jobs/${id}`, { method: "HEAD" }),
          // A trace to continue: the full app's request span does that.
          yield* status("/jobs", json("{}", { traceparent })),
          yield* status(`/jobs/${id}`, { headers: { traceparent } })
        ]
        assert.deepStrictEqual(
          full,
          full.map(() => 599)
        )
      })
    )
  )
})

layer(Core, live)("the hot path handles together", (it) => {
  it.effect("the jobs posted and read at once: each answered, stored and queued once, the unknown refused alone", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = yield* routing
        const bodies = Array.from({ length: 60 }, (_, i) => (i === 30 ? '{"vendor":"nope"}' : `{"n":${i}}`))
        // All at once, so that they arrive together.
        const answers = yield* Effect.forEach(bodies, (body) => fetchAnswer(`${base}/jobs`, json(body)), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(
          answers.map((answer) => answer.status),
          bodies.map((_, i) => (i === 30 ? 422 : 200))
        )
        assert.strictEqual(JSON.parse(answers[30]!.body).vendor, "nope")
        const ids = answers.flatMap((answer) =>
          answer.status === 200 ? [(JSON.parse(answer.body) as { readonly request_id: string }).request_id] : []
        )
        assert.strictEqual(new Set(ids).size, 59)
        const store = yield* JobStore.JobStore
        for (const [i, id] of ids.entries()) {
          const job = yield* store.get(id as Parameters<typeof store.get>[0])
          assert.deepStrictEqual(
            Option.map(job, (stored) => stored.payload),
            Option.some({ n: i < 30 ? i : i + 1 })
          )
        }
        // Read back all at once too, with an unknown id among them.
        const unknown = crypto.randomUUID()
        const reads = yield* Effect.forEach(
          [...ids.slice(0, 20), unknown, ...ids.slice(20)],
          (id) => fetchAnswer(`${base}/jobs/${id}`),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(reads[20]?.status, 404)
        assert.strictEqual(JSON.parse(reads[20]?.body ?? "{}").job_id, unknown)
        assert.deepStrictEqual(
          reads.filter((_, i) => i !== 20).map((answer) => [answer.status, JSON.parse(answer.body).request_id]),
          ids.map((id) => [200, id])
        )
        const queue = yield* JobQueue.JobQueue
        const queued = yield* queue.take("alpha", { max: 100, block: 0 })
        assert.sameMembers(
          queued.map((delivery) => delivery.jobId),
          ids
        )
      })
    )
  )
})

// ---------------------------------------------------------------------------------------------
// The same answers as the full app
// ---------------------------------------------------------------------------------------------

// Two servers on the test's one store: the full app alone, and the full app behind the hot path.
const Full = Server.layerWith({ port: 0, host: "127.0.0.1", logAddress: false, maxBodyBytes, hotPath: false })
const Hot = Server.layerWith({ port: 0, host: "127.0.0.1", logAddress: false, maxBodyBytes })
const urlOf = (server: typeof Full) =>
  Effect.map(Layer.build(server), (context) =>
    HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  )
const bases = Effect.all([urlOf(Full), urlOf(Hot)])

/** The answer with what differs by nature (a new id) put in its place. */
const normalize = (answer: Answer): Answer => ({
  ...answer,
  body: answer.body.replace(/"request_id":"[0-9a-f-]{36}"/, '"request_id":"<id>"')
})

layer(Core, live)("the hot path answers as the full app", (it) => {
  it.effect("for good and bad bodies, known and unknown jobs, and cache validators", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const [full, hot] = yield* bases
        const both = (path: string, init?: RequestInit) =>
          Effect.all([fetchAnswer(`${full}${path}`, init), fetchAnswer(`${hot}${path}`, init)])
        const same = Effect.fnUntraced(function* (what: string, path: string, init?: RequestInit) {
          const [fromFull, fromHot] = yield* both(path, init)
          assert.deepStrictEqual(normalize(fromHot), normalize(fromFull), what)
          return fromHot
        })
        yield* same("a good job", "/jobs", json('{"company":"  Acme  ","vendor":"alpha"}'))
        yield* same("malformed JSON", "/jobs", json('{"company":'))
        yield* same("a blank body", "/jobs", json("   "))
        yield* same("an array", "/jobs", json("[1,2]"))
        yield* same("null", "/jobs", json("null"))
        yield* same("a vendor that is not a string", "/jobs", json('{"vendor":5}'))
        yield* same("an unknown vendor", "/jobs", json('{"vendor":"nope"}'))
        yield* same("a byte order mark", "/jobs", json('\uFEFF{"company":"Acme"}'))
        yield* same("invalid UTF-8", "/jobs", json(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])))
        yield* same("deep JSON", "/jobs", json(`${"[".repeat(500)}${"]".repeat(500)}`))

        const posted = yield* fetchAnswer(`${hot}/jobs`, json('{"company":"Acme"}'))
        const id = (JSON.parse(posted.body) as { readonly request_id: string }).request_id
        yield* same("a pending job", `/jobs/${id}`)
        yield* same("an unknown job", `/jobs/${crypto.randomUUID()}`)

        // A finished job carries validators; the hot path revalidates as the full app does.
        const store = yield* JobStore.JobStore
        const current = yield* store.get(id as Parameters<typeof store.get>[0])
        assert.isTrue(Option.isSome(current))
        yield* store.transition({ id: current.pipe(Option.getOrThrow).id, from: "pending", to: "failed" })
        const failed = yield* same("a failed job", `/jobs/${id}`)
        assert.isNotNull(failed.headers["etag"])
        const etag = failed.headers["etag"] ?? ""
        const notModified = yield* same("a matching If-None-Match", `/jobs/${id}`, {
          headers: { "if-none-match": `"other", ${etag}` }
        })
        assert.strictEqual(notModified.status, 304)
        yield* same("a stale If-None-Match", `/jobs/${id}`, { headers: { "if-none-match": '"other"' } })
      })
    )
  )
})

const alice = { authorization: "Bearer alice-secret" }
const bob = { "x-api-key": "bob-secret" }
const Keyed = coreWith({
  keys: new Map([
    ["alice", Redacted.make("alice-secret")],
    ["bob", Redacted.make("bob-secret")]
  ]),
  rateLimit: { limit: 1000, window: Duration.minutes(10) }
})

layer(Keyed, live)("with API keys, the hot path answers as the full app", (it) => {
  it.effect("for missing and unknown keys, a key's own job and another key's", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const [full, hot] = yield* bases
        const same = Effect.fnUntraced(function* (what: string, path: string, init?: RequestInit) {
          const [fromFull, fromHot] = yield* Effect.all([
            fetchAnswer(`${full}${path}`, init),
            fetchAnswer(`${hot}${path}`, init)
          ])
          assert.deepStrictEqual(normalize(fromHot), normalize(fromFull), what)
          return fromHot
        })
        assert.strictEqual((yield* same("no key", "/jobs", json('{"company":"Acme"}'))).status, 401)
        yield* same("an unknown key", "/jobs", json('{"company":"Acme"}', { authorization: "Bearer nope" }))
        // The key is checked before the body is read, so a keyless bad body is a 401 either way.
        assert.strictEqual((yield* same("no key and a bad body", "/jobs", json('{"company":'))).status, 401)
        yield* same("a bad body with a key", "/jobs", json('{"company":', alice))
        const posted = yield* same("a good job", "/jobs", json('{"company":"Acme"}', alice))
        assert.isNotNull(posted.headers["ratelimit-policy"])
        const id = (JSON.parse(posted.body) as { readonly request_id: string }).request_id
        assert.strictEqual((yield* same("its owner reads it", `/jobs/${id}`, { headers: alice })).status, 200)
        assert.strictEqual((yield* same("another key reads it", `/jobs/${id}`, { headers: bob })).status, 404)
        assert.strictEqual((yield* same("no key reads it", `/jobs/${id}`)).status, 401)
      })
    )
  )

  it.effect("refuses a request without a key before its body has come in", () =>
    Effect.scoped(
      Effect.gen(function* () {
        for (const base of yield* bases) {
          // The body is announced in full but only a few bytes are sent: a server that read it before
          // checking the key would still be waiting for the rest.
          const status = yield* Effect.callback<number>((resume) => {
            const outgoing = request(`${base}/jobs`, {
              method: "POST",
              headers: { "content-type": "application/json", "content-length": String(maxBodyBytes) }
            })
            outgoing.on("response", (response) => {
              outgoing.destroy()
              resume(Effect.succeed(response.statusCode ?? 0))
            })
            outgoing.on("error", () => {})
            outgoing.write('{"company":')
            return Effect.sync(() => outgoing.destroy())
          }).pipe(Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.succeed(0) }))
          assert.strictEqual(status, 401, `${base} answered before the body came`)
        }
      })
    )
  )
})

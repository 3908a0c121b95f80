/**
 * The batched transport: which requests it takes (the rest go to the HttpApi app), that the
 * requests of one turn of the event loop are handled together and each answered as if alone, and
 * that both transports check the key before the body has come in. That its answers are the
 * HttpApi app's is the shared case table's (HttpCases.test.ts).
 */
import { assert, layer } from "@effect/vitest"
import { type Access, JobQueue, JobStore } from "@vendorflow/core"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { HttpServer } from "effect/http"
import { request } from "node:http"
import { type AddressInfo, connect, type Socket } from "node:net"
import * as BatchedTransport from "../src/BatchedTransport.ts"
import * as Server from "../src/Server.ts"
import * as TestServer from "./support/TestServer.ts"

const alpha = TestServer.syncVendor("alpha")

const coreWith = (access: Access.Options) => TestServer.layerCore([alpha], { access })

const Core = coreWith({ keys: new Map() })

const live = { excludeTestServices: true }
const maxBodyBytes = 4096

const fetchAnswer = (url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, body: await response.text() }
  })

const json = (body: string | Uint8Array, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body
})

// ---------------------------------------------------------------------------------------------
// Which requests the batched transport takes
// ---------------------------------------------------------------------------------------------

/** A batching server whose HttpApi app answers 599, so a test can tell who answered; and its port. */
const listening = Effect.gen(function* () {
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
  return { server, port: (server.address() as AddressInfo).port }
})

const routing = Effect.map(listening, ({ port }) => `http://127.0.0.1:${port}`)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

layer(Core, live)("the batched transport takes", (it) => {
  it.effect("the plain POST /jobs and GET /jobs/{id}, and leaves everything else to the HttpApi app", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = yield* routing
        const status = (path: string, init?: RequestInit) =>
          Effect.map(fetchAnswer(`${base}${path}`, init), (answer) => answer.status)
        const posted = yield* fetchAnswer(`${base}/jobs`, json('{"company":"Acme"}'))
        assert.strictEqual(posted.status, 200)
        const id = (JSON.parse(posted.body) as { readonly request_id: string }).request_id
        assert.strictEqual(yield* status(`/jobs/${id}`), 200)
        // Problems it answers itself: the body is read, so it must.
        assert.strictEqual(yield* status("/jobs", json('{"company":')), 400)
        assert.strictEqual(yield* status("/jobs", json("[1]")), 422)
        assert.strictEqual(yield* status(`/jobs/${crypto.randomUUID()}`), 404)
        // Everything else goes to the HttpApi app.
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
          // A trace to continue: the HttpApi app's request span does that.
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

layer(Core, live)("the batched transport handles together", (it) => {
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

// The sizes of the store's batched writes and reads: one call a batch.
const batchSizes = { created: [] as Array<number>, read: [] as Array<number> }
const countingStore = Layer.effect(
  JobStore.JobStore,
  Effect.map(JobStore.makeMemory, (store) =>
    JobStore.JobStore.of({
      ...store,
      createMany: (jobs) => {
        batchSizes.created.push(jobs.length)
        return store.createMany(jobs)
      },
      getMany: (ids) => {
        batchSizes.read.push(ids.length)
        return store.getMany(ids)
      }
    })
  )
)

/**
 * Sends requests to a batching server together: each on its own connection, all written in one
 * loop once the server has accepted every connection (it accepts about one a turn), so that it
 * reads them in as few turns of its event loop as it can.
 */
const together = Effect.gen(function* () {
  const { server, port } = yield* listening
  let accepted = 0
  let waiting: { readonly count: number; readonly resolve: () => void } | undefined
  server.on("connection", () => {
    accepted++
    if (waiting !== undefined && accepted >= waiting.count) waiting.resolve()
  })
  const acceptedAtLeast = (count: number) =>
    accepted >= count ? Promise.resolve() : new Promise<void>((resolve) => (waiting = { count, resolve }))
  return (requests: ReadonlyArray<string>) =>
    Effect.promise(async () => {
      const target = accepted + requests.length
      const sockets = await Promise.all(
        requests.map(
          () =>
            new Promise<Socket>((resolve, reject) => {
              const socket = connect(port, "127.0.0.1", () => resolve(socket))
              socket.on("error", reject)
            })
        )
      )
      await acceptedAtLeast(target)
      const answers = sockets.map(
        (socket) =>
          new Promise<string>((resolve) => {
            const chunks: Array<Buffer> = []
            socket.on("data", (chunk: Buffer) => chunks.push(chunk))
            socket.on("close", () => resolve(Buffer.concat(chunks).toString()))
          })
      )
      sockets.forEach((socket, i) => socket.write(requests[i]!))
      return Promise.all(answers)
    })
})

// Each connection carries one answer: its status and its JSON body.
const parseAnswer = (raw: string) => {
  assert.strictEqual(raw.split("HTTP/1.1 ").length, 2, `one answer on the connection: ${raw}`)
  return { status: Number(raw.slice(9, 12)), body: JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) }
}
const rawPost = (body: string) =>
  `POST /jobs HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
const rawGet = (id: string) => `GET /jobs/${id} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`

const maxBatch = 256

layer(TestServer.layerCore([alpha], { store: countingStore }), live)(
  "more requests at once than a batch holds",
  (it) => {
    it.effect("go in batches of at most 256, each request answered once with its own outcome", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const sendTogether = yield* together
          const count = 300
          const bodies = Array.from({ length: count }, (_, i) => (i === 50 ? '{"vendor":"nope"}' : `{"n":${i}}`))
          const posted = (yield* sendTogether(bodies.map(rawPost))).map(parseAnswer)
          assert.deepStrictEqual(
            posted.map((answer) => answer.status),
            bodies.map((_, i) => (i === 50 ? 422 : 200))
          )
          assert.strictEqual(posted[50]!.body.vendor, "nope")
          // Read in one turn, 300 make at least two batches; over more turns, more. The unknown
          // vendor is refused before the store.
          assert.isAtMost(Math.max(...batchSizes.created), maxBatch)
          assert.strictEqual(
            batchSizes.created.reduce((sum, size) => sum + size, 0),
            count - 1
          )
          const store = yield* JobStore.JobStore
          const ids = posted.flatMap((answer, i) => (i === 50 ? [] : [answer.body.request_id as string]))
          assert.strictEqual(new Set(ids).size, count - 1)
          for (const [i, answer] of posted.entries()) {
            if (i === 50) continue
            const job = yield* store.get(answer.body.request_id)
            assert.deepStrictEqual(
              Option.map(job, (stored) => stored.payload),
              Option.some({ n: i })
            )
          }
          // Read back together too, with an unknown id among them.
          const unknown = crypto.randomUUID()
          const reads = (yield* sendTogether([...ids.slice(0, 50), unknown, ...ids.slice(50)].map(rawGet))).map(
            parseAnswer
          )
          assert.isAtMost(Math.max(...batchSizes.read), maxBatch)
          assert.strictEqual(
            batchSizes.read.reduce((sum, size) => sum + size, 0),
            count
          )
          assert.strictEqual(reads[50]!.status, 404)
          assert.strictEqual(reads[50]!.body.job_id, unknown)
          assert.deepStrictEqual(
            reads.filter((_, i) => i !== 50).map((answer) => [answer.status, answer.body.request_id]),
            ids.map((id) => [200, id])
          )
          const queued = yield* (yield* JobQueue.JobQueue).take("alpha", { max: 1000, block: 0 })
          assert.sameMembers(
            queued.map((delivery) => delivery.jobId),
            ids
          )
        })
      )
    )
  }
)

// Two servers on the test's one core: the HttpApi app alone, and behind the batched transport.
const serverWith = (hotPath: boolean) =>
  Server.layerWith({ port: 0, host: "127.0.0.1", logAddress: false, maxBodyBytes, hotPath })
const urlOf = (server: ReturnType<typeof serverWith>) =>
  Effect.map(Layer.build(server), (context) =>
    HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  )
const bases = Effect.all([urlOf(serverWith(false)), urlOf(serverWith(true))])

const Keyed = coreWith({
  keys: new Map([["alice", Redacted.make("alice-secret")]]),
  rateLimit: { limit: 1000, window: Duration.minutes(10) }
})

layer(Keyed, live)("with API keys, both transports", (it) => {
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

/**
 * Embedding vendorflow in a plain Node app: no server, no Redis, no MongoDB.
 *
 * The app composes core's in-memory layers with the mock-sync vendor's adapter, starts the consumer
 * in-process, submits a few jobs and waits for their cleaned results. The mock vendor itself is
 * started here too (on a free port) so the example runs anywhere.
 */
import { MockSyncServer, MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import {
  Cleaner,
  Consumer,
  JobProcessor,
  JobQueue,
  Jobs,
  JobStore,
  RateLimiter,
  VendorCircuit,
  VendorRegistry
} from "@vendorflow/core"
import { Effect, Layer } from "effect"

// The vendor: a real local HTTP server, fast and always returning user_info so cleaning shows.
const Vendor = MockSyncServer.layer({ latencyMs: { min: 5, max: 20 }, userInfoProbability: 1 })

// Its adapter, registered under "sync", limited to 20 calls a second.
const Vendors = Layer.unwrap(
  Effect.gen(function* () {
    const server = yield* MockSyncServer.MockSyncServer
    const sync = MockSyncVendor.make({ baseUrl: server.url, rateLimit: { limit: 20, window: "1 second" } })
    return VendorRegistry.layer([sync])
  })
).pipe(Layer.provide(Vendor))

const Backends = Layer.mergeAll(
  JobStore.layerMemory,
  JobQueue.layerMemory,
  RateLimiter.layerMemory,
  VendorCircuit.layerMemory(),
  Cleaner.layer,
  Vendors
)

// No webhooks in this app: the sync vendor answers in its HTTP response.
const Engine = Consumer.layer().pipe(Layer.provide(JobProcessor.layer({ webhookBaseUrl: "http://127.0.0.1" })))

const App = Layer.mergeAll(Jobs.layer, Engine).pipe(Layer.provideMerge(Backends))

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  const submitted = yield* Effect.forEach(["acme", "globex", "initech"], (company) =>
    jobs.submit({ payload: { company, note: "  look me up  " } })
  )
  const finished = yield* Effect.forEach(submitted, (job) => jobs.awaitFinished(job.id), { concurrency: "unbounded" })
  for (const job of finished) {
    yield* Effect.log(`${job.id} ${job.status}`, job.result)
    if (job.status !== "complete") return yield* Effect.fail(`job ${job.id} ended ${job.status}`)
    const text = JSON.stringify(job.result)
    if (text.includes("@example.com")) return yield* Effect.fail(`job ${job.id} kept an e-mail address`)
  }
  yield* Effect.log(`all ${finished.length} jobs complete, results cleaned`)
})

Effect.runPromise(program.pipe(Effect.provide(App), Effect.scoped)).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)

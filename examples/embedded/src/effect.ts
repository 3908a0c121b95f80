/**
 * Embedding vendorflow in an Effect app: the whole engine is one layer, `Vendorflow.layer`.
 *
 * The app runs the mock-sync vendor's adapter (the vendor itself is started here too, on a free
 * port, so the example runs anywhere), submits a few jobs and waits for their cleaned results.
 */
import { MockSyncServer, MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { JobService, Vendorflow } from "@vendorflow/core"
import { Effect, Layer } from "effect"

// The vendor: a real local HTTP server, fast and always returning user_info so cleaning shows.
const Vendor = MockSyncServer.layer({ latencyMs: { min: 5, max: 20 }, userInfoProbability: 1 })

// The engine on the memory backend, with the vendor's adapter limited to 20 calls a second.
const Engine = Layer.unwrap(
  MockSyncServer.MockSyncServer.useSync((server) =>
    Vendorflow.layer({
      vendors: [MockSyncVendor.make({ baseUrl: server.url, rateLimit: { limit: 20, window: "1 second" } })]
    })
  )
).pipe(Layer.provide(Vendor))

const program = Effect.gen(function* () {
  const jobs = yield* JobService.JobService
  const submitted = yield* Effect.forEach(["acme", "globex", "initech"], (company) =>
    jobs.submit({ payload: { company, note: "  look me up  " } })
  )
  const finished = yield* Effect.forEach(submitted, (job) => jobs.awaitFinished(job.id), { concurrency: "unbounded" })
  for (const job of finished) {
    yield* Effect.log(`${job.id} ${job.status}`, job.result)
    if (job.status !== "complete") return yield* Effect.fail(`job ${job.id} ended ${job.status}`)
    if (JSON.stringify(job.result).includes("@example.com")) {
      return yield* Effect.fail(`job ${job.id} kept an e-mail address`)
    }
  }
  yield* Effect.log(`all ${finished.length} jobs complete, results cleaned`)
})

Effect.runPromise(program.pipe(Effect.provide(Engine))).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)

import { assert, describe, it } from "@effect/vitest"
import { Job, JobStore } from "@vendorflow/core"
import { JobStoreSuite } from "@vendorflow/core/testing"
import { Context, type Duration, Effect, Layer, Option, Redacted } from "effect"
import { MongoClient } from "mongodb"
import * as MongoJobStore from "../src/MongoJobStore.ts"
import * as MongoServer from "./mongoServer.ts"

const server = await Effect.runPromise(MongoServer.setup)
if (server._tag === "Absent") {
  // Printed as well as put in the test names, so the default reporter shows why nothing ran.
  console.warn(`@vendorflow/mongo: MongoDB integration tests skipped: ${server.reason}`)
}
const describeMongo = server._tag === "Available" ? describe : describe.skip
const title =
  server._tag === "Available" ? `MongoDB via ${server.source}` : `MongoDB integration (skipped: ${server.reason})`

const uri = () => Redacted.make(server._tag === "Available" ? server.uri() : "mongodb://unused")

const randomDatabase = () => `vendorflow_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`

// Drops the database when the scope closes; acquired before the stores, so it runs after they close.
const dropOnClose = (database: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => new MongoClient(Redacted.value(uri()), { serverSelectionTimeoutMS: 10_000 }).connect(),
      catch: (cause) => new Error(`connecting to drop ${database} afterwards failed`, { cause })
    }),
    (client) =>
      Effect.tryPromise(() => client.db(database).dropDatabase()).pipe(
        Effect.ensuring(Effect.tryPromise(() => client.close()).pipe(Effect.ignore)),
        Effect.catch((error) => Effect.logWarning(`could not drop ${database}`, error))
      )
  )

const storeLayer = (options: Partial<MongoJobStore.Options> & { readonly database: string }) =>
  MongoJobStore.layer({ uri: uri(), collection: "jobs", serverSelectionTimeout: "10 seconds", ...options })

// The store on a fresh database of its own, dropped when the layer closes.
const layerTest = (options: Partial<MongoJobStore.Options> = {}) =>
  Layer.unwrap(
    Effect.sync(() => {
      const database = randomDatabase()
      return Layer.effectDiscard(
        MongoJobStore.MongoJobStore.use((store) =>
          Effect.addFinalizer(() => Effect.tryPromise(() => store.db.dropDatabase()).pipe(Effect.ignore))
        )
      ).pipe(Layer.provideMerge(storeLayer({ ...options, database })))
    })
  )

const indexesOf = (store: Context.Service.Shape<typeof MongoJobStore.MongoJobStore>) =>
  Effect.tryPromise(() => store.collection.listIndexes().toArray()).pipe(
    Effect.map((indexes) => new Map(indexes.map((index) => [String(index["name"]), index])))
  )

const pendingAt = (now: Date, payload: Job.JsonObject = { query: "acme" }) =>
  Job.makePending({ vendor: "sync", payload, now })

describeMongo(title, () => {
  JobStoreSuite.suite("mongodb", layerTest())

  it.layer(layerTest(), { timeout: 30_000, excludeTestServices: true })("MongoJobStore on MongoDB", (withStore) => {
    // Named apart from the module-level `it`; every test here shares one store on a fresh database.
    withStore.effect("answers ping", () => MongoJobStore.MongoJobStore.use((store) => store.ping))

    withStore.effect("makes its indexes at start-up, and no TTL index unless configured", () =>
      Effect.gen(function* () {
        const indexes = yield* indexesOf(yield* MongoJobStore.MongoJobStore)
        assert.deepStrictEqual(indexes.get("status_1_updated_at_1")?.["key"], { status: 1, updated_at: 1 })
        assert.deepStrictEqual(indexes.get("vendor_1_status_1")?.["key"], { vendor: 1, status: 1 })
        assert.isFalse(indexes.has(MongoJobStore.finishedTtlIndexName))
      })
    )

    withStore.effect("stores dates as BSON dates and the payload as JSON text; finished_at only while finished", () =>
      Effect.gen(function* () {
        const store = yield* MongoJobStore.MongoJobStore
        const job = pendingAt(new Date(), { $where: "1", "a.b": { $gt: "" } })
        yield* store.create(job)
        const raw = () => Effect.tryPromise(() => store.collection.findOne({ _id: job.id }))
        const created = yield* raw()
        assert.instanceOf(created?.created_at, Date)
        assert.strictEqual(created?.created_at.toISOString(), job.createdAt)
        assert.strictEqual(created?.payload_json, JSON.stringify(job.payload))
        assert.isFalse(created !== null && "finished_at" in created)

        yield* store.transition({
          id: job.id,
          from: "pending",
          to: "failed",
          set: { error: { reason: "r", message: "m" } }
        })
        const failed = yield* raw()
        assert.instanceOf(failed?.finished_at, Date)
        assert.deepStrictEqual(failed?.error, { reason: "r", message: "m" })

        const again = yield* store.transition({ id: job.id, from: "failed", to: "pending", unset: ["error"] })
        const reopened = yield* raw()
        assert.isFalse(reopened !== null && "finished_at" in reopened)
        assert.isFalse(reopened !== null && "error" in reopened)
        assert.strictEqual(Option.getOrThrow(again).version, 2)
      })
    )

    withStore.effect("a document of the wrong shape, written by another process, is a typed error", () =>
      Effect.gen(function* () {
        const store = yield* MongoJobStore.MongoJobStore
        const id = Job.makeJobId()
        // Untyped on purpose: this is what a buggy writer elsewhere could leave behind.
        const untyped = store.db.collection<{ readonly _id: string; readonly [field: string]: unknown }>(
          store.collection.collectionName
        )
        yield* Effect.tryPromise(() =>
          untyped.insertOne({
            _id: id,
            vendor: 42,
            status: "pending",
            payload: { query: "acme" },
            attempts: 0,
            version: 0,
            created_at: "yesterday",
            updated_at: new Date()
          })
        )
        const onGet = yield* Effect.flip(store.get(id))
        assert.strictEqual(onGet._tag, "JobStoreError")
        assert.strictEqual(onGet.reason, "Unavailable")
        assert.include(onGet.message, id)
        const onTransition = yield* Effect.flip(store.transition({ id, from: "pending", to: "processing" }))
        assert.strictEqual(onTransition.reason, "Unavailable")
      })
    )

    withStore.effect("listOverdue is served by the overdue index, never by a collection scan", () =>
      Effect.gen(function* () {
        const store = yield* MongoJobStore.MongoJobStore
        const indexes = yield* indexesOf(store)
        assert.deepStrictEqual(indexes.get(MongoJobStore.overdueIndex.name)?.["key"], { overdue_at: 1 })
        // Enough finished and unfinished jobs that a collection scan would be a plan worth trying.
        const jobs = Array.from({ length: 200 }, (_, i) => pendingAt(new Date(Date.now() - i * 60_000)))
        yield* store.createMany(jobs)
        yield* Effect.forEach(jobs.slice(0, 100), (job) =>
          store.transition({ id: job.id, from: "pending", to: "failed" })
        )
        const { filter, sort } = MongoJobStore.overdueQuery({ before: new Date(), limit: 50 })
        const plan = yield* Effect.tryPromise(() =>
          store.collection.find(filter).sort(sort).limit(50).explain("queryPlanner")
        )
        const winning = JSON.stringify(plan["queryPlanner"]?.["winningPlan"] ?? plan)
        assert.include(winning, "IXSCAN", winning)
        assert.include(winning, MongoJobStore.overdueIndex.name, winning)
        assert.notInclude(winning, "COLLSCAN", winning)
        assert.notInclude(winning, '"SORT"', `an in-memory sort: ${winning}`)
      })
    )
  })

  describe("start-up and several processes", () => {
    it.live("makes the TTL index when configured, changes it when the TTL changes, drops it when unset", () =>
      Effect.gen(function* () {
        const database = randomDatabase()
        yield* dropOnClose(database)
        const ttlIndex = (finishedTtl: Duration.Input | undefined) =>
          Effect.scoped(
            Effect.gen(function* () {
              const context = yield* Layer.build(storeLayer({ database, finishedTtl }))
              const indexes = yield* indexesOf(Context.get(context, MongoJobStore.MongoJobStore))
              return indexes.get(MongoJobStore.finishedTtlIndexName)
            })
          )
        const hour = yield* ttlIndex("1 hour")
        assert.deepStrictEqual(hour?.["key"], { finished_at: 1 })
        assert.strictEqual(hour?.["expireAfterSeconds"], 3600)
        assert.strictEqual((yield* ttlIndex("2 hours"))?.["expireAfterSeconds"], 7200)
        assert.strictEqual((yield* ttlIndex("2 hours"))?.["expireAfterSeconds"], 7200)
        assert.isUndefined(yield* ttlIndex(undefined))
      })
    )

    it.live("of identical transitions from two processes exactly one wins", () =>
      Effect.gen(function* () {
        const database = randomDatabase()
        yield* dropOnClose(database)
        const first = Context.get(yield* Layer.build(storeLayer({ database })), JobStore.JobStore)
        const second = Context.get(yield* Layer.build(storeLayer({ database })), JobStore.JobStore)
        const job = pendingAt(new Date())
        yield* first.create(job)
        const outcomes = yield* Effect.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? first : second).transition({
              id: job.id,
              from: "pending",
              to: "processing",
              expectedVersion: 0,
              set: { attempts: 1 }
            })
          ),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(outcomes.filter(Option.isSome).length, 1)
        assert.deepStrictEqual(yield* second.get(job.id), outcomes.find(Option.isSome))
      })
    )
  })
})

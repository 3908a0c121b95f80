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
  MongoJobStore.layer({ uri: uri(), collection: "jobs", timeout: "10 seconds", ...options })

/** The URI with more query parameters, as an operator might write them. */
const uriWith = (parameters: string) => {
  const base = Redacted.value(uri())
  return Redacted.make(`${base}${base.includes("?") ? "&" : "?"}${parameters}`)
}

/** Every stage of a plan (an explain's `winningPlan`, in either of the server's formats), with its index. */
const stagesOf = (plan: unknown): ReadonlyArray<{ readonly stage: string; readonly indexName?: unknown }> => {
  if (Array.isArray(plan)) return plan.flatMap(stagesOf)
  if (plan === null || typeof plan !== "object") return []
  const node = plan as Record<string, unknown>
  const own = typeof node["stage"] === "string" ? [{ stage: node["stage"], indexName: node["indexName"] }] : []
  return [...own, ...Object.values(node).flatMap(stagesOf)]
}

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
        for (const index of MongoJobStore.indexes) assert.deepStrictEqual(indexes.get(index.name)?.["key"], index.key)
        assert.isFalse(indexes.has(MongoJobStore.finishedTtlIndexName))
      })
    )

    // Any API key can list: no listing, and no sweep, may scan the collection or sort in memory.
    withStore.effect("explain: every list and sweeper query walks its index, with no collection scan or sort", () =>
      Effect.gen(function* () {
        const store = yield* MongoJobStore.MongoJobStore
        const now = new Date()
        yield* store.createMany(
          Array.from({ length: 50 }, (_, i) =>
            Job.makePending({ vendor: `v${i % 3}`, owner: i % 2 === 0 ? "alice" : undefined, payload: {}, now })
          )
        )
        const after = { updatedAt: now.toISOString(), id: Job.makeJobId() }
        const queries: Array<readonly [string, MongoJobStore.FindQuery]> = []
        for (const status of Job.JobStatus.literals) {
          for (const filters of [{}, { vendor: "v1" }, { owner: "alice" }, { owner: "alice", vendor: "v1" }]) {
            for (const cursor of [undefined, after]) {
              const query = { status, ...filters, limit: 50, after: cursor }
              queries.push([
                `list ${JSON.stringify({ ...query, after: cursor && "cursor" })}`,
                MongoJobStore.listQuery(query)
              ])
            }
          }
        }
        queries.push(["listOverdue", MongoJobStore.overdueQuery({ before: now, limit: 500 })])
        for (const [name, query] of queries) {
          const explained = yield* Effect.tryPromise(() =>
            store.collection.find(query.filter, query.options).explain("queryPlanner")
          )
          const stages = stagesOf(explained["queryPlanner"]?.["winningPlan"])
          const names = stages.map((stage) => stage.stage)
          assert.notInclude(names, "COLLSCAN", name)
          assert.notInclude(names, "SORT", name)
          assert.isTrue(
            stages.some((stage) => stage.stage === "IXSCAN" && stage.indexName === query.options.hint),
            `${name} walks ${query.options.hint}: ${names.join(" < ")}`
          )
        }
      })
    )

    // The update fits in a command; the document it would make (payload and result) does not.
    withStore.effect("a result that would make the document too large is Rejected, and the job stays as it was", () =>
      Effect.gen(function* () {
        const store = yield* MongoJobStore.MongoJobStore
        const job = pendingAt(new Date(), { blob: "x".repeat(1_000_000) })
        yield* store.create(job)
        const started = Option.getOrThrow(yield* store.transition({ id: job.id, from: "pending", to: "processing" }))
        const error = yield* Effect.flip(
          store.transition({
            id: job.id,
            from: "processing",
            to: "complete",
            expectedVersion: started.version,
            set: { result: "y".repeat(16_000_000) }
          })
        )
        assert.strictEqual(error.reason, "Rejected")
        assert.deepStrictEqual(yield* store.get(job.id), Option.some(started))
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
        assert.strictEqual(onGet.reason, "Rejected")
        assert.include(onGet.message, id)
        const onTransition = yield* Effect.flip(store.transition({ id, from: "pending", to: "processing" }))
        assert.strictEqual(onTransition.reason, "Rejected")
      })
    )
  })

  describe("start-up and several processes", () => {
    it.live("makes the TTL index when configured, changes it when the TTL changes, leaves it alone when unset", () =>
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
        // A process without the setting may start beside those with it: it must not stop their deletions.
        assert.strictEqual((yield* ttlIndex(undefined))?.["expireAfterSeconds"], 7200)
      })
    )

    it.live("processes starting together, changing the TTL, all start and leave one TTL index", () =>
      Effect.gen(function* () {
        const database = randomDatabase()
        yield* dropOnClose(database)
        yield* Effect.scoped(Layer.build(storeLayer({ database, finishedTtl: "1 hour" })))
        const started = yield* Effect.all(
          Array.from({ length: 6 }, (_, i) =>
            Effect.scoped(
              Layer.build(storeLayer({ database, finishedTtl: i % 3 === 0 ? undefined : "3 hours" })).pipe(
                Effect.map((context) => Context.get(context, MongoJobStore.MongoJobStore))
              )
            )
          ),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(started.length, 6)
        const indexes = yield* Effect.scoped(
          Layer.build(storeLayer({ database })).pipe(
            Effect.flatMap((context) => indexesOf(Context.get(context, MongoJobStore.MongoJobStore)))
          )
        )
        assert.strictEqual(indexes.get(MongoJobStore.finishedTtlIndexName)?.["expireAfterSeconds"], 3 * 3600)
      })
    )

    it.live("a validator's refusal is Rejected (the engine fails such a job rather than retry it)", () =>
      Effect.gen(function* () {
        const database = randomDatabase()
        yield* dropOnClose(database)
        const store = Context.get(yield* Layer.build(storeLayer({ database })), MongoJobStore.MongoJobStore)
        yield* Effect.tryPromise(() => store.db.command({ collMod: "jobs", validator: { vendor: { $in: ["sync"] } } }))
        const refused = yield* Effect.flip(
          store.create(Job.makePending({ vendor: "other", payload: {}, now: new Date() }))
        )
        assert.strictEqual(refused.reason, "Rejected")
        assert.match(refused.message, /validation/i)
        yield* store.create(pendingAt(new Date()))
      })
    )

    it.live("with a URI asking for secondary reads and w=1, the compare-and-set still reads the primary", () =>
      Effect.gen(function* () {
        const database = randomDatabase()
        yield* dropOnClose(database)
        const loose = { database, uri: uriWith("readPreference=secondaryPreferred&w=1") }
        const first = Context.get(yield* Layer.build(storeLayer(loose)), JobStore.JobStore)
        const second = Context.get(yield* Layer.build(storeLayer(loose)), JobStore.JobStore)
        for (let round = 0; round < 20; round++) {
          const job = pendingAt(new Date())
          yield* first.create(job)
          const [claimed] = yield* first.getMany([job.id])
          const won = yield* second.transition({
            id: job.id,
            from: "pending",
            to: "processing",
            expectedVersion: Option.getOrThrow(claimed!).version
          })
          // What one process wrote, the other reads at once: the next step's version.
          const [seen] = yield* first.getMany([job.id])
          assert.strictEqual(Option.getOrThrow(seen!).version, Option.getOrThrow(won).version)
        }
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

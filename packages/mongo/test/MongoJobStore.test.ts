import { assert, describe, it } from "@effect/vitest"
import { Job, JobStore } from "@vendorflow/core"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import {
  BSON,
  MongoClient,
  MongoInvalidArgumentError,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoNotConnectedError,
  MongoServerError,
  type UpdateFilter
} from "mongodb"
import * as MongoJobStore from "../src/MongoJobStore.ts"

const at = new Date("2026-01-02T03:04:05.678Z")
const later = new Date("2026-01-02T03:05:00.000Z")

const tricky: Job.JsonObject = { $where: "1", "a.b": { $gt: "", "c.d": [1, { $ne: null }] }, plain: "x", "": 0 }

const pending = (payload: Job.JsonObject = { query: "acme" }) => Job.makePending({ vendor: "sync", payload, now: at })

// Field names MongoDB restricts: any key, at any depth of the document, starting with `$` or holding a dot.
const restrictedKeys = (value: unknown, path = ""): ReadonlyArray<string> => {
  if (value instanceof Date || value === null || typeof value !== "object") return []
  return Object.entries(value).flatMap(([key, inner]) => [
    ...(key.startsWith("$") || key.includes(".") ? [`${path}${key}`] : []),
    ...restrictedKeys(inner, `${path}${key}/`)
  ])
}

// What the server does with the update operators we send, enough to check their meaning here.
const applyUpdate = (document: MongoJobStore.JobDocument, update: UpdateFilter<MongoJobStore.JobDocument>) => {
  const next: Record<string, unknown> = { ...document, ...update.$set }
  for (const key of Object.keys(update.$unset ?? {})) delete next[key]
  for (const [key, by] of Object.entries(update.$inc ?? {})) next[key] = (next[key] as number) + (by as number)
  return next
}

describe("MongoJobStore documents", () => {
  it.effect("a job encodes to a document and decodes back unchanged", () =>
    Effect.gen(function* () {
      const job = pending()
      const document = yield* MongoJobStore.toDocument(job)
      assert.strictEqual(document._id, job.id)
      assert.strictEqual(document.payload_json, JSON.stringify(job.payload))
      assert.deepStrictEqual(document.created_at, at)
      assert.deepStrictEqual(document.updated_at, at)
      assert.isFalse("finished_at" in document)
      assert.isFalse("result_json" in document)
      assert.deepStrictEqual(yield* MongoJobStore.fromDocument(document), job)
    })
  )

  it.effect("keeps payload and result keys that start with $ or contain a dot, and stores none as a field name", () =>
    Effect.gen(function* () {
      const job = new Job.Job({ ...pending(tricky), status: "complete", result: { $set: { "x.y": 1 } } })
      const document = yield* MongoJobStore.toDocument(job)
      assert.deepStrictEqual(restrictedKeys(document), [])
      assert.deepStrictEqual(JSON.parse(document.payload_json), tricky)
      const back = yield* MongoJobStore.fromDocument(document)
      assert.deepStrictEqual(back.payload, tricky)
      assert.deepStrictEqual(back.result, { $set: { "x.y": 1 } })
      assert.deepStrictEqual(back, job)
    })
  )

  it.effect("a finished job carries finished_at; a null result is kept as null", () =>
    Effect.gen(function* () {
      const job = new Job.Job({
        ...pending(),
        status: "failed",
        result: null,
        error: { reason: "Rejected", message: "no" }
      })
      const document = yield* MongoJobStore.toDocument(job)
      assert.deepStrictEqual(document.finished_at, at)
      assert.strictEqual(document.result_json, "null")
      const back = yield* MongoJobStore.fromDocument(document)
      assert.isTrue("result" in back)
      assert.strictEqual(back.result, null)
      assert.deepStrictEqual(back, job)
    })
  )

  it.effect("refuses a job whose timestamps are not dates", () =>
    Effect.gen(function* () {
      const job = new Job.Job({ ...pending(), createdAt: "yesterday" })
      const error = yield* Effect.flip(MongoJobStore.toDocument(job))
      assert.strictEqual(error._tag, "SchemaError")
    })
  )

  it.effect.each([
    ["a missing field", (doc: Record<string, unknown>) => ({ ...doc, vendor: undefined })],
    ["an unknown status", (doc: Record<string, unknown>) => ({ ...doc, status: "queued" })],
    ["payload_json that is not JSON", (doc: Record<string, unknown>) => ({ ...doc, payload_json: "{oops" })],
    ["payload_json that is not an object", (doc: Record<string, unknown>) => ({ ...doc, payload_json: "[1]" })],
    ["a payload stored as a sub-document", (doc: Record<string, unknown>) => ({ ...doc, payload_json: { a: 1 } })],
    ["created_at as a string", (doc: Record<string, unknown>) => ({ ...doc, created_at: at.toISOString() })],
    ["an invalid date", (doc: Record<string, unknown>) => ({ ...doc, updated_at: new Date(Number.NaN) })],
    ["an id that is not a UUID", (doc: Record<string, unknown>) => ({ ...doc, _id: "job-1" })],
    ["a fractional version", (doc: Record<string, unknown>) => ({ ...doc, version: 1.5 })]
  ] as const)("a document with %s is a SchemaError", ([_, corrupt]) =>
    Effect.gen(function* () {
      const document = yield* MongoJobStore.toDocument(pending())
      const error = yield* Effect.flip(MongoJobStore.fromDocument(corrupt({ ...document })))
      assert.strictEqual(error._tag, "SchemaError")
    })
  )
})

describe("MongoJobStore transitions", () => {
  it("the filter is the compare-and-set: id and status, and version when given", () => {
    const id = Job.makeJobId()
    assert.deepStrictEqual(MongoJobStore.transitionFilter({ id, from: "pending", to: "processing" }), {
      _id: id,
      status: "pending"
    })
    assert.deepStrictEqual(
      MongoJobStore.transitionFilter({ id, from: "pending", to: "processing", expectedVersion: 0 }),
      { _id: id, status: "pending", version: 0 }
    )
  })

  it("the update sets status, fields and updated_at, bumps the version, and clears finished_at", () => {
    const update = MongoJobStore.transitionUpdate(
      { id: Job.makeJobId(), from: "pending", to: "processing", set: { attempts: 1 } },
      later
    )
    assert.deepStrictEqual(update, {
      $set: { status: "processing", updated_at: later, attempts: 1 },
      $unset: { finished_at: "" },
      $inc: { version: 1 }
    })
  })

  it("a result with $ and dotted keys goes in as JSON text; finishing sets finished_at and drops overdue_at", () => {
    const update = MongoJobStore.transitionUpdate(
      { id: Job.makeJobId(), from: "processing", to: "complete", set: { result: tricky } },
      later
    )
    assert.deepStrictEqual(update, {
      $set: { status: "complete", updated_at: later, result_json: JSON.stringify(tricky), finished_at: later },
      $unset: { overdue_at: "" },
      $inc: { version: 1 }
    })
    assert.deepStrictEqual(restrictedKeys(update.$set), [])
  })

  it("a field both set and unset is unset, and unset fields map to their document names", () => {
    const update = MongoJobStore.transitionUpdate(
      {
        id: Job.makeJobId(),
        from: "failed",
        to: "pending",
        set: { error: { reason: "x", message: "y" }, awaitingCallback: true, result: 1 },
        unset: ["result", "error", "awaitingCallback"]
      },
      later
    )
    assert.deepStrictEqual(update, {
      $set: { status: "pending", updated_at: later },
      $unset: { result_json: "", error: "", awaiting_callback: "", finished_at: "" },
      $inc: { version: 1 }
    })
  })

  // The memory store's applyTransition is the reference: the update, applied as the server would,
  // must give the same job.
  const cases: ReadonlyArray<readonly [string, Job.Job, Omit<JobStore.Transition, "id">]> = [
    ["start", pending(tricky), { from: "pending", to: "processing", set: { attempts: 1 } }],
    [
      "lease a claimed job",
      pending(),
      { from: "pending", to: "processing", set: { attempts: 1, overdueAt: "2030-01-01T00:00:00.000Z" } }
    ],
    [
      "await a callback",
      new Job.Job({ ...pending(), status: "processing", attempts: 1, version: 1 }),
      { from: "processing", to: "processing", set: { awaitingCallback: true } }
    ],
    [
      "complete with a result, dropping the callback flag",
      new Job.Job({ ...pending(), status: "processing", awaitingCallback: true, version: 2 }),
      {
        from: "processing",
        to: "complete",
        set: { result: { "$x.y": [null, { "a.b": true }] } },
        unset: ["awaitingCallback"]
      }
    ],
    [
      "fail with an error",
      new Job.Job({ ...pending(), status: "processing", version: 1 }),
      { from: "processing", to: "failed", set: { error: { reason: "Rejected", message: "bad input" }, result: null } }
    ],
    [
      "send a failed job round again",
      new Job.Job({ ...pending(), status: "failed", version: 3, result: "old", error: { reason: "r", message: "m" } }),
      { from: "failed", to: "pending", set: { attempts: 0 }, unset: ["error", "result"] }
    ]
  ]
  it.effect.each(cases)("agrees with the memory store: %s", ([_, job, change]) =>
    Effect.gen(function* () {
      const transition: JobStore.Transition = { id: job.id, ...change }
      const document = yield* MongoJobStore.toDocument(job)
      const updated = applyUpdate(document, MongoJobStore.transitionUpdate(transition, later))
      const expected = JobStore.applyTransition(job, transition, later)
      assert.isDefined(expected)
      assert.deepStrictEqual(yield* MongoJobStore.fromDocument(updated), expected)
      assert.deepStrictEqual(updated.finished_at, Job.isFinished(transition.to) ? later : undefined)
    })
  )
})

describe("MongoJobStore queries", () => {
  const owner = "alice"
  const shapes: ReadonlyArray<readonly [string, Pick<JobStore.ListQuery, "vendor" | "owner">, string]> = [
    ["status", {}, "status_1_updated_at_-1__id_-1"],
    ["status and vendor", { vendor: "sync" }, "status_1_vendor_1_updated_at_-1__id_-1"],
    ["owner and status", { owner }, "owner_1_status_1_updated_at_-1__id_-1"],
    ["owner, status and vendor", { owner, vendor: "sync" }, "owner_1_status_1_vendor_1_updated_at_-1__id_-1"]
  ]

  it.each(shapes)("a list by %s names an index whose keys are its filters, then the sort", (_, filters, name) => {
    const query = MongoJobStore.listQuery({ status: "failed", ...filters, limit: 50 })
    assert.strictEqual(query.options.hint, name)
    const index = MongoJobStore.indexes.find((candidate) => candidate.name === name)
    assert.isDefined(index)
    // Equality fields (in any order) first, then the sort's fields in the sort's order.
    const keys = Object.keys(index.key)
    const equality = Object.keys(query.filter).filter((field) => field !== "updated_at" && field !== "$or")
    assert.deepStrictEqual(keys.slice(0, equality.length).sort(), equality.sort())
    assert.deepStrictEqual(
      Object.entries(index.key).slice(equality.length),
      Object.entries(query.options.sort as Record<string, number>)
    )
    assert.strictEqual(query.options.limit, 51)
    assert.deepStrictEqual(query.options.projection, { payload_json: 0 })
  })

  it("a cursor bounds the scan by its time, and breaks ties of that millisecond by id", () => {
    const id = Job.makeJobId()
    const query = MongoJobStore.listQuery({
      status: "failed",
      owner,
      limit: 10,
      after: { updatedAt: at.toISOString(), id }
    })
    assert.deepStrictEqual(query.filter, {
      status: "failed",
      owner,
      updated_at: { $lte: at },
      $or: [{ updated_at: { $lt: at } }, { updated_at: at, _id: { $lt: id } }]
    })
  })

  it("the sweeper's query reads the sparse overdue index, most overdue first, with the payload", () => {
    const query = MongoJobStore.overdueQuery({ before: at, limit: 500 })
    assert.deepStrictEqual(query.filter, { overdue_at: { $lt: at } })
    assert.strictEqual(query.options.hint, "overdue_at_1")
    const index = MongoJobStore.indexes.find((candidate) => candidate.name === "overdue_at_1")
    assert.deepStrictEqual(
      [index?.key, index !== undefined && "sparse" in index && index.sparse],
      [{ overdue_at: 1 }, true]
    )
    assert.deepStrictEqual(query.options.sort, { overdue_at: 1 })
    assert.isUndefined(query.options.projection)
  })

  it.effect("a summary document (no payload_json) decodes to the job's summary", () =>
    Effect.gen(function* () {
      const job = new Job.Job({
        ...pending(tricky),
        status: "failed",
        result: null,
        error: { reason: "r", message: "m" }
      })
      const { payload_json: _, ...summary } = yield* MongoJobStore.toDocument(job)
      assert.deepStrictEqual(yield* MongoJobStore.summaryFromDocument(summary), Job.summaryOf(job))
    })
  )
})

describe("MongoJobStore errors", () => {
  const server = (code: number, codeName: string, errorLabels: ReadonlyArray<string> = []) =>
    new MongoServerError({ message: codeName, code, codeName, errorLabels: [...errorLabels] })

  it.each([
    ["the network", new MongoNetworkError("connection reset")],
    ["a socket timeout", new MongoNetworkTimeoutError("timed out")],
    ["no client", new MongoNotConnectedError("not connected")],
    ["a server timeout (maxTimeMS)", server(50, "MaxTimeMSExpired")],
    ["a primary that stepped down", server(189, "PrimarySteppedDown")],
    ["a node that is not the primary", server(10107, "NotWritablePrimary")],
    ["a write concern timeout", server(64, "WriteConcernTimeout")],
    ["a write conflict", server(112, "WriteConflict")],
    ["any code labelled retryable", server(1234, "Whatever", ["RetryableWriteError"])],
    ["an overloaded server", server(462, "IngressRequestRateLimitExceeded", ["SystemOverloadedError"])],
    ["something that is not MongoDB's", new Error("EPIPE")]
  ])("%s is Unavailable (may pass)", (_, cause) => {
    assert.strictEqual(MongoJobStore.classify(cause), "Unavailable")
  })

  it.each([
    ["a document too large", server(10334, "BSONObjectTooLarge")],
    ["an update making one too large", server(17419, "Location17419")],
    ["a validator", server(121, "DocumentValidationFailure")],
    ["missing privileges", server(13, "Unauthorized")],
    ["refused credentials", server(18, "AuthenticationFailed")],
    ["a bad query, or a hint naming a missing index", server(2, "BadValue")],
    ["a document the driver will not send", new MongoInvalidArgumentError("Document is larger than the maximum size")],
    ["a value BSON cannot hold", new BSON.BSONError("cannot serialize")]
  ])("%s is Rejected (not retried)", (_, cause) => {
    assert.strictEqual(MongoJobStore.classify(cause), "Rejected")
  })
})

describe("MongoJobStore configuration", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.provide(Layer.fresh(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))

  it.effect("reads the defaults, and keeps the URI redacted", () =>
    Effect.gen(function* () {
      const options = yield* MongoJobStore.config.pipe(withEnv({ MONGODB_URI: "mongodb://user:s3cret@db:27017" }))
      assert.strictEqual(Redacted.value(options.uri), "mongodb://user:s3cret@db:27017")
      assert.notInclude(String(options.uri), "s3cret")
      assert.strictEqual(options.database, "vendorflow")
      assert.strictEqual(options.collection, "jobs")
      assert.isUndefined(options.finishedTtl)
      assert.isTrue(Duration.equals(Duration.fromInputUnsafe(options.timeout ?? 0), Duration.seconds(5)))
    })
  )

  it.effect("reads every variable", () =>
    Effect.gen(function* () {
      const options = yield* MongoJobStore.config.pipe(
        withEnv({
          MONGODB_URI: "mongodb://db",
          MONGODB_DB: "vf",
          MONGODB_COLLECTION: "vf_jobs",
          MONGODB_FINISHED_TTL: "30 days",
          MONGODB_TIMEOUT: "2 seconds"
        })
      )
      assert.strictEqual(options.database, "vf")
      assert.strictEqual(options.collection, "vf_jobs")
      assert.strictEqual(yield* MongoJobStore.ttlSeconds(options.finishedTtl), 30 * 24 * 3600)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(options.timeout ?? 0)), 2000)
    })
  )

  it.effect("without MONGODB_URI the layer fails with a ConfigError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Layer.build(MongoJobStore.layerConfig).pipe(withEnv({})))
      assert.strictEqual(error._tag, "ConfigError")
    })
  )

  it.effect("TTL seconds: whole seconds, off when absent or infinite, refused under 1 second", () =>
    Effect.gen(function* () {
      assert.isUndefined(yield* MongoJobStore.ttlSeconds(undefined))
      assert.isUndefined(yield* MongoJobStore.ttlSeconds(Duration.infinity))
      assert.strictEqual(yield* MongoJobStore.ttlSeconds("1 second"), 1)
      assert.strictEqual(yield* MongoJobStore.ttlSeconds("1500 millis"), 1)
      assert.strictEqual(yield* MongoJobStore.ttlSeconds("7 days"), 604_800)
      assert.strictEqual(yield* MongoJobStore.ttlSeconds("1000000 weeks"), 2_147_483_647)
      for (const ttl of ["0 seconds", "999 millis"] as const) {
        const error = yield* Effect.flip(MongoJobStore.ttlSeconds(ttl))
        assert.strictEqual(error._tag, "ConfigError")
      }
    })
  )

  it("one timeout drives server selection, the pool, the server's work and the socket, over the URI's", () => {
    const { client: options, maxTimeMS } = MongoJobStore.clientOptions("2 seconds")
    assert.strictEqual(maxTimeMS, 2000)
    const client = new MongoClient(
      "mongodb://db/?serverSelectionTimeoutMS=60000&socketTimeoutMS=0&connectTimeoutMS=60000&waitQueueTimeoutMS=0",
      options
    )
    assert.deepInclude(client.options, {
      serverSelectionTimeoutMS: 2000,
      connectTimeoutMS: 2000,
      waitQueueTimeoutMS: 2000,
      socketTimeoutMS: 4000
    })
    assert.strictEqual(MongoJobStore.clientOptions(undefined).maxTimeMS, 5000)
  })

  it("the compare-and-set's collection reads the primary and writes to a majority, whatever the URI says", () => {
    const client = new MongoClient("mongodb://db/?readPreference=secondary&w=1&journal=false")
    const { collection, listing } = MongoJobStore.collections(client.db("vf"), "jobs", 2000)
    assert.strictEqual(collection.readPreference?.mode, "primary")
    assert.deepInclude(collection.writeConcern, { w: "majority", wtimeoutMS: 2000 })
    // The lists follow the URI.
    assert.strictEqual(listing.readPreference?.mode, "secondary")
  })
})

// These reach the real driver but need no server: they check start-up fails once, fast and clearly.
describe("MongoJobStore start-up failures (no server needed)", () => {
  it.live("a malformed URI fails at layer build with Unavailable, at once", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(
          MongoJobStore.layer({
            uri: Redacted.make("postgres://user:s3cret@db"),
            database: "vendorflow",
            collection: "jobs"
          })
        )
      )
      assert.strictEqual(error._tag, "JobStoreError")
      assert.strictEqual(error._tag === "JobStoreError" && error.reason, "Unavailable")
      assert.include(error.message, "invalid connection string")
      assert.notInclude(error.message, "s3cret")
    })
  )

  it.live("an unreachable server fails at layer build within the timeout", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const error = yield* Effect.flip(
        Layer.build(
          MongoJobStore.layer({
            uri: Redacted.make("mongodb://user:s3cret@127.0.0.1:1/?authSource=admin"),
            database: "vendorflow",
            collection: "jobs",
            timeout: "300 millis"
          })
        )
      )
      const elapsed = Date.now() - started
      assert.strictEqual(error._tag === "JobStoreError" && error.reason, "Unavailable")
      assert.include(error.message, 'connecting for database "vendorflow" failed (server selection timeout 300 ms)')
      assert.notInclude(error.message, "s3cret")
      assert.isBelow(elapsed, 3_000)
    })
  )

  it.live("a TTL under 1 second is refused before connecting, in one line", () =>
    Effect.gen(function* () {
      for (const env of [{ MONGODB_FINISHED_TTL: "0 seconds" }, { MONGODB_FINISHED_TTL: "500 millis" }]) {
        const started = Date.now()
        const error = yield* Effect.flip(
          Layer.build(MongoJobStore.layerConfig).pipe(
            Effect.provide(
              ConfigProvider.layer(
                ConfigProvider.fromUnknown({
                  MONGODB_URI: "mongodb://127.0.0.1:1",
                  MONGODB_TIMEOUT: "10 seconds",
                  ...env
                })
              )
            )
          )
        )
        assert.strictEqual(error._tag, "ConfigError")
        assert.match(error.message, /MONGODB_FINISHED_TTL is (0|500ms): it must be at least 1 second, or unset$/)
        assert.notInclude(error.message, "\n")
        assert.isBelow(Date.now() - started, 2_000, "no connection was tried")
      }
    })
  )
})

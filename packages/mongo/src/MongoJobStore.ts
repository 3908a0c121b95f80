/**
 * The job store on MongoDB, with the official `mongodb` driver: one document per job, `_id` = the
 * job id, and every transition ONE `findOneAndUpdate` whose filter is the compare-and-set (status,
 * and version when given), so two workers racing on a job can't both win.
 *
 * Payloads and results are stored as JSON text (`payload_json`, `result_json`), not as BSON
 * sub-documents. They are opaque to every query we run, and a client's JSON may use any key: MongoDB
 * restricts field names that start with `$` or contain `.` (update operators read them as operators or
 * paths, some checks refuse them), so a payload like `{ "$where": 1, "a.b": 2 }` would otherwise be
 * refused or mangled. A string is stored and returned byte for byte, whatever its keys; the cost is
 * that payloads can't be queried by field, which nothing here needs. The reads that answer the API
 * (`getMany`, `list`) leave `payload_json` out, since no answer shows it.
 *
 * Timestamps are BSON Dates (`created_at`, `updated_at`, `overdue_at` while an unfinished job has
 * one, and `finished_at` while a job is complete or failed), so range queries and a TTL index work;
 * they read back as the job's ISO strings (in `toISOString` form, to the millisecond, which is how
 * `Job.makePending` writes them). Every read is decoded with the job schema, so a document of the
 * wrong shape is a typed error, not a crash.
 *
 * Holding at scale:
 * - Every query the store makes is served by an index made at start-up ({@link indexes}), named in
 *   the query as its hint, so no listing or sweep scans a collection or sorts in memory.
 * - One setting, `timeout`, bounds every wait: server selection, a connection from the pool, the
 *   server's work (`maxTimeMS` on every operation) and the socket.
 * - The compare-and-set and the reads that feed it go to the primary and write with write concern
 *   `majority`, whatever the URI says; listings follow the URI's read preference.
 * - Errors are classified ({@link classify}): what may pass (the network, an election, a timeout) is
 *   `Unavailable`; what the server refused for good (a document too large, a validator, missing
 *   privileges, a bad query) is `Rejected`, which the engine does not retry.
 *
 * Offers {@link layer} (explicit options) and {@link layerConfig} (`MONGODB_URI`, `MONGODB_DB`,
 * `MONGODB_COLLECTION`, `MONGODB_FINISHED_TTL`, `MONGODB_TIMEOUT`). Both provide the core `JobStore`
 * and {@link MongoJobStore} (the same store plus `ping` for readiness and the driver handles).
 *
 * @since 0.1.0
 */
import { type Job, JobStore } from "@vendorflow/core"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { type Collection, type Db, MongoClient, type MongoClientOptions, ReadPreference } from "mongodb"
import {
  decodeStored,
  decodeSummary,
  type JobDocument,
  summaryProjection,
  toDocument,
  transitionFilter,
  transitionUpdate
} from "./MongoJobStore/Document.ts"
import { failure, insertFailure, messageOf, unavailable } from "./MongoJobStore/Errors.ts"
import { type FindQuery, overdueQuery, listQuery, settleIndexes, ttlSeconds } from "./MongoJobStore/Indexes.ts"

export {
  fromDocument,
  JobFromDocument,
  type JobDocument,
  StoredJob,
  StoredSummary,
  summaryFromDocument,
  SummaryFromDocument,
  summaryProjection,
  toDocument,
  transitionFilter,
  transitionUpdate
} from "./MongoJobStore/Document.ts"
export { classify } from "./MongoJobStore/Errors.ts"
export {
  finishedTtlIndexName,
  type FindQuery,
  type IndexName,
  indexes,
  listIndexName,
  listQuery,
  overdueQuery,
  ttlSeconds
} from "./MongoJobStore/Indexes.ts"

/**
 * Options of {@link layer}.
 *
 * @category models
 */
export interface Options {
  readonly uri: Redacted.Redacted<string>
  readonly database: string
  readonly collection: string
  /**
   * Delete jobs this long after they complete or fail (a TTL index on `finished_at`), at least
   * 1 second. Absent (or infinite): this process leaves the TTL index as it finds it.
   */
  readonly finishedTtl?: Duration.Input | undefined
  /**
   * How long any one wait on MongoDB may last; 5 seconds by default. It bounds server selection
   * (so start-up, and each operation while no server is usable), a connection from the pool, the
   * server's work on each operation (`maxTimeMS`), and, doubled, a socket that stops answering.
   */
  readonly timeout?: Duration.Input | undefined
}

/**
 * The default of {@link Options} `timeout`.
 *
 * @category constants
 */
export const defaultTimeout = Duration.seconds(5)

/**
 * The options from the environment: `MONGODB_URI` (required, redacted), `MONGODB_DB` (default
 * `vendorflow`), `MONGODB_COLLECTION` (default `jobs`), `MONGODB_FINISHED_TTL` (a duration such as
 * `30 days`, at least 1 second; unset leaves the TTL index alone), `MONGODB_TIMEOUT` (default
 * `5 seconds`).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  uri: Config.Redacted("MONGODB_URI"),
  database: Config.String("MONGODB_DB").pipe(Config.withDefault("vendorflow")),
  collection: Config.String("MONGODB_COLLECTION").pipe(Config.withDefault("jobs")),
  finishedTtl: Config.option(Config.Duration("MONGODB_FINISHED_TTL")).pipe(Config.map(Option.getOrUndefined)),
  timeout: Config.Duration("MONGODB_TIMEOUT").pipe(Config.withDefault(defaultTimeout))
})

/**
 * The driver's settings that {@link Options} `timeout` drives, in ms. They override the URI's.
 * The socket gets twice as long as the server, so that the server's own limit (`maxTimeMS`)
 * answers first, with an error that says so, and the socket's catches a connection that stopped
 * answering.
 *
 * @category constructors
 */
export const clientOptions = (timeout: Duration.Input | undefined) => {
  const millis = Math.max(1, Math.round(Duration.toMillis(Duration.fromInputUnsafe(timeout ?? defaultTimeout))))
  return {
    maxTimeMS: millis,
    client: {
      appName: "vendorflow",
      serverSelectionTimeoutMS: millis,
      connectTimeoutMS: millis,
      waitQueueTimeoutMS: millis,
      socketTimeoutMS: 2 * millis
    } satisfies MongoClientOptions
  }
}

/**
 * The MongoDB store: the `JobStore` operations plus what only MongoDB offers.
 *
 * @category services
 */
export class MongoJobStore extends Context.Service<
  MongoJobStore,
  Context.Service.Shape<typeof JobStore.JobStore> & {
    /** Answers when the server does: for readiness checks. */
    readonly ping: Effect.Effect<void, JobStore.JobStoreError>
    /** The driver's handles, for queries this module does not offer. */
    readonly client: MongoClient
    readonly db: Db
    /** The collection as the compare-and-set uses it: primary reads, write concern `majority`. */
    readonly collection: Collection<JobDocument>
  }
>()("@vendorflow/mongo/MongoJobStore") {}

/** Opens a client, closed with the scope; the constructor parses the URI and throws on a malformed one. */
const openClient = (uri: Redacted.Redacted<string>, options: MongoClientOptions) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => new MongoClient(Redacted.value(uri), options),
      catch: unavailable("invalid connection string")
    }),
    (opened) =>
      Effect.tryPromise(() => opened.close()).pipe(
        Effect.catch((error) => Effect.logWarning("MongoDB: closing the client failed", messageOf(error)))
      )
  )

/**
 * The store's handles on its collection: `collection` for the compare-and-set and the reads it acts
 * on, on the primary and durable on a majority (waiting at most `maxTimeMS` for it), whatever the
 * URI says; `listing` for the job lists, which follow the URI's read preference (a list read from a
 * secondary may be a moment behind, which no decision depends on).
 *
 * @category constructors
 */
export const collections = (db: Db, name: string, maxTimeMS: number) => ({
  collection: db.collection<JobDocument>(name, {
    readPreference: ReadPreference.primary,
    writeConcern: { w: "majority", wtimeoutMS: maxTimeMS }
  }),
  listing: db.collection<JobDocument>(name)
})

/**
 * Connects, checks the server answers, makes the indexes, and returns the store. Clients are closed
 * when the scope closes. An invalid or unreachable URI fails here, once, within the timeout; a TTL
 * under 1 second fails before connecting.
 *
 * The indexes are made on a client of their own without the socket timeout, closed once they are
 * made: building an index on a large collection can take far longer than any one operation may.
 *
 * @category constructors
 */
export const make = Effect.fn("MongoJobStore.make")(function* (options: Options) {
  const expireAfterSeconds = yield* ttlSeconds(options.finishedTtl)
  const { client: driverOptions, maxTimeMS } = clientOptions(options.timeout)
  const what = `${options.database}.${options.collection}`
  // `connect` selects a server and opens (so authenticates) a pooled connection, so an unreachable
  // server and refused credentials both fail here rather than on the first job.
  const connect = (client: MongoClient) =>
    Effect.tryPromise({
      try: () => client.connect(),
      catch: unavailable(
        `connecting for database "${options.database}" failed (server selection timeout ${driverOptions.serverSelectionTimeoutMS} ms)`
      )
    })

  yield* Effect.scoped(
    Effect.gen(function* () {
      const admin = yield* openClient(options.uri, { ...driverOptions, socketTimeoutMS: 0 })
      yield* connect(admin)
      yield* settleIndexes(
        admin.db(options.database).collection<JobDocument>(options.collection),
        expireAfterSeconds,
        what
      )
    })
  )

  const client = yield* openClient(options.uri, driverOptions)
  yield* connect(client)
  const db = client.db(options.database)
  const { collection, listing } = collections(db, options.collection, maxTimeMS)
  // The readiness check times `ping` out itself; the socket timeout bounds it too.
  const ping = Effect.tryPromise({ try: () => db.command({ ping: 1 }), catch: failure("ping") }).pipe(Effect.asVoid)

  const find = (source: Collection<JobDocument>, query: FindQuery) =>
    source.find(query.filter, { ...query.options, maxTimeMS }).toArray()

  const get = Effect.fnUntraced(function* (id: Job.JobId) {
    const raw = yield* Effect.tryPromise({
      try: () => collection.findOne({ _id: id }, { maxTimeMS }),
      catch: failure(`reading job ${id}`)
    })
    return raw === null ? Option.none() : Option.some(yield* decodeStored(id, raw))
  })

  const transition = Effect.fnUntraced(function* (transition: JobStore.Transition) {
    if (!JobStore.isAllowed(transition)) return yield* JobStore.invalidTransition(transition)
    const now = new Date(yield* Clock.currentTimeMillis)
    const raw = yield* Effect.tryPromise({
      try: () =>
        collection.findOneAndUpdate(transitionFilter(transition), transitionUpdate(transition, now), {
          returnDocument: "after",
          includeResultMetadata: false,
          maxTimeMS
        }),
      catch: failure(`moving job ${transition.id} from ${transition.from} to ${transition.to}`)
    })
    return raw === null ? Option.none() : Option.some(yield* decodeStored(transition.id, raw))
  })

  return MongoJobStore.of({
    create: Effect.fnUntraced(function* (job: Job.Job) {
      // A job whose timestamps are not dates breaks the Job model's own contract: a caller's bug.
      const document = yield* toDocument(job).pipe(Effect.orDie)
      yield* Effect.tryPromise({
        try: () => collection.insertOne(document, { maxTimeMS }),
        catch: insertFailure([job])
      })
    }),
    createMany: Effect.fnUntraced(function* (jobs: ReadonlyArray<Job.Job>) {
      if (jobs.length === 0) return
      const documents = yield* Effect.forEach(jobs, (job) => toDocument(job)).pipe(Effect.orDie)
      // Unordered: a duplicate id does not stop the jobs after it from being stored.
      yield* Effect.tryPromise({
        try: () => collection.insertMany(documents, { ordered: false, maxTimeMS }),
        catch: insertFailure(jobs)
      })
    }),
    get,
    getMany: Effect.fnUntraced(function* (ids: ReadonlyArray<Job.JobId>) {
      if (ids.length === 0) return []
      const raws = yield* Effect.tryPromise({
        try: () =>
          collection.find({ _id: { $in: [...new Set(ids)] } }, { projection: summaryProjection, maxTimeMS }).toArray(),
        catch: failure(ids.length === 1 ? `reading job ${ids[0]}` : `reading ${ids.length} jobs`)
      })
      const jobs = yield* Effect.forEach(raws, (raw) => decodeSummary(raw._id, raw))
      const byId = new Map(jobs.map((job) => [job.id, job]))
      return ids.map((id) => Option.fromUndefinedOr(byId.get(id)))
    }),
    transition,
    claim: JobStore.claimVia({ get, transition }),
    ping,
    listOverdue: Effect.fnUntraced(function* (query: JobStore.OverdueQuery) {
      // MongoDB reads a limit of 0 as "no limit" and a negative one as "one batch".
      const limit = Math.floor(query.limit)
      if (!(limit > 0)) return []
      const raws = yield* Effect.tryPromise({
        try: () => find(collection, overdueQuery({ ...query, limit })),
        catch: failure("listing overdue jobs")
      })
      const jobs = yield* Effect.forEach(raws, (raw) => decodeStored(raw._id, raw))
      return jobs.filter((job) => JobStore.isOverdue(job, query.before))
    }),
    list: Effect.fnUntraced(function* (query: JobStore.ListQuery) {
      const limit = Math.max(0, Math.floor(query.limit))
      if (limit === 0) return { jobs: [] }
      const raws = yield* Effect.tryPromise({
        try: () => find(listing, listQuery({ ...query, limit })),
        catch: failure(`listing ${query.status} jobs`)
      })
      const jobs = yield* Effect.forEach(raws, (raw) => decodeSummary(raw._id, raw))
      return JobStore.pageOf(jobs, limit)
    }),
    client,
    db,
    collection
  })
})

/**
 * The MongoDB store as both the core `JobStore` and {@link MongoJobStore}, connected for the layer's
 * lifetime. Fails to build with an `Unavailable` error when the server can't be used, and with a
 * `ConfigError` for a TTL under 1 second.
 *
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<JobStore.JobStore | MongoJobStore, JobStore.JobStoreError | Config.ConfigError> =>
  Layer.effect(JobStore.JobStore, MongoJobStore).pipe(Layer.provideMerge(Layer.effect(MongoJobStore, make(options))))

/**
 * {@link layer} configured from the environment, see {@link config}.
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<JobStore.JobStore | MongoJobStore, JobStore.JobStoreError | Config.ConfigError> =
  Layer.unwrap(Effect.map(config, layer))

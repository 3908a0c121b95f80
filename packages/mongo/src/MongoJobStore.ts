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
 * that payloads can't be queried by field, which nothing here needs.
 *
 * Timestamps are BSON Dates (`created_at`, `updated_at`, and `finished_at` while a job is complete or
 * failed), so range queries and a TTL index work; they read back as the job's ISO strings (in
 * `toISOString` form, to the millisecond, which is how `Job.makePending` writes them). Every read is
 * decoded with the job schema, so a document of the wrong shape is a typed error, not a crash.
 *
 * Offers {@link layer} (explicit options) and {@link layerConfig} (`MONGODB_URI`, `MONGODB_DB`,
 * `MONGODB_COLLECTION`, `MONGODB_FINISHED_TTL`, `MONGODB_SERVER_SELECTION_TIMEOUT`). Both provide the
 * core `JobStore` and {@link MongoJobStore} (the same store plus `ping` for readiness and the driver
 * handles for sweeper queries).
 *
 * @since 0.1.0
 */
import { Job, JobStore } from "@vendorflow/core"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Redacted, Schema, SchemaTransformation } from "effect"
import {
  type Collection,
  type Db,
  type Filter,
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  type UpdateFilter
} from "mongodb"

/**
 * A job as stored: what decodes from (and encodes to) a MongoDB document.
 *
 * @category models
 */
export const StoredJob = Schema.Struct({
  _id: Schema.String,
  vendor: Schema.String,
  status: Job.JobStatus,
  payload_json: Schema.fromJsonString(Job.JsonObject),
  attempts: Schema.Int,
  /** Absent in documents written before runs were counted: run 1. */
  run: Schema.optionalKey(Schema.Int),
  version: Schema.Int,
  result_json: Schema.optionalKey(Schema.fromJsonString(Schema.Json)),
  error: Schema.optionalKey(Job.JobFailure),
  awaiting_callback: Schema.optionalKey(Schema.Boolean),
  next_retry_at: Schema.optionalKey(Schema.String),
  owner: Schema.optionalKey(Schema.String),
  traceparent: Schema.optionalKey(Schema.String),
  created_at: Schema.Date,
  updated_at: Schema.Date,
  finished_at: Schema.optionalKey(Schema.Date)
})

/**
 * The document in the collection, as the driver reads and writes it.
 *
 * @category models
 */
export type JobDocument = typeof StoredJob.Encoded

/**
 * The codec between a document and a {@link Job.Job}: decoding checks the document's shape and the
 * job's, encoding writes the JSON texts and the dates. `finished_at` is derived from the status.
 *
 * @category codecs
 */
export const JobFromDocument = StoredJob.pipe(
  Schema.decodeTo(
    Job.Job,
    SchemaTransformation.transform({
      decode: (doc) => ({
        id: doc._id,
        vendor: doc.vendor,
        status: doc.status,
        payload: doc.payload_json,
        attempts: doc.attempts,
        run: doc.run ?? 1,
        version: doc.version,
        ...("result_json" in doc ? { result: doc.result_json } : {}),
        ...(doc.error === undefined ? {} : { error: doc.error }),
        ...(doc.awaiting_callback === undefined ? {} : { awaitingCallback: doc.awaiting_callback }),
        ...(doc.next_retry_at === undefined ? {} : { nextRetryAt: doc.next_retry_at }),
        ...(doc.owner === undefined ? {} : { owner: doc.owner }),
        ...(doc.traceparent === undefined ? {} : { traceparent: doc.traceparent }),
        createdAt: doc.created_at.toISOString(),
        updatedAt: doc.updated_at.toISOString()
      }),
      encode: (job) => ({
        _id: job.id,
        vendor: job.vendor,
        status: job.status,
        payload_json: job.payload,
        attempts: job.attempts,
        run: job.run,
        version: job.version,
        ...("result" in job ? { result_json: job.result } : {}),
        ...(job.error === undefined ? {} : { error: { reason: job.error.reason, message: job.error.message } }),
        ...(job.awaitingCallback === undefined ? {} : { awaiting_callback: job.awaitingCallback }),
        ...(job.nextRetryAt === undefined ? {} : { next_retry_at: job.nextRetryAt }),
        ...(job.owner === undefined ? {} : { owner: job.owner }),
        ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
        created_at: new Date(job.createdAt),
        updated_at: new Date(job.updatedAt),
        ...(Job.isFinished(job.status) ? { finished_at: new Date(job.updatedAt) } : {})
      })
    })
  )
)

/**
 * The document to insert for a new job. Fails when the job's timestamps are not dates.
 *
 * @category codecs
 */
export const toDocument = Schema.encodeEffect(JobFromDocument)

/**
 * The job a stored document holds. Fails when the document does not have the stored shape.
 *
 * @category codecs
 */
export const fromDocument = Schema.decodeUnknownEffect(JobFromDocument)

/**
 * The compare-and-set filter of a transition: the job, in the expected status (and version, if given).
 *
 * @category transitions
 */
export const transitionFilter = (transition: JobStore.Transition): Filter<JobDocument> => ({
  _id: transition.id,
  status: transition.from,
  ...(transition.expectedVersion === undefined ? {} : { version: transition.expectedVersion })
})

/**
 * The update of a transition, matching the memory store's `applyTransition`: the new status and
 * fields, `updated_at = now`, `version + 1`; a field both set and unset ends up unset.
 * `finished_at` follows the status so the TTL index only ever sees finished jobs.
 *
 * @category transitions
 */
export const transitionUpdate = (transition: JobStore.Transition, now: Date): UpdateFilter<JobDocument> => {
  const set = transition.set ?? {}
  const unset = new Set(transition.unset)
  const finished = Job.isFinished(transition.to)
  const $set = {
    status: transition.to,
    updated_at: now,
    ...(set.attempts === undefined ? {} : { attempts: set.attempts }),
    ...(set.run === undefined ? {} : { run: set.run }),
    // `result` may be `null`, a value to store; only a missing key means "leave it".
    ...("result" in set && set.result !== undefined && !unset.has("result")
      ? { result_json: JSON.stringify(set.result) }
      : {}),
    ...(set.error === undefined || unset.has("error")
      ? {}
      : { error: { reason: set.error.reason, message: set.error.message } }),
    ...(set.awaitingCallback === undefined || unset.has("awaitingCallback")
      ? {}
      : { awaiting_callback: set.awaitingCallback }),
    ...(set.nextRetryAt === undefined || unset.has("nextRetryAt") ? {} : { next_retry_at: set.nextRetryAt }),
    ...(finished ? { finished_at: now } : {})
  }
  const $unset = {
    ...(unset.has("result") ? { result_json: "" as const } : {}),
    ...(unset.has("error") ? { error: "" as const } : {}),
    ...(unset.has("awaitingCallback") ? { awaiting_callback: "" as const } : {}),
    ...(unset.has("nextRetryAt") ? { next_retry_at: "" as const } : {}),
    ...(finished ? {} : { finished_at: "" as const })
  }
  // An empty `$unset` is refused by MongoDB before 5.0, so it is left out rather than sent empty.
  return Object.keys($unset).length === 0 ? { $set, $inc: { version: 1 } } : { $set, $unset, $inc: { version: 1 } }
}

/**
 * The filter of a `list` page: the status (and vendor, and owner), after the cursor in newest-first
 * order.
 *
 * @category listing
 */
export const listFilter = (query: JobStore.ListQuery): Filter<JobDocument> => {
  const after = query.after
  return {
    status: query.status,
    ...(query.vendor === undefined ? {} : { vendor: query.vendor }),
    ...(query.owner === undefined ? {} : { owner: query.owner }),
    ...(after === undefined
      ? {}
      : {
          $or: [
            { updated_at: { $lt: new Date(after.updatedAt) } },
            { updated_at: new Date(after.updatedAt), _id: { $lt: after.id } }
          ]
        })
  }
}

/**
 * Options of {@link layer}.
 *
 * @category models
 */
export interface Options {
  readonly uri: Redacted.Redacted<string>
  readonly database: string
  readonly collection: string
  /** Delete jobs this long after they complete or fail (a TTL index on `finished_at`); off when absent. */
  readonly finishedTtl?: Duration.Input | undefined
  /** How long start-up and each operation wait for a usable server; 5 seconds by default. */
  readonly serverSelectionTimeout?: Duration.Input | undefined
}

/**
 * The options from the environment: `MONGODB_URI` (required, redacted), `MONGODB_DB` (default
 * `vendorflow`), `MONGODB_COLLECTION` (default `jobs`), `MONGODB_FINISHED_TTL` (a duration such as
 * `30 days`; off when unset), `MONGODB_SERVER_SELECTION_TIMEOUT` (default `5 seconds`).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  uri: Config.Redacted("MONGODB_URI"),
  database: Config.String("MONGODB_DB").pipe(Config.withDefault("vendorflow")),
  collection: Config.String("MONGODB_COLLECTION").pipe(Config.withDefault("jobs")),
  finishedTtl: Config.option(Config.Duration("MONGODB_FINISHED_TTL")).pipe(Config.map(Option.getOrUndefined)),
  serverSelectionTimeout: Config.Duration("MONGODB_SERVER_SELECTION_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(5))
  )
})

/**
 * The TTL index's name, fixed so start-up can find it again to change or drop it.
 *
 * @category constants
 */
export const finishedTtlIndexName = "finished_at_1"

/**
 * The indexes made at start-up (the TTL index is handled apart, see {@link make}): status by age for
 * the sweepers and the job list, vendor by status for per-vendor counts, owner by status for a key's
 * job list.
 *
 * @category constants
 */
export const indexes = [
  { key: { status: 1, updated_at: 1 }, name: "status_1_updated_at_1" },
  { key: { vendor: 1, status: 1 }, name: "vendor_1_status_1" },
  { key: { owner: 1, status: 1, updated_at: -1 }, name: "owner_1_status_1_updated_at_-1" }
] as const

/**
 * `expireAfterSeconds` for a TTL, or `undefined` when the TTL is off (absent or infinite). MongoDB
 * takes whole seconds up to 2^31 - 1.
 *
 * @category constructors
 */
export const ttlSeconds = (ttl: Duration.Input | undefined): number | undefined => {
  if (ttl === undefined) return undefined
  const seconds = Duration.toSeconds(ttl)
  return Number.isFinite(seconds) ? Math.min(Math.max(0, Math.floor(seconds)), 2_147_483_647) : undefined
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
    readonly collection: Collection<JobDocument>
  }
>()("@vendorflow/mongo/MongoJobStore") {}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const unavailable =
  (what: string) =>
  (cause: unknown): JobStore.JobStoreError =>
    new JobStore.JobStoreError({ reason: "Unavailable", message: `MongoDB: ${what}: ${messageOf(cause)}` })

const hasCode = (cause: unknown, ...codes: ReadonlyArray<number>): boolean =>
  cause instanceof MongoServerError && typeof cause.code === "number" && codes.includes(cause.code)

// MongoDB's server error codes used here.
const DuplicateKey = 11000
const IndexOptionsConflict = 85
const IndexKeySpecsConflict = 86
const NamespaceNotFound = 26
const IndexNotFound = 27

/** The ids a failed insert of `jobs` found existing, when ids that exist are all that went wrong. */
const existingIds = (jobs: ReadonlyArray<Job.Job>, cause: unknown): ReadonlyArray<Job.JobId> => {
  if (cause instanceof MongoBulkWriteError) {
    // A bulk write's error carries the code of its first write error only, so each one is checked.
    const errors = [cause.writeErrors].flat()
    return errors.every((error) => error.code === DuplicateKey)
      ? errors.flatMap((error) => jobs[error.index]?.id ?? [])
      : []
  }
  return hasCode(cause, DuplicateKey) ? jobs.map((job) => job.id) : []
}

/** A failed insert of `jobs`: `Duplicate` (the others are stored) or `Unavailable`, as {@link existingIds} says. */
const insertFailure =
  (jobs: ReadonlyArray<Job.Job>) =>
  (cause: unknown): JobStore.JobStoreError => {
    const existing = existingIds(jobs, cause)
    if (existing.length > 0) return JobStore.duplicate(existing)
    return unavailable(jobs.length === 1 ? `storing job ${jobs[0]!.id}` : `storing ${jobs.length} jobs`)(cause)
  }

const decodeStored = (id: string, raw: unknown) =>
  fromDocument(raw).pipe(
    // No reason fits a corrupt document exactly; `Unavailable` says "the store can't serve this job",
    // and the message names the job and the fault so an operator can repair the document.
    Effect.mapError(
      (error) =>
        new JobStore.JobStoreError({
          reason: "Unavailable",
          message: `MongoDB: the document of job ${id} does not have the stored shape: ${error.message}`
        })
    )
  )

/**
 * Connects, checks the server answers, makes the indexes, and returns the store. The client is closed
 * when the scope closes. An invalid or unreachable URI fails here, once, within the server selection
 * timeout.
 *
 * The TTL index follows the options on every start: made when `finishedTtl` is set, remade when its
 * duration changed (drop and create, which needs only the `readWrite` role, unlike `collMod`), and
 * dropped when `finishedTtl` is unset, so turning the option off stops deletions.
 *
 * @category constructors
 */
export const make = Effect.fn("MongoJobStore.make")(function* (options: Options) {
  const timeoutMs = Duration.toMillis(options.serverSelectionTimeout ?? Duration.seconds(5))
  const client = yield* Effect.acquireRelease(
    // The constructor parses the URI and throws on a malformed one.
    Effect.try({
      try: () =>
        new MongoClient(Redacted.value(options.uri), { serverSelectionTimeoutMS: timeoutMs, appName: "vendorflow" }),
      catch: unavailable("invalid connection string")
    }),
    (opened) =>
      Effect.tryPromise(() => opened.close()).pipe(
        Effect.catch((error) => Effect.logWarning("MongoDB: closing the client failed", messageOf(error)))
      )
  )
  // `connect` selects the primary and opens (so authenticates) a pooled connection, so an unreachable
  // server and refused credentials both fail here rather than on the first job.
  yield* Effect.tryPromise({
    try: () => client.connect(),
    catch: unavailable(
      `connecting for database "${options.database}" failed (server selection timeout ${timeoutMs} ms)`
    )
  })
  const db = client.db(options.database)
  const collection = db.collection<JobDocument>(options.collection)
  const ping = Effect.tryPromise({ try: () => db.command({ ping: 1 }), catch: unavailable("ping") }).pipe(Effect.asVoid)

  const indexFailure = unavailable(`making the indexes of ${options.database}.${options.collection}`)
  yield* Effect.tryPromise({
    try: () => collection.createIndexes(indexes.map((index) => ({ ...index }))),
    catch: indexFailure
  })
  const expireAfterSeconds = ttlSeconds(options.finishedTtl)
  const dropTtl = Effect.tryPromise({ try: () => collection.dropIndex(finishedTtlIndexName), catch: (cause) => cause })
  if (expireAfterSeconds === undefined) {
    yield* dropTtl.pipe(
      Effect.catch((cause) =>
        hasCode(cause, IndexNotFound, NamespaceNotFound) ? Effect.void : Effect.fail(indexFailure(cause))
      )
    )
  } else {
    const createTtl = Effect.tryPromise({
      try: () =>
        collection.createIndexes([{ key: { finished_at: 1 }, name: finishedTtlIndexName, expireAfterSeconds }]),
      catch: (cause) => cause
    })
    yield* createTtl.pipe(
      Effect.catch((cause) =>
        hasCode(cause, IndexOptionsConflict, IndexKeySpecsConflict)
          ? Effect.andThen(dropTtl, createTtl)
          : Effect.fail(cause)
      ),
      Effect.mapError(indexFailure)
    )
  }

  const get = Effect.fnUntraced(function* (id: Job.JobId) {
    const raw = yield* Effect.tryPromise({
      try: () => collection.findOne({ _id: id }),
      catch: unavailable(`reading job ${id}`)
    })
    return raw === null ? Option.none() : Option.some(yield* decodeStored(id, raw))
  })

  const getMany = Effect.fnUntraced(function* (ids: ReadonlyArray<Job.JobId>) {
    if (ids.length === 0) return []
    const raws = yield* Effect.tryPromise({
      try: () => collection.find({ _id: { $in: [...new Set(ids)] } }).toArray(),
      catch: unavailable(ids.length === 1 ? `reading job ${ids[0]}` : `reading ${ids.length} jobs`)
    })
    const jobs = yield* Effect.forEach(raws, (raw) => decodeStored(raw._id, raw))
    const byId = new Map(jobs.map((job) => [job.id, job]))
    return ids.map((id) => Option.fromUndefinedOr(byId.get(id)))
  })

  return MongoJobStore.of({
    create: Effect.fnUntraced(function* (job: Job.Job) {
      // A job whose timestamps are not dates breaks the Job model's own contract: a caller's bug.
      const document = yield* toDocument(job).pipe(Effect.orDie)
      yield* Effect.tryPromise({ try: () => collection.insertOne(document), catch: insertFailure([job]) })
    }),
    createMany: Effect.fnUntraced(function* (jobs: ReadonlyArray<Job.Job>) {
      if (jobs.length === 0) return
      const documents = yield* Effect.forEach(jobs, (job) => toDocument(job)).pipe(Effect.orDie)
      // Unordered: a duplicate id does not stop the jobs after it from being stored.
      yield* Effect.tryPromise({
        try: () => collection.insertMany(documents, { ordered: false }),
        catch: insertFailure(jobs)
      })
    }),
    get,
    getMany,
    transition: Effect.fnUntraced(function* (transition: JobStore.Transition) {
      if (!JobStore.isAllowed(transition)) return yield* JobStore.invalidTransition(transition)
      const now = new Date(yield* Clock.currentTimeMillis)
      const raw = yield* Effect.tryPromise({
        try: () =>
          collection.findOneAndUpdate(transitionFilter(transition), transitionUpdate(transition, now), {
            returnDocument: "after",
            includeResultMetadata: false
          }),
        catch: unavailable(`moving job ${transition.id} from ${transition.from} to ${transition.to}`)
      })
      return raw === null ? Option.none() : Option.some(yield* decodeStored(transition.id, raw))
    }),
    ping,
    listStale: Effect.fnUntraced(function* (query: JobStore.StaleQuery) {
      // MongoDB reads a limit of 0 as "no limit" and a negative one as "one batch".
      if (query.limit <= 0) return []
      const raws = yield* Effect.tryPromise({
        try: () =>
          collection
            .find({ status: query.status, updated_at: { $lt: query.updatedBefore } })
            .sort({ updated_at: 1 })
            .limit(query.limit)
            .toArray(),
        catch: unavailable(`listing ${query.status} jobs`)
      })
      return yield* Effect.forEach(raws, (raw) => decodeStored(raw._id, raw))
    }),
    list: Effect.fnUntraced(function* (query: JobStore.ListQuery) {
      const limit = Math.max(0, Math.floor(query.limit))
      if (limit === 0) return { jobs: [] }
      const raws = yield* Effect.tryPromise({
        try: () =>
          collection
            .find(listFilter(query))
            .sort({ updated_at: -1, _id: -1 })
            .limit(limit + 1)
            .toArray(),
        catch: unavailable(`listing ${query.status} jobs`)
      })
      const jobs = yield* Effect.forEach(raws, (raw) => decodeStored(raw._id, raw))
      return JobStore.pageOf(jobs, limit)
    }),
    client,
    db,
    collection
  })
})

/**
 * The MongoDB store as both the core `JobStore` and {@link MongoJobStore}, connected for the layer's
 * lifetime. Fails to build with an `Unavailable` error when the server can't be used.
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<JobStore.JobStore | MongoJobStore, JobStore.JobStoreError> =>
  Layer.effectContext(
    Effect.map(make(options), (store) => Context.make(MongoJobStore, store).pipe(Context.add(JobStore.JobStore, store)))
  )

/**
 * {@link layer} configured from the environment, see {@link config}.
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<JobStore.JobStore | MongoJobStore, JobStore.JobStoreError | Config.ConfigError> =
  Layer.unwrap(Effect.map(config, layer))

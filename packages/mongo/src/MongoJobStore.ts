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
import { Job, JobStore } from "@vendorflow/core"
import {
  Clock,
  Config,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Layer,
  Option,
  Redacted,
  Schema,
  SchemaTransformation,
  Struct
} from "effect"
import {
  BSON,
  type Collection,
  type Db,
  type Filter,
  type FindOptions,
  MongoBulkWriteError,
  MongoClient,
  type MongoClientOptions,
  MongoInvalidArgumentError,
  MongoServerError,
  ReadPreference,
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
  overdue_at: Schema.optionalKey(Schema.Date),
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
 * A job's summary as stored: the document read without `payload_json` ({@link summaryProjection}).
 *
 * @category models
 */
export const StoredSummary = StoredJob.mapFields(Struct.omit(["payload_json"]))

/**
 * What the reads that answer the API leave out of each document.
 *
 * @category constants
 */
export const summaryProjection = { payload_json: 0 } as const

const summaryOfDocument = (doc: typeof StoredSummary.Type) => ({
  id: doc._id,
  vendor: doc.vendor,
  status: doc.status,
  attempts: doc.attempts,
  run: doc.run ?? 1,
  version: doc.version,
  ...("result_json" in doc ? { result: doc.result_json } : {}),
  ...(doc.error === undefined ? {} : { error: doc.error }),
  ...(doc.awaiting_callback === undefined ? {} : { awaitingCallback: doc.awaiting_callback }),
  ...(doc.next_retry_at === undefined ? {} : { nextRetryAt: doc.next_retry_at }),
  ...(doc.overdue_at === undefined ? {} : { overdueAt: doc.overdue_at.toISOString() }),
  ...(doc.owner === undefined ? {} : { owner: doc.owner }),
  ...(doc.traceparent === undefined ? {} : { traceparent: doc.traceparent }),
  createdAt: doc.created_at.toISOString(),
  updatedAt: doc.updated_at.toISOString()
})

const documentOfSummary = (job: typeof Job.JobSummary.Encoded): typeof StoredSummary.Type => ({
  _id: job.id,
  vendor: job.vendor,
  status: job.status,
  attempts: job.attempts,
  run: job.run,
  version: job.version,
  ...("result" in job ? { result_json: job.result } : {}),
  ...(job.error === undefined ? {} : { error: { reason: job.error.reason, message: job.error.message } }),
  ...(job.awaitingCallback === undefined ? {} : { awaiting_callback: job.awaitingCallback }),
  ...(job.nextRetryAt === undefined ? {} : { next_retry_at: job.nextRetryAt }),
  ...(job.overdueAt === undefined ? {} : { overdue_at: new Date(job.overdueAt) }),
  ...(job.owner === undefined ? {} : { owner: job.owner }),
  ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
  created_at: new Date(job.createdAt),
  updated_at: new Date(job.updatedAt),
  ...(Job.isFinished(job.status) ? { finished_at: new Date(job.updatedAt) } : {})
})

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
      decode: (doc) => ({ ...summaryOfDocument(doc), payload: doc.payload_json }),
      encode: (job) => ({ ...documentOfSummary(job), payload_json: job.payload })
    })
  )
)

/**
 * The codec between a document read without its payload and a {@link Job.JobSummary}.
 *
 * @category codecs
 */
export const SummaryFromDocument = StoredSummary.pipe(
  Schema.decodeTo(
    Job.JobSummary,
    SchemaTransformation.transform({ decode: summaryOfDocument, encode: documentOfSummary })
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
 * The summary a document read with {@link summaryProjection} holds.
 *
 * @category codecs
 */
export const summaryFromDocument = Schema.decodeUnknownEffect(SummaryFromDocument)

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
 * fields, `updated_at = now`, `version + 1`; a field both set and unset ends up unset (and a
 * finished job loses `overdue_at`, see `JobStore.unsetFields`). `finished_at` follows the status so
 * the TTL index only ever sees finished jobs.
 *
 * @category transitions
 */
export const transitionUpdate = (transition: JobStore.Transition, now: Date): UpdateFilter<JobDocument> => {
  const set = transition.set ?? {}
  const unset = JobStore.unsetFields(transition)
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
    ...(set.overdueAt === undefined || unset.has("overdueAt") ? {} : { overdue_at: new Date(set.overdueAt) }),
    ...(finished ? { finished_at: now } : {})
  }
  const $unset = {
    ...(unset.has("result") ? { result_json: "" as const } : {}),
    ...(unset.has("error") ? { error: "" as const } : {}),
    ...(unset.has("awaitingCallback") ? { awaiting_callback: "" as const } : {}),
    ...(unset.has("nextRetryAt") ? { next_retry_at: "" as const } : {}),
    ...(unset.has("overdueAt") ? { overdue_at: "" as const } : {}),
    ...(finished ? {} : { finished_at: "" as const })
  }
  // An empty `$unset` is refused by MongoDB before 5.0, so it is left out rather than sent empty.
  return Object.keys($unset).length === 0 ? { $set, $inc: { version: 1 } } : { $set, $unset, $inc: { version: 1 } }
}

/**
 * The indexes made at start-up, each with the queries it serves. Every query names its index as a
 * hint ({@link listQuery}, {@link overdueQuery}), so a missing index fails the query instead of
 * scanning the collection. For the job lists, equality fields first, then `updated_at` and `_id` in
 * the list's order (newest first); for the sweeper, `overdue_at`, sparse since only unfinished jobs
 * have it. Named as MongoDB names an index by default, so one made by hand with the same keys is the
 * same index. The TTL index is handled apart ({@link finishedTtlIndexName}).
 *
 * Indexes of earlier versions (`status_1_updated_at_1`, `vendor_1_status_1`,
 * `owner_1_status_1_updated_at_-1`) are left alone: a process of that version may still run. Drop
 * them by hand once none does.
 *
 * @category constants
 */
export const indexes = [
  // `list` by status.
  { key: { status: 1, updated_at: -1, _id: -1 }, name: "status_1_updated_at_-1__id_-1" },
  // `list` by status and vendor.
  { key: { status: 1, vendor: 1, updated_at: -1, _id: -1 }, name: "status_1_vendor_1_updated_at_-1__id_-1" },
  // `list` by owner (an API key's jobs) and status.
  { key: { owner: 1, status: 1, updated_at: -1, _id: -1 }, name: "owner_1_status_1_updated_at_-1__id_-1" },
  // `list` by owner, status and vendor.
  {
    key: { owner: 1, status: 1, vendor: 1, updated_at: -1, _id: -1 },
    name: "owner_1_status_1_vendor_1_updated_at_-1__id_-1"
  },
  // `listOverdue` (the sweeper): the jobs that have an `overdue_at`, most overdue first.
  { key: { overdue_at: 1 }, name: "overdue_at_1", sparse: true }
] as const

/**
 * The name of one of {@link indexes}.
 *
 * @category constants
 */
export type IndexName = (typeof indexes)[number]["name"]

/**
 * A find as the store sends it: the filter and the options (sort, limit, projection, hint).
 *
 * @category queries
 */
export interface FindQuery {
  readonly filter: Filter<JobDocument>
  readonly options: FindOptions & { readonly hint: IndexName }
}

/**
 * The index that serves a `list` query with these filters.
 *
 * @category queries
 */
export const listIndexName = (query: Pick<JobStore.ListQuery, "vendor" | "owner">): IndexName =>
  query.owner === undefined
    ? query.vendor === undefined
      ? "status_1_updated_at_-1__id_-1"
      : "status_1_vendor_1_updated_at_-1__id_-1"
    : query.vendor === undefined
      ? "owner_1_status_1_updated_at_-1__id_-1"
      : "owner_1_status_1_vendor_1_updated_at_-1__id_-1"

/**
 * The find of a `list` page: the status (and vendor, and owner), after the cursor in newest-first
 * order, one more than the limit (to know whether a next page exists), without the payload. The
 * cursor's time bounds the index scan (`updated_at ≤ t`); the `$or` then drops the jobs of that
 * same millisecond that came before the cursor.
 *
 * @category queries
 */
export const listQuery = (query: JobStore.ListQuery): FindQuery => {
  const after = query.after
  return {
    filter: {
      status: query.status,
      ...(query.vendor === undefined ? {} : { vendor: query.vendor }),
      ...(query.owner === undefined ? {} : { owner: query.owner }),
      ...(after === undefined
        ? {}
        : {
            updated_at: { $lte: new Date(after.updatedAt) },
            $or: [
              { updated_at: { $lt: new Date(after.updatedAt) } },
              { updated_at: new Date(after.updatedAt), _id: { $lt: after.id } }
            ]
          })
    },
    options: {
      sort: { updated_at: -1, _id: -1 },
      limit: query.limit + 1,
      projection: summaryProjection,
      hint: listIndexName(query)
    }
  }
}

/**
 * The find of a `listOverdue` query: the jobs overdue before a time, most overdue first. Only
 * unfinished jobs have `overdue_at`.
 *
 * @category queries
 */
export const overdueQuery = (query: JobStore.OverdueQuery): FindQuery => ({
  filter: { overdue_at: { $lt: query.before } },
  options: { sort: { overdue_at: 1 }, limit: query.limit, hint: "overdue_at_1" }
})

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
 * The TTL index's name, fixed so start-up can find it again to change it.
 *
 * @category constants
 */
export const finishedTtlIndexName = "finished_at_1"

/**
 * `expireAfterSeconds` for a TTL: `undefined` when the TTL is off (absent or infinite), else whole
 * seconds up to 2^31 - 1, as MongoDB takes them; a TTL under 1 second is refused with a line that
 * says so (it would delete every finished job within a minute).
 *
 * @category constructors
 */
export const ttlSeconds = (ttl: Duration.Input | undefined): Effect.Effect<number | undefined, Config.ConfigError> => {
  if (ttl === undefined) return Effect.undefined
  const duration = Duration.fromInputUnsafe(ttl)
  const seconds = Duration.toSeconds(duration)
  if (!Number.isFinite(seconds)) return Effect.undefined
  if (seconds < 1) {
    return Effect.fail(
      new Config.ConfigError(
        new ConfigProvider.SourceError({
          message: `MONGODB_FINISHED_TTL is ${Duration.format(duration)}: it must be at least 1 second, or unset`
        })
      )
    )
  }
  return Effect.succeed(Math.min(Math.floor(seconds), 2_147_483_647))
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

const messageOf = (cause: unknown): string => {
  const message = cause instanceof Error ? cause.message : String(cause)
  return cause instanceof MongoServerError && cause.codeName !== undefined ? `${message} (${cause.codeName})` : message
}

// MongoDB's server error codes used here by name.
const DuplicateKey = 11000
const IndexOptionsConflict = 85
const IndexKeySpecsConflict = 86
const NamespaceNotFound = 26
const IndexNotFound = 27
const IndexBuildAborted = 276

/**
 * The server's answers that mean "not now": the server or its replica set is changing, busy or
 * slow. The codes of the server's network, retriable, not-primary, time-limit, interruption and
 * overload categories (`src/mongo/base/error_codes.yml`), and the conflicts that pass.
 */
const transientCodes = new Set<number>([
  6, // HostUnreachable
  7, // HostNotFound
  24, // LockTimeout
  43, // CursorNotFound
  46, // LockBusy
  50, // MaxTimeMSExpired: our own `timeout`
  63, // StaleShardVersion
  64, // WriteConcernTimeout: the write is on the primary, not yet on a majority
  89, // NetworkTimeout
  91, // ShutdownInProgress
  100, // UnsatisfiableWriteConcern: too few members up for `majority`
  112, // WriteConflict
  133, // FailedToSatisfyReadPreference
  134, // ReadConcernMajorityNotAvailableYet
  145, // PooledConnectionsDropped
  150, // StaleEpoch
  175, // QueryPlanKilled
  189, // PrimarySteppedDown
  202, // NetworkInterfaceExceededTimeLimit
  216, // ElectionInProgress
  237, // CursorKilled
  249, // StaleDbVersion
  262, // ExceededTimeLimit
  365, // TemporarilyUnavailable
  402, // ResourceExhausted
  407, // PooledConnectionAcquisitionExceededTimeLimit
  433, // AdmissionQueueOverflow
  449, // RateLimitExceeded
  450, // PooledConnectionAcquisitionRejected
  453, // InterruptedDueToReshardingCriticalSection
  462, // IngressRequestRateLimitExceeded
  9001, // SocketException
  10058, // LegacyNotPrimary
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11601, // Interrupted
  11602, // InterruptedDueToReplStateChange
  13388, // StaleConfig
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  14031, // OutOfDiskSpace: every write fails until there is room again; no job's fault
  91331, // RetriableRemoteCommandFailure
  10045600 // InterruptedDueToFCVChange
])

// Labels the server or the driver puts on errors worth another try.
const transientLabels = [
  "RetryableWriteError",
  "TransientTransactionError",
  "RetryableError",
  "SystemOverloadedError",
  "ResetPool",
  "PoolRequestedRetry"
] as const

/**
 * Whether a failure may pass (`Unavailable`: the network, server selection, the pool, an election,
 * a timeout, a retryable code or label) or the server refused the operation for good (`Rejected`:
 * any other server error, such as a document over 16 MB, a validator, missing privileges or a bad
 * query; or a document the driver would not send). Anything else is `Unavailable`.
 *
 * @category errors
 */
export const classify = (cause: unknown): "Unavailable" | "Rejected" => {
  if (cause instanceof MongoServerError) {
    if (transientLabels.some((label) => cause.hasErrorLabel(label))) return "Unavailable"
    return transientCodes.has(Number(cause.code)) ? "Unavailable" : "Rejected"
  }
  return cause instanceof MongoInvalidArgumentError || BSON.BSONError.isBSONError(cause) ? "Rejected" : "Unavailable"
}

const failure =
  (what: string) =>
  (cause: unknown): JobStore.JobStoreError =>
    new JobStore.JobStoreError({ reason: classify(cause), message: `MongoDB: ${what}: ${messageOf(cause)}` })

const unavailable =
  (what: string) =>
  (cause: unknown): JobStore.JobStoreError =>
    new JobStore.JobStoreError({ reason: "Unavailable", message: `MongoDB: ${what}: ${messageOf(cause)}` })

const hasCode = (cause: unknown, ...codes: ReadonlyArray<number>): boolean =>
  cause instanceof MongoServerError && codes.includes(Number(cause.code))

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

/** A failed insert of `jobs`: `Duplicate` (the others are stored), or as {@link classify} says. */
const insertFailure =
  (jobs: ReadonlyArray<Job.Job>) =>
  (cause: unknown): JobStore.JobStoreError => {
    const existing = existingIds(jobs, cause)
    if (existing.length > 0) return JobStore.duplicate(existing)
    return failure(jobs.length === 1 ? `storing job ${jobs[0]!.id}` : `storing ${jobs.length} jobs`)(cause)
  }

// A document of the wrong shape would be read the same way again: `Rejected`, and the message names
// the job and the fault so an operator can repair the document.
const notStoredShape = (id: string) => (error: Schema.SchemaError) =>
  new JobStore.JobStoreError({
    reason: "Rejected",
    message: `MongoDB: the document of job ${id} does not have the stored shape: ${error.message}`
  })

const decodeStored = (id: string, raw: unknown) => fromDocument(raw).pipe(Effect.mapError(notStoredShape(id)))
const decodeSummary = (id: string, raw: unknown) => summaryFromDocument(raw).pipe(Effect.mapError(notStoredShape(id)))

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
 * Makes the indexes and settles the TTL index, tolerating other processes doing the same at once:
 * making an index that exists is a no-op; a TTL index of another duration is dropped (already gone
 * is fine: another process dropped it) and made again, a few times over if other processes drop or
 * make it meanwhile. Without a TTL the TTL index is left as it is: another process may rely on it.
 * No other index is ever dropped, so no process's queries lose an index another made.
 */
const settleIndexes = Effect.fnUntraced(function* (
  collection: Collection<JobDocument>,
  expireAfterSeconds: number | undefined,
  what: string
) {
  const indexFailure = unavailable(`making the indexes of ${what}`)
  yield* Effect.tryPromise({
    try: () => collection.createIndexes(indexes.map((index) => ({ ...index }))),
    catch: indexFailure
  })
  if (expireAfterSeconds === undefined) return
  const ttlIndex = { key: { finished_at: 1 }, name: finishedTtlIndexName, expireAfterSeconds } as const
  const dropTtl = Effect.tryPromise({
    try: () => collection.dropIndex(finishedTtlIndexName),
    catch: (cause) => cause
  }).pipe(
    Effect.catchIf(
      (cause) => hasCode(cause, IndexNotFound, NamespaceNotFound),
      () => Effect.void
    )
  )
  const conflict = (cause: unknown) => hasCode(cause, IndexOptionsConflict, IndexKeySpecsConflict)
  yield* Effect.tryPromise({ try: () => collection.createIndexes([ttlIndex]), catch: (cause) => cause }).pipe(
    // Another duration: dropped, then made again by the retry. A build another process's drop
    // aborted is made again too.
    Effect.tapError((cause) => (conflict(cause) ? dropTtl : Effect.void)),
    Effect.retry({ times: 3, while: (cause) => conflict(cause) || hasCode(cause, IndexBuildAborted) }),
    Effect.mapError((cause) =>
      conflict(cause)
        ? unavailable(
            `making the TTL index of ${what} (${expireAfterSeconds} s): made again, it still conflicts (another process starting with another MONGODB_FINISHED_TTL, or an index on finished_at made by hand)`
          )(cause)
        : indexFailure(cause)
    )
  )
})

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
    get: Effect.fnUntraced(function* (id: Job.JobId) {
      const raw = yield* Effect.tryPromise({
        try: () => collection.findOne({ _id: id }, { maxTimeMS }),
        catch: failure(`reading job ${id}`)
      })
      return raw === null ? Option.none() : Option.some(yield* decodeStored(id, raw))
    }),
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
    transition: Effect.fnUntraced(function* (transition: JobStore.Transition) {
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
    }),
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

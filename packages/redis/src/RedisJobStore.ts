/**
 * Core's {@link JobStore.JobStore} on Redis, so that one server process and any number of worker
 * processes share the jobs without MongoDB.
 *
 * Keys, under prefix `p` (`REDIS_PREFIX`, default `vendorflow:`), all named by {@link keys}, in
 * shards: `s` below is `p{j:<n>}:`, the shard of a job being a hash of its id (see `RedisKeys`; one
 * shard on one Redis, 16 on Redis Cluster). Every script touches one shard's keys, which share one
 * hash slot; a batch runs one script per shard, and a listing reads every shard's index and merges.
 * - `s` + `job:<id>`: a hash per job with a fixed set of fields, whatever the payload holds:
 *   `id`, `vendor`, `status`, `owner`, `traceparent`, `createdAt`, `updatedAt`, `nextRetryAt`,
 *   `overdueAt` as is; `attempts`, `run` and `version` as integers (so `HINCRBY` can count versions;
 *   a hash written before `run` existed reads as run 1); `payload`, `result`, `error` and
 *   `awaitingCallback` as JSON text, so a payload may use any key (`$where`, `a.b`) and a `null`
 *   result stays `null`.
 * - `s` + `jobs:<status>`, `jobs:<status>:vendor`, `jobs:<status>:owner`,
 *   `jobs:<status>:owner-vendor`: the listing indexes of a status, sorted sets read in byte order
 *   (`src/lua/jobIndexes.lua` says how): all its jobs, by vendor, by owner, by owner and vendor,
 *   each in time order. A listing, filtered or not, is a seek in one of them, so an owner's jobs
 *   page exactly however many jobs of others there are.
 * - `s` + `overdue`: the overdue index, a sorted set of the ids of the unfinished jobs that have an
 *   `overdueAt`, scored by it in ms, for `listOverdue`.
 *
 * How the operations map onto Redis (round trips in brackets):
 * - `create` and `createMany` [1]: one script for all the jobs of a shard (per job `EXISTS`, then `ZADD`s +
 *   `HSET`); an existing id fails with `Duplicate`, after the other jobs are stored.
 * - the job service's submissions, on one Redis [1]: {@link layerStoreAndQueue} stores a lot of
 *   new jobs as `createMany` does and adds their entries to their vendors' streams as
 *   `JobQueue.enqueueMany` does, in one script.
 * - `get` [1]: `HGETALL`.
 * - `getMany` [1, none for no ids]: `HMGET` of every field but the payload, one script for several
 *   ids of a shard (the shards' at once).
 * - `transition` [1]: refused with `InvalidTransition` before any I/O when {@link JobStore.isAllowed}
 *   says no; otherwise one script that is the compare-and-set: status (and version, when given)
 *   checked, fields set and unset, version + 1, the index members moved (and the overdue score
 *   kept in step), the new hash returned. Same semantics as {@link JobStore.applyTransition}; "now"
 *   is the caller's `Clock`.
 * - `claim` [1]: one script (`jobClaims`) that is the engine's claim as a compare-and-set on what
 *   the job is now: applied only while it is pending, of the vendor, under its attempt limit;
 *   moves it as `transition` would, and returns the hash and the `updatedAt` from before.
 * - `list` [1 a batch, usually 1]: `ZREVRANGEBYLEX` on the index the query names, from the cursor,
 *   in every shard at once, merged; then the jobs' fields but the payload as `getMany` reads them.
 * - `listOverdue` [2]: `ZRANGEBYSCORE` on every shard's overdue index, merged by score, then the hashes with `HGETALL`s sent
 *   back to back on the one connection (pipelined, one wait); an id whose hash is gone is removed
 *   from the index, so it cannot hold the head of it.
 * Ids whose hash has expired, or whose job moved on between the two reads, are left out of the
 * listings, so `listOverdue` may return fewer than `limit`; `list` reads on (a bounded number of
 * members) and, if it stops short, answers a page with a cursor where it stopped.
 *
 * Every read is decoded with the job schema: a hash of the wrong shape (written by hand, or by a
 * different version) fails with a typed {@link JobStore.JobStoreError} of reason `Rejected` whose
 * message names the key, not with a defect: reading it again would fail the same way. A Redis that
 * is down or not answering fails every operation at once with `Unavailable` (the connection does
 * not queue commands while disconnected).
 *
 * Expiry of finished jobs (`finishedTtl`, `REDIS_JOB_TTL`; off by default): a transition into
 * `complete` or `failed` sets the hash's TTL, and one out of `failed` (an operator's retry) removes
 * it again. The index members stay, so listings work for every status; each transition into a
 * finished status trims the members older than the TTL from the job's groups (its vendor's, its
 * owner's), whose hashes are gone by then. Members of a group that no job enters again stay until
 * one does; the readers skip them. Give every process the same `REDIS_JOB_TTL`: a job that
 * finished without a TTL keeps its hash but can be trimmed from the indexes by a process with one.
 * A job created already finished gets no TTL (nothing here creates one).
 *
 * Scripts are in `src/lua/` (`jobCreate`, `jobGetMany`, `jobTransitions`, `jobClaims`,
 * `jobIntake`, and `jobIndexes`, which the ones that write share), their KEYS and ARGV documented
 * in their headers; each declares every key it touches.
 *
 * Layers: {@link layer} (over a provided {@link RedisConnection.RedisConnection}),
 * {@link layerConfig} (`REDIS_URL`, `REDIS_PREFIX`, `REDIS_JOB_TTL`) and
 * {@link layerStoreAndQueue}.
 *
 * @since 0.1.0
 */
import { Job, JobQueue, JobService, JobStore } from "@vendorflow/core"
import { Clock, Config, Duration, Effect, Exit, Layer, Option, Request, RequestResolver, Result, Schema } from "effect"
import { Redis } from "effect/persistence"
import * as Lua from "./internal/lua.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisJobQueue from "./RedisJobQueue.ts"
import * as RedisKeys from "./RedisKeys.ts"

// How many batches of index members one `list` page reads at most. Every member is an answer
// unless its job expired or moved on meanwhile, so the first batch is nearly always the last; the
// bound keeps a page's cost bounded when a run of expired members is long.
const listBatches = 20

/**
 * Store settings; every field has a default.
 *
 * @category models
 */
export interface Options {
  /**
   * How long a job is kept after it completes or fails; off (kept for ever) when absent, zero or
   * infinite.
   */
  readonly finishedTtl?: Duration.Input | undefined
  /**
   * How many shards the jobs are spread over (see `RedisKeys.jobShards`); default 1 on one Redis,
   * 16 on Redis Cluster. Part of the key layout: the same in every process, for the life of the data.
   */
  readonly shards?: number | undefined
}

/**
 * Runs `run` once per shard on the items of that shard, all at once, and gives each item its reply
 * back in its place: a script's keys must share one hash slot on Redis Cluster.
 */
const perShard = <A, B, E>(
  key: ReturnType<typeof keys>,
  items: ReadonlyArray<A>,
  idOf: (item: A) => string,
  run: (shard: ShardKeys, items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>, E>
): Effect.Effect<Array<B | undefined>, E> => {
  const groups = new Map<ShardKeys, Array<number>>()
  items.forEach((item, i) => {
    const shard = key.of(idOf(item))
    const group = groups.get(shard)
    if (group === undefined) groups.set(shard, [i])
    else group.push(i)
  })
  const replies = new Array<B | undefined>(items.length)
  return Effect.as(
    Effect.forEach(
      groups,
      ([shard, positions]) =>
        Effect.map(
          run(
            shard,
            positions.map((i) => items[i]!)
          ),
          (got) => positions.forEach((position, i) => (replies[position] = got[i]))
        ),
      { concurrency: "unbounded", discard: true }
    ),
    replies
  )
}

/**
 * The Redis keys of the store under `prefix` over `shards` shards (see `RedisKeys`): every key the
 * store uses is named here. `shards` lists each shard's keys; `of` gives those of a job's shard,
 * `job` its hash. The indexes and the overdue index named at the top level are the first shard's:
 * all of them on a store of one shard.
 *
 * @category utils
 */
export const keys = (prefix: string, shards = 1) => {
  const all = Array.from({ length: Math.max(1, Math.floor(shards)) }, (_, shard) =>
    RedisKeys.jobShardKeys(prefix, shard)
  )
  const of = (id: string): ShardKeys => all[RedisKeys.jobShard(id, all.length)]!
  return {
    ...all[0]!,
    shards: all as ReadonlyArray<ShardKeys>,
    of,
    job: (id: string): string => of(id).job(id),
    /** The first shard's index of all the jobs in `status`, by time. */
    status: (status: Job.JobStatus): string => all[0]!.indexes(status)[0]
  }
}

/**
 * The keys of one shard of the store.
 *
 * @category models
 */
export type ShardKeys = ReturnType<typeof RedisKeys.jobShardKeys>

/**
 * The start of the index members of the jobs of `values` (an owner, a vendor, or both), as
 * `lua/jobIndexes.lua` writes it: each value as its length in bytes, `:`, itself, `:`.
 *
 * @category utils
 */
export const indexGroup = (values: ReadonlyArray<string>): string =>
  values.map((value) => `${Buffer.byteLength(value)}:${value}:`).join("")

/**
 * The index a listing reads, and the group its jobs have there.
 *
 * @category utils
 */
export const listIndex = (
  key: Pick<ShardKeys, "indexes">,
  query: Pick<JobStore.ListQuery, "status" | "vendor" | "owner">
): { readonly index: string; readonly group: string } => {
  const [all, byVendor, byOwner, byOwnerVendor] = key.indexes(query.status)
  if (query.owner === undefined) {
    return query.vendor === undefined
      ? { index: all, group: "" }
      : { index: byVendor, group: indexGroup([query.vendor]) }
  }
  return query.vendor === undefined
    ? { index: byOwner, group: indexGroup([query.owner]) }
    : { index: byOwnerVendor, group: indexGroup([query.owner, query.vendor]) }
}

// An index member ends with the job's updatedAt (24 characters), ":" and its id (36). Not checked:
// a member of another shape names no hash, and is skipped like an expired job's.
const positionOf = (member: string): JobStore.Cursor => ({
  updatedAt: member.slice(-61, -37),
  id: Job.JobId.make(member.slice(-36), { disableChecks: true })
})

/** The optional fields as stored, for a new job and for a transition's patch alike. */
const optionalFields = (fields: Pick<JobStore.Patch, JobStore.OptionalField>): Array<string> => [
  // `result` may be `null`, a value to store; only a missing key means "none".
  ...("result" in fields && fields.result !== undefined ? ["result", JSON.stringify(fields.result)] : []),
  ...(fields.error === undefined
    ? []
    : ["error", JSON.stringify({ reason: fields.error.reason, message: fields.error.message })]),
  ...(fields.awaitingCallback === undefined ? [] : ["awaitingCallback", JSON.stringify(fields.awaitingCallback)]),
  ...(fields.nextRetryAt === undefined ? [] : ["nextRetryAt", fields.nextRetryAt]),
  ...(fields.overdueAt === undefined ? [] : ["overdueAt", fields.overdueAt])
]

/**
 * A job's hash, flat (field, value, …) as `HSET` takes it; {@link fromHash} reads it back.
 *
 * Written by hand rather than with the codec's encoder because it runs on every `POST /jobs`: the
 * job's class has checked its fields already, and checking them again costs as much as a good part
 * of a local round trip. The store's round-trip tests keep the two in step.
 *
 * @category codecs
 */
export const toHash = (job: Job.Job): Array<string> => [
  "id",
  job.id,
  "vendor",
  job.vendor,
  "status",
  job.status,
  "payload",
  JSON.stringify(job.payload),
  "attempts",
  String(job.attempts),
  "run",
  String(job.run),
  "version",
  String(job.version),
  "createdAt",
  job.createdAt,
  "updatedAt",
  job.updatedAt,
  ...(job.owner === undefined ? [] : ["owner", job.owner]),
  ...(job.traceparent === undefined ? [] : ["traceparent", job.traceparent]),
  ...optionalFields(job)
]

/**
 * The fields a transition's `set` writes, flat, stored as {@link toHash} stores them.
 *
 * @category codecs
 */
export const patchFields = (patch: JobStore.Patch): Array<string> => [
  ...(patch.attempts === undefined ? [] : ["attempts", String(patch.attempts)]),
  ...(patch.run === undefined ? [] : ["run", String(patch.run)]),
  ...optionalFields(patch)
]

const withIndexes = (script: string) => `${Lua.load("jobIndexes")}\n${Lua.load(script)}`

/** A job's score in the overdue index, as the scripts take it: "" when it has no `overdueAt`. */
const overdueScore = (overdueAt: string | undefined): string | number =>
  overdueAt === undefined ? "" : Date.parse(overdueAt)

// What `createJobs` (jobCreate.lua) reads of new jobs: six keys each, then their arguments.
const createKeys = (shardOf: (id: string) => ShardKeys, jobs: ReadonlyArray<Job.Job>) =>
  jobs.flatMap((job) => {
    const shard = shardOf(job.id)
    return [shard.job(job.id), ...shard.indexes(job.status), shard.overdue]
  })
const createArgs = (jobs: ReadonlyArray<Job.Job>) =>
  jobs.flatMap((job) => {
    const fields = toHash(job)
    const owned = job.owner === undefined ? ["0", ""] : ["1", job.owner]
    return [job.id, job.updatedAt, job.vendor, ...owned, overdueScore(job.overdueAt), fields.length / 2, ...fields]
  })

// A batch's jobs are all in one shard (`key`), so the script's keys share one hash slot.
const createScript = Redis.script(
  (key: ShardKeys, jobs: ReadonlyArray<Job.Job>) => [...createKeys(() => key, jobs), ...createArgs(jobs)],
  { numberOfKeys: (_key, jobs) => 6 * jobs.length, lua: `${withIndexes("jobCreate")}\nreturn createJobs(1, 1)` }
).withReturnType<ReadonlyArray<Job.JobId>>()

// A lot of new jobs stored and queued together (jobIntake.lua), on one Redis: its keys lie in
// several hash slots, so never on Redis Cluster.
type Lot = ReadonlyArray<readonly [vendor: string, jobs: ReadonlyArray<Job.Job>]>
const intakeScript = Redis.script(
  (key: ReturnType<typeof keys>, streams: ReadonlyArray<string>, maxLength: number, lot: Lot) => {
    const jobs = lot.flatMap(([, vendorJobs]) => vendorJobs)
    return [
      ...streams,
      ...createKeys(key.of, jobs),
      RedisJobQueue.group,
      maxLength,
      streams.length,
      ...lot.map(([, vendorJobs]) => vendorJobs.length),
      ...createArgs(jobs)
    ]
  },
  {
    numberOfKeys: (_key, streams, _maxLength, lot) =>
      streams.length + 6 * lot.reduce((sum, [, jobs]) => sum + jobs.length, 0),
    lua: [withIndexes("jobCreate"), Lua.load("enqueue"), Lua.load("jobIntake")].join("\n")
  }
).withReturnType<readonly [ReadonlyArray<Job.JobId>, ReadonlyArray<readonly [number, string]>]>()

// The hash fields of a job's summary: every field but the payload.
const summaryFields = Object.keys(Job.JobSummary.fields)

const getManyScript = Redis.script(
  (key: ShardKeys, ids: ReadonlyArray<string>) => [...ids.map((id) => key.job(id)), ...summaryFields],
  { numberOfKeys: (_key, ids) => ids.length, lua: Lua.load("jobGetMany") }
).withReturnType<ReadonlyArray<ReadonlyArray<string | null>>>()

/** One transition as `jobTransitions` takes it: its ten keys, then its arguments. */
interface ScriptTransition {
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string | number>
}

const transitionsScript = Redis.script(
  (transitions: ReadonlyArray<ScriptTransition>) => [
    ...transitions.flatMap((transition) => transition.keys),
    ...transitions.flatMap((transition) => [transition.args.length, ...transition.args])
  ],
  { numberOfKeys: (transitions) => 10 * transitions.length, lua: withIndexes("jobTransitions") }
).withReturnType<ReadonlyArray<ReadonlyArray<string>>>()

// A transition's request, batched with the others made in the same turn (see `transition`).
interface TransitionRequest extends Request.Request<Option.Option<Job.Job>, JobStore.JobStoreError> {
  readonly transition: JobStore.Transition
  readonly script: ScriptTransition
}
const TransitionRequest = Request.of<TransitionRequest>()

/** One claim as `jobClaims` takes it: its ten keys, then its six arguments. */
interface ScriptClaim {
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string | number>
}

const claimsScript = Redis.script(
  (claims: ReadonlyArray<ScriptClaim>) => [
    ...claims.flatMap((claim) => claim.keys),
    ...claims.flatMap((claim) => claim.args)
  ],
  { numberOfKeys: (claims) => 10 * claims.length, lua: withIndexes("jobClaims") }
).withReturnType<ReadonlyArray<ReadonlyArray<string | ReadonlyArray<string>>>>()

// A claim's request, batched with the others made in the same turn (the claims of a take's jobs).
interface ClaimRequest extends Request.Request<Option.Option<JobStore.Claimed>, JobStore.JobStoreError> {
  readonly claim: JobStore.Claim
  readonly script: ScriptClaim
}
const ClaimRequest = Request.of<ClaimRequest>()

/** A hash as `HGETALL` returns it, flat, as a record. */
const recordOf = (flat: ReadonlyArray<string>): Record<string, string> => {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!
  return record
}

const decodeJob = Schema.decodeUnknownResult(Job.Job)
const decodeSummary = Schema.decodeUnknownResult(Job.JobSummary)

// The optional fields, as `toHash` stores them.
const jsonFields = ["payload", "result", "error", "awaitingCallback"] as const
const textFields = ["nextRetryAt", "overdueAt", "owner", "traceparent"] as const

/**
 * The fields of a hash as {@link toHash} wrote them, ready for the job's schema: the JSON fields
 * parsed and the counters read as numbers. Written by hand rather than as a codec over the hash for
 * the reason `toHash` is: it runs on every `GET /jobs/{id}`, and the codec cost twice as much.
 */
const decodeHash = <A>(
  hash: Readonly<Record<string, string>>,
  decode: (fields: Record<string, unknown>) => Result.Result<A, Schema.SchemaError>
): Result.Result<A, string> => {
  try {
    const fields: Record<string, unknown> = {
      id: hash["id"],
      vendor: hash["vendor"],
      status: hash["status"],
      attempts: Number(hash["attempts"]),
      run: hash["run"] === undefined ? 1 : Number(hash["run"]),
      version: Number(hash["version"]),
      createdAt: hash["createdAt"],
      updatedAt: hash["updatedAt"]
    }
    for (const field of jsonFields) if (hash[field] !== undefined) fields[field] = JSON.parse(hash[field])
    for (const field of textFields) if (hash[field] !== undefined) fields[field] = hash[field]
    return Result.mapError(decode(fields), (error) => error.message)
  } catch (error) {
    return Result.fail(`a JSON field does not parse: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/**
 * Reads a job back from its hash, flat as `HGETALL` gives it and as {@link toHash} wrote it, every
 * field checked by the job's schema, as a new job's are. Fails with what is wrong when the hash is
 * not a stored job.
 *
 * @category codecs
 */
export const fromHash = (flat: ReadonlyArray<string>): Result.Result<Job.Job, string> =>
  decodeHash(recordOf(flat), decodeJob)

/**
 * Reads a job's summary back from the values of its summary's fields, in the order of
 * `Job.JobSummary`'s fields, as `HMGET` gives them (`null` for a field the hash lacks).
 *
 * @category codecs
 */
export const summaryFromValues = (values: ReadonlyArray<string | null>): Result.Result<Job.JobSummary, string> => {
  const hash: Record<string, string> = {}
  summaryFields.forEach((field, i) => {
    const value = values[i]
    if (value !== undefined && value !== null) hash[field] = value
  })
  return decodeHash(hash, decodeSummary)
}

/**
 * The TTL of finished jobs in whole ms, or 0 when it is off.
 *
 * @category utils
 */
export const ttlMillis = (ttl: Duration.Input | undefined): number => {
  if (ttl === undefined) return 0
  const millis = Duration.toMillis(Duration.fromInputUnsafe(ttl))
  return Number.isFinite(millis) && millis > 0 ? Math.max(1, Math.round(millis)) : 0
}

const keysOf = (prefix: string, cluster: boolean, options: Options) =>
  keys(prefix, options.shards ?? (cluster ? RedisKeys.jobShards.cluster : RedisKeys.jobShards.single))

/**
 * The store over the connection in context.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const { prefix, redis, target, cluster } = yield* RedisConnection.RedisConnection
  const key = keysOf(prefix, cluster, options)
  const finishedTtlMillis = ttlMillis(options.finishedTtl)

  const unavailable = (what: string) => (error: Redis.RedisError) =>
    new JobStore.JobStoreError({
      reason: "Unavailable",
      message: `Redis at ${target}: ${what}: ${RedisConnection.causeMessage(error)}`
    })
  // Reading the hash again would find it just as it is.
  const rejected = (message: string) =>
    new JobStore.JobStoreError({ reason: "Rejected", message: `Redis at ${target}: ${message}` })
  const notAJob = (id: string) => (problem: string) =>
    rejected(`the hash ${key.job(id)} is not a stored job: ${problem}`)

  const decoded = (id: string, flat: ReadonlyArray<string>) => Result.mapError(fromHash(flat), notAJob(id))
  const decode = (id: string, flat: ReadonlyArray<string>) => Effect.fromResult(decoded(id, flat))

  /** A job's hash as `HGETALL` returns it, decoded; `None` when it is empty (there is no such job). */
  const found = (id: Job.JobId, flat: ReadonlyArray<string>) =>
    flat.length === 0 ? Effect.succeedNone : Effect.asSome(decode(id, flat))

  /** A job's summary as `HMGET` returns its fields, decoded; `None` when it has none (there is no such job). */
  const foundSummary = (id: string, values: ReadonlyArray<string | null>) =>
    values.every((value) => value === null)
      ? Effect.succeedNone
      : Effect.asSome(Effect.fromResult(Result.mapError(summaryFromValues(values), notAJob(id))))

  const get = Effect.fnUntraced(function* (id: Job.JobId) {
    const flat = yield* redis
      .send<ReadonlyArray<string>>("HGETALL", key.job(id))
      .pipe(Effect.mapError(unavailable(`reading job ${id}`)))
    return yield* found(id, flat)
  })

  /** The summaries of the jobs `ids` name, in their places. */
  const readSummaries = Effect.fnUntraced(function* (ids: ReadonlyArray<string>, what: string) {
    if (ids.length === 0) return []
    const replies = yield* perShard(key, ids, String, (shard, inShard) =>
      // The common batch under light load: a plain HMGET costs Redis less than running a script.
      inShard.length === 1
        ? Effect.map(
            redis.send<ReadonlyArray<string | null>>("HMGET", shard.job(inShard[0]!), ...summaryFields),
            (reply) => [reply]
          )
        : redis.eval(getManyScript)(shard, inShard)
    ).pipe(Effect.mapError(unavailable(what)))
    return yield* Effect.forEach(ids, (id, i) => foundSummary(id, replies[i] ?? []))
  })

  const createMany = Effect.fnUntraced(function* (jobs: ReadonlyArray<Job.Job>) {
    if (jobs.length === 0) return
    const existing: Array<Job.JobId> = []
    yield* perShard(
      key,
      jobs,
      (job) => job.id,
      (shard, inShard) =>
        redis
          .eval(createScript)(shard, inShard)
          .pipe(
            Effect.map((found) => {
              existing.push(...found)
              return []
            })
          )
    ).pipe(
      Effect.mapError(unavailable(jobs.length === 1 ? `storing job ${jobs[0]!.id}` : `storing ${jobs.length} jobs`))
    )
    if (existing.length > 0) return yield* JobStore.duplicate(existing)
  })

  // The transitions made in one turn (the claims, or the completions, of the jobs a worker took
  // together) go to Redis as one script: Effect's request batching collects them. Each keeps its
  // own outcome.
  const transitions = RequestResolver.make<TransitionRequest>((entries) => {
    const { transition } = entries[0].request
    const what =
      entries.length === 1
        ? `moving job ${transition.id} from ${transition.from} to ${transition.to}`
        : `moving ${entries.length} jobs`
    return perShard(
      key,
      entries,
      (entry) => entry.request.transition.id,
      (_shard, inShard) => redis.eval(transitionsScript)(inShard.map((entry) => entry.request.script))
    ).pipe(
      Effect.mapError(unavailable(what)),
      Effect.map((replies) =>
        entries.forEach((entry, i) => {
          const reply = replies[i] ?? []
          if (reply.length === 0) return entry.completeUnsafe(Exit.succeed(Option.none()))
          // One string: the problem with this job's hash; nothing was written for it.
          if (reply.length === 1) return entry.completeUnsafe(Exit.fail(rejected(reply[0]!)))
          const job = decoded(entry.request.transition.id, reply)
          entry.completeUnsafe(Result.isSuccess(job) ? Exit.succeed(Option.some(job.success)) : Exit.fail(job.failure))
        })
      )
    )
  })

  // The claims made in one turn (those of the jobs a worker took together) go to Redis as one
  // script, as the transitions do.
  const claims = RequestResolver.make<ClaimRequest>((entries) =>
    perShard(
      key,
      entries,
      (entry) => entry.request.claim.id,
      (_shard, inShard) => redis.eval(claimsScript)(inShard.map((entry) => entry.request.script))
    ).pipe(
      Effect.mapError(
        unavailable(
          entries.length === 1 ? `claiming job ${entries[0].request.claim.id}` : `claiming ${entries.length} jobs`
        )
      ),
      Effect.map((replies) =>
        entries.forEach((entry, i) => {
          const { id } = entry.request.claim
          const [first, hash] = replies[i] ?? []
          if (first === undefined) return entry.completeUnsafe(Exit.succeed(Option.none()))
          // One string: the problem with this job's hash; nothing was written for it.
          if (typeof first !== "string" || typeof hash !== "object") {
            return entry.completeUnsafe(Exit.fail(rejected(String(first))))
          }
          const job = decoded(id, hash)
          entry.completeUnsafe(
            Result.isSuccess(job)
              ? Exit.succeed(Option.some({ job: job.success, waitingSince: first }))
              : Exit.fail(job.failure)
          )
        })
      )
    )
  )

  return JobStore.JobStore.of({
    create: (job) => createMany([job]),
    createMany,
    get,
    getMany: (ids) => readSummaries(ids, ids.length === 1 ? `reading job ${ids[0]}` : `reading ${ids.length} jobs`),
    transition: Effect.fnUntraced(function* (transition: JobStore.Transition) {
      if (!JobStore.isAllowed(transition)) return yield* JobStore.invalidTransition(transition)
      const nowMillis = yield* Clock.currentTimeMillis
      const set = patchFields(transition.set ?? {})
      const unset = JobStore.unsetFields(transition)
      const ttl = Job.isFinished(transition.to) ? finishedTtlMillis : 0
      const shard = key.of(transition.id)
      const script: ScriptTransition = {
        keys: [
          shard.job(transition.id),
          ...shard.indexes(transition.from),
          ...shard.indexes(transition.to),
          shard.overdue
        ],
        args: [
          transition.id,
          transition.from,
          transition.to,
          transition.expectedVersion === undefined ? "" : String(transition.expectedVersion),
          new Date(nowMillis).toISOString(),
          ttl,
          ttl > 0 ? new Date(nowMillis - ttl).toISOString() : "",
          Job.isFinished(transition.from) && !Job.isFinished(transition.to) ? "1" : "0",
          unset.has("overdueAt") ? "-" : overdueScore(transition.set?.overdueAt),
          set.length / 2,
          ...set,
          ...unset
        ]
      }
      return yield* Effect.request(TransitionRequest({ transition, script }), transitions)
    }),
    claim: Effect.fnUntraced(function* (claim: JobStore.Claim) {
      const now = new Date(yield* Clock.currentTimeMillis).toISOString()
      const shard = key.of(claim.id)
      const script: ScriptClaim = {
        keys: [shard.job(claim.id), ...shard.indexes("pending"), ...shard.indexes("processing"), shard.overdue],
        args: [claim.id, claim.vendor, claim.maxAttempts, now, claim.overdueAt, overdueScore(claim.overdueAt)]
      }
      return yield* Effect.request(ClaimRequest({ claim, script }), claims)
    }),
    listOverdue: Effect.fnUntraced(function* (query: JobStore.OverdueQuery) {
      const limit = Math.floor(query.limit)
      // ZRANGEBYSCORE reads a negative count as "no limit".
      if (!(limit > 0)) return []
      const what = "listing overdue jobs"
      // The first `limit` of each shard, merged: the first `limit` of all.
      const scored = yield* Effect.forEach(
        key.shards,
        (shard) =>
          redis
            .send<ReadonlyArray<string>>(
              "ZRANGEBYSCORE",
              shard.overdue,
              "-inf",
              `(${query.before.getTime()}`,
              "WITHSCORES",
              "LIMIT",
              "0",
              String(limit)
            )
            .pipe(
              Effect.map((flat) =>
                Array.from({ length: flat.length / 2 }, (_, i) => ({
                  id: flat[2 * i]!,
                  score: Number(flat[2 * i + 1])
                }))
              )
            ),
        { concurrency: "unbounded" }
      ).pipe(Effect.mapError(unavailable(what)))
      const ids = scored
        .flat()
        .sort((a, b) => a.score - b.score)
        .slice(0, limit)
        .map(({ id }) => id)
      // Sent together, so the replies come back in one wait rather than one per job.
      const hashes = yield* Effect.forEach(
        ids,
        (id) =>
          redis.send<ReadonlyArray<string>>("HGETALL", key.job(id)).pipe(Effect.map((flat) => [id, flat] as const)),
        { concurrency: "unbounded" }
      ).pipe(Effect.mapError(unavailable(what)))
      const gone = hashes.filter(([, flat]) => flat.length === 0).map(([id]) => id)
      yield* perShard(key, gone, String, (shard, inShard) =>
        Effect.as(redis.send("ZREM", shard.overdue, ...inShard), [])
      ).pipe(Effect.mapError(unavailable(what)))
      const jobs = yield* Effect.forEach(
        hashes.filter(([, flat]) => flat.length > 0),
        ([id, flat]) => decode(id, flat)
      )
      return jobs.filter((job) => JobStore.isOverdue(job, query.before))
    }),
    list: Effect.fnUntraced(function* (query: JobStore.ListQuery) {
      const limit = Math.max(0, Math.floor(query.limit))
      if (limit === 0) return { jobs: [] }
      const what = `listing ${query.status} jobs`
      const { group } = listIndex(key, query)
      const found: Array<Job.JobSummary> = []
      // Newest first: down the index from the cursor, within the query's group; on several shards,
      // down each shard's index, merged (members sort across shards as within one).
      let position = query.after
      for (let batch = 0; batch < listBatches; batch++) {
        const count = batch === 0 ? limit + 1 : Math.max(limit + 1 - found.length, 100)
        const from = position
        const perIndex = yield* Effect.forEach(
          key.shards,
          (shard) =>
            redis.send<ReadonlyArray<string>>(
              "ZREVRANGEBYLEX",
              listIndex(shard, query).index,
              from === undefined ? (group === "" ? "+" : `(${group};`) : `(${group}${from.updatedAt}:${from.id}`,
              group === "" ? "-" : `[${group}`,
              "LIMIT",
              "0",
              String(count)
            ),
          { concurrency: "unbounded" }
        ).pipe(Effect.mapError(unavailable(what)))
        const members =
          perIndex.length === 1
            ? perIndex[0]!
            : perIndex
                .flat()
                .sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))
                .slice(0, count)
        if (members.length === 0) return JobStore.pageOf(found, limit)
        position = positionOf(members.at(-1)!)
        const summaries = yield* readSummaries(
          members.map((member) => positionOf(member).id),
          what
        )
        // A member whose job expired or moved on since is no answer; the job is listed where it is now.
        for (const summary of summaries) {
          if (Option.isSome(summary) && JobStore.isListed(summary.value, query)) found.push(summary.value)
        }
        if (found.length > limit || members.length < count) return JobStore.pageOf(found, limit)
      }
      // Stopped short of a full page (a long run of expired members): the page so far, and the
      // cursor of the last member looked at, so the next page goes on from there.
      return { jobs: found, next: position }
    })
  })
})

/**
 * The store over a provided {@link RedisConnection.RedisConnection}.
 *
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<JobStore.JobStore, never, RedisConnection.RedisConnection> =>
  Layer.effect(JobStore.JobStore, make(options))

/**
 * Core's `JobService.StoreAndQueue` on one Redis, for the job store and queue in context: a lot of
 * new jobs is stored and queued by one script (`lua/jobIntake.lua`), so that it costs one round
 * trip instead of two and no crash of the server comes between storing a job and queueing it (a
 * stream that refuses the entries leaves its jobs stored, answered as unqueued). None on Redis
 * Cluster,
 * where the jobs' hashes and the vendors' streams lie in different hash slots; and should the
 * server refuse a script across slots all the same (a proxy in front of a sharded Redis answers
 * `CROSSSLOT`), the job service stores, then queues, from then on. `store` and `queue` must be the
 * options the store's and the queue's layers were given (`RedisBackend` passes them): the key
 * layout (`shards`) and the streams' length are read from them, not from those services.
 *
 * @category layers
 */
export const layerStoreAndQueue = (
  options: { readonly store?: Options | undefined; readonly queue?: RedisJobQueue.Options | undefined } = {}
): Layer.Layer<never, never, RedisConnection.RedisConnection | JobStore.JobStore | JobQueue.JobQueue> =>
  Layer.effect(
    JobService.StoreAndQueue,
    Effect.gen(function* () {
      const { prefix, redis, target, cluster } = yield* RedisConnection.RedisConnection
      if (cluster) return undefined
      const key = keysOf(prefix, false, options.store ?? {})
      const maxLength = RedisJobQueue.maxLengthOf(options.queue ?? {})
      let crossSlotRefused = false
      const write: JobService.StoreAndQueueWrite["write"] = (lot) =>
        crossSlotRefused
          ? Effect.succeed(undefined)
          : redis
              .eval(intakeScript)(
                key,
                lot.map(([vendor]) => RedisKeys.vendor(prefix, vendor).stream),
                maxLength,
                lot
              )
              .pipe(
                Effect.flatMap(([existing, unqueued]) =>
                  existing.length > 0
                    ? Effect.fail(JobStore.duplicate(existing))
                    : Effect.succeed(
                        unqueued.map(([stream, message]): JobService.Unqueued => {
                          const [vendor, jobs] = lot[stream - 1]!
                          const error = new JobQueue.JobQueueError({
                            reason: "Unavailable",
                            message: `Redis at ${target}: queueing ${jobs.length} ${vendor} job(s): ${message}`
                          })
                          return [vendor, jobs, error]
                        })
                      )
                ),
                // Refused before it ran, so nothing was written. Lots in flight meanwhile get the
                // same answer; the first to hear it says so.
                Effect.catchIf(
                  (error) => error._tag === "RedisError" && RedisConnection.causeMessage(error).startsWith("CROSSSLOT"),
                  () =>
                    Effect.suspend(() => {
                      const first = !crossSlotRefused
                      crossSlotRefused = true
                      return first
                        ? Effect.logWarning(
                            `Redis at ${target} refuses a script over several hash slots: new jobs are stored, then queued`
                          )
                        : Effect.void
                    }).pipe(Effect.as(undefined))
                ),
                Effect.mapError((error) =>
                  error._tag === "RedisError"
                    ? new JobStore.JobStoreError({
                        reason: "Unavailable",
                        message: `Redis at ${target}: storing and queueing new jobs: ${RedisConnection.causeMessage(error)}`
                      })
                    : error
                )
              )
      return { store: yield* JobStore.JobStore, queue: yield* JobQueue.JobQueue, write }
    })
  )

/**
 * The settings read by {@link layerConfig}: `REDIS_JOB_TTL`, how long finished jobs are kept (a
 * duration such as `7 days`; kept for ever when unset).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  finishedTtl: Config.option(Config.Duration("REDIS_JOB_TTL")).pipe(Config.map(Option.getOrUndefined))
})

/**
 * The store configured from the environment, over {@link RedisConnection.layerConfig} (shared with
 * the other layers of this package that are built alongside it).
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<JobStore.JobStore, RedisConnection.RedisConnectionError | Config.ConfigError> =
  Layer.unwrap(Effect.map(config, layer)).pipe(Layer.provide(RedisConnection.layerConfig))

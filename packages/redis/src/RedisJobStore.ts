/**
 * Core's {@link JobStore.JobStore} on Redis, so that one server process and any number of worker
 * processes share the jobs without MongoDB.
 *
 * Keys, under prefix `p` (`REDIS_PREFIX`, default `vendorflow:`):
 * - `p` + `job:<id>`: a hash per job with a fixed set of fields, whatever the payload holds:
 *   `id`, `vendor`, `status`, `createdAt`, `updatedAt` as is; `attempts`, `run` and `version` as
 *   integers (so `HINCRBY` can count versions; a hash written before `run` existed reads as run 1); `payload`, `result`, `error` and `awaitingCallback` as JSON
 *   text, so a payload may use any key (`$where`, `a.b`) and a `null` result stays `null`.
 * - `p` + `jobs:<status>`: a sorted set per status of the ids of the jobs in it, scored by
 *   `updatedAt` in ms, for `listStale`.
 *
 * How the operations map onto Redis (round trips in brackets):
 * - `create` and `createMany` [1]: one script for all the jobs (per job `EXISTS`, then `ZADD` +
 *   `HSET`); an existing id fails with `Duplicate`, after the other jobs are stored.
 * - `get` [1]: `HGETALL`.
 * - `getMany` [1, none for no ids]: one script, an `HGETALL` per id; one id is read as `get` reads it.
 * - `transition` [1]: refused with `InvalidTransition` before any I/O when {@link JobStore.isAllowed}
 *   says no; otherwise one script that is the compare-and-set: status (and version, when given)
 *   checked, fields set and unset, version + 1, id moved between the status sets, the new hash
 *   returned. Same semantics as {@link JobStore.applyTransition}; "now" is the caller's `Clock`.
 * - `listStale` [2]: `ZRANGEBYSCORE` on the status's set, then the hashes with `HGETALL`s sent
 *   back to back on the one connection (pipelined, one wait). Ids whose hash has expired, or whose
 *   job moved on between the two reads, are left out, so a call may return fewer than `limit`.
 *
 * Every read is decoded with the job schema: a hash of the wrong shape (written by hand, or by a
 * different version) fails with a typed {@link JobStore.JobStoreError} of reason `Unavailable`
 * whose message names the key, not with a defect. No reason fits exactly; `Unavailable` says "the
 * store can't serve this job", as MongoDB's store does for a corrupt document. A Redis that is down
 * or not answering fails every operation at once with `Unavailable` too (the connection does not
 * queue commands while disconnected).
 *
 * Expiry of finished jobs (`finishedTtl`, `REDIS_JOB_TTL`; off by default): a transition into
 * `complete` or `failed` sets the hash's TTL, and one out of `failed` (an operator's retry) removes
 * it again. The id stays in the finished status's set, so `listStale` works for every status;
 * each transition into a finished status trims that set's members older than the TTL, whose hashes
 * are gone by then. So for finished statuses `listStale` only sees jobs that still exist (it skips
 * the few members not yet trimmed). Give every process the same `REDIS_JOB_TTL`: a job that
 * finished without a TTL keeps its hash but can be trimmed from the set by a process with one.
 * A job created already finished gets no TTL (nothing here creates one).
 *
 * Scripts are in `src/lua/` (`jobCreate`, `jobGetMany`, `jobTransitions`), their KEYS and ARGV
 * documented in their headers; each declares every key it touches.
 *
 * Layers: {@link layer} (over a provided {@link RedisConnection.RedisConnection}) and
 * {@link layerConfig} (`REDIS_URL`, `REDIS_PREFIX`, `REDIS_JOB_TTL`).
 *
 * @since 0.1.0
 */
import { Job, JobStore } from "@vendorflow/core"
import { Clock, Config, Duration, Effect, Exit, Layer, Option, Request, RequestResolver, Result, Schema } from "effect"
import { Redis } from "effect/persistence"
import * as Lua from "./internal/lua.ts"
import * as RedisConnection from "./RedisConnection.ts"

// How many set members one `list` page reads at most: a vendor or owner filter on a set of all
// jobs may need to look past other vendors' or keys' jobs, but never without bound.
const listBatchSize = 200
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
}

/**
 * The Redis keys of the store under `prefix`.
 *
 * @category utils
 */
export const keys = (prefix: string) => ({
  job: (id: string): string => `${prefix}job:${id}`,
  status: (status: Job.JobStatus): string => `${prefix}jobs:${status}`
})

/** The optional fields as stored, for a new job and for a transition's patch alike. */
const optionalFields = (fields: Pick<JobStore.Patch, JobStore.OptionalField>): Array<string> => [
  // `result` may be `null`, a value to store; only a missing key means "none".
  ...("result" in fields && fields.result !== undefined ? ["result", JSON.stringify(fields.result)] : []),
  ...(fields.error === undefined
    ? []
    : ["error", JSON.stringify({ reason: fields.error.reason, message: fields.error.message })]),
  ...(fields.awaitingCallback === undefined ? [] : ["awaitingCallback", JSON.stringify(fields.awaitingCallback)]),
  ...(fields.nextRetryAt === undefined ? [] : ["nextRetryAt", fields.nextRetryAt])
]

/**
 * A job's hash, flat (field, value, …) as `HSET` takes it; {@link fromHash} reads it back.
 *
 * Written by hand rather than with the codec's encoder because it runs on every `POST /jobs`: the
 * job's class has checked its fields already, and checking them again cost about 30 µs a job, a
 * good part of a local round trip. The store's round-trip tests keep the two in step.
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

const createScript = Redis.script(
  (key: ReturnType<typeof keys>, jobs: ReadonlyArray<Job.Job>) => [
    ...jobs.flatMap((job) => [key.job(job.id), key.status(job.status)]),
    ...jobs.flatMap((job) => {
      const fields = toHash(job)
      return [job.id, Date.parse(job.updatedAt), fields.length / 2, ...fields]
    })
  ],
  { numberOfKeys: (_key, jobs) => 2 * jobs.length, lua: Lua.load("jobCreate") }
).withReturnType<ReadonlyArray<Job.JobId>>()

const getManyScript = Redis.script(
  (key: ReturnType<typeof keys>, ids: ReadonlyArray<Job.JobId>) => ids.map((id) => key.job(id)),
  { numberOfKeys: (_key, ids) => ids.length, lua: Lua.load("jobGetMany") }
).withReturnType<ReadonlyArray<ReadonlyArray<string>>>()

/** One transition as `jobTransitions` takes it: its three keys, then its arguments. */
interface ScriptTransition {
  readonly keys: readonly [job: string, fromSet: string, toSet: string]
  readonly args: ReadonlyArray<string | number>
}

const transitionsScript = Redis.script(
  (transitions: ReadonlyArray<ScriptTransition>) => [
    ...transitions.flatMap((transition) => transition.keys),
    ...transitions.flatMap((transition) => [transition.args.length, ...transition.args])
  ],
  { numberOfKeys: (transitions) => 3 * transitions.length, lua: Lua.load("jobTransitions") }
).withReturnType<ReadonlyArray<ReadonlyArray<string>>>()

// A transition's request, batched with the others made in the same turn (see `transition`).
interface TransitionRequest extends Request.Request<Option.Option<Job.Job>, JobStore.JobStoreError> {
  readonly transition: JobStore.Transition
  readonly script: ScriptTransition
}
const TransitionRequest = Request.of<TransitionRequest>()

/** A hash as `HGETALL` returns it, flat, as a record. */
const recordOf = (flat: ReadonlyArray<string>): Record<string, string> => {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!
  return record
}

const decodeJob = Schema.decodeUnknownResult(Job.Job)

// The optional fields, as `toHash` stores them.
const jsonFields = ["result", "error", "awaitingCallback"] as const
const textFields = ["nextRetryAt", "owner", "traceparent"] as const

/**
 * Reads a job back from its hash, flat as `HGETALL` gives it and as {@link toHash} wrote it: the
 * JSON fields parsed and the counters read as numbers here, then every field checked by the job's
 * schema, as a new job's are. Written by hand rather than as a codec over the hash for the reason
 * `toHash` is: it runs on every `GET /jobs/{id}`, and the codec cost twice as much (6 µs a job).
 * Fails with what is wrong when the hash is not a stored job.
 *
 * @category codecs
 */
export const fromHash = (flat: ReadonlyArray<string>): Result.Result<Job.Job, string> => {
  const hash = recordOf(flat)
  try {
    const fields: Record<string, unknown> = {
      id: hash["id"],
      vendor: hash["vendor"],
      status: hash["status"],
      payload: hash["payload"] === undefined ? undefined : JSON.parse(hash["payload"]),
      attempts: Number(hash["attempts"]),
      run: hash["run"] === undefined ? 1 : Number(hash["run"]),
      version: Number(hash["version"]),
      createdAt: hash["createdAt"],
      updatedAt: hash["updatedAt"]
    }
    for (const field of jsonFields) if (hash[field] !== undefined) fields[field] = JSON.parse(hash[field])
    for (const field of textFields) if (hash[field] !== undefined) fields[field] = hash[field]
    return Result.mapError(decodeJob(fields), (error) => error.message)
  } catch (error) {
    return Result.fail(`a JSON field does not parse: ${error instanceof Error ? error.message : String(error)}`)
  }
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

/**
 * The store over the connection in context.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const { prefix, redis, target } = yield* RedisConnection.RedisConnection
  const key = keys(prefix)
  const finishedTtlMillis = ttlMillis(options.finishedTtl)

  const unavailable = (what: string) => (error: Redis.RedisError) =>
    new JobStore.JobStoreError({
      reason: "Unavailable",
      message: `Redis at ${target}: ${what}: ${RedisConnection.causeMessage(error)}`
    })

  const decoded = (id: string, flat: ReadonlyArray<string>) =>
    Result.mapError(
      fromHash(flat),
      (problem) =>
        new JobStore.JobStoreError({
          reason: "Unavailable",
          message: `Redis at ${target}: the hash ${key.job(id)} is not a stored job: ${problem}`
        })
    )
  const decode = (id: string, flat: ReadonlyArray<string>) => Effect.fromResult(decoded(id, flat))

  /** A job's hash as `HGETALL` returns it, decoded; `None` when it is empty (there is no such job). */
  const found = (id: Job.JobId, flat: ReadonlyArray<string>) =>
    flat.length === 0 ? Effect.succeedNone : Effect.asSome(decode(id, flat))

  const get = Effect.fnUntraced(function* (id: Job.JobId) {
    const flat = yield* redis
      .send<ReadonlyArray<string>>("HGETALL", key.job(id))
      .pipe(Effect.mapError(unavailable(`reading job ${id}`)))
    return yield* found(id, flat)
  })

  const getMany = Effect.fnUntraced(function* (ids: ReadonlyArray<Job.JobId>) {
    if (ids.length === 0) return []
    // The common batch under light load: a plain HGETALL costs Redis less than running a script.
    if (ids.length === 1) return [yield* get(ids[0]!)]
    const flats = yield* redis
      .eval(getManyScript)(key, ids)
      .pipe(Effect.mapError(unavailable(`reading ${ids.length} jobs`)))
    return yield* Effect.forEach(ids, (id, i) => found(id, flats[i] ?? []))
  })

  const createMany = Effect.fnUntraced(function* (jobs: ReadonlyArray<Job.Job>) {
    if (jobs.length === 0) return
    const existing = yield* redis
      .eval(createScript)(key, jobs)
      .pipe(
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
    return redis
      .eval(transitionsScript)(entries.map((entry) => entry.request.script))
      .pipe(
        Effect.mapError(unavailable(what)),
        Effect.map((replies) =>
          entries.forEach((entry, i) => {
            const reply = replies[i] ?? []
            if (reply.length === 0) return entry.completeUnsafe(Exit.succeed(Option.none()))
            // One string: the problem with this job's hash; nothing was written for it.
            if (reply.length === 1) {
              const message = `Redis at ${target}: ${reply[0]}`
              return entry.completeUnsafe(Exit.fail(new JobStore.JobStoreError({ reason: "Unavailable", message })))
            }
            const job = decoded(entry.request.transition.id, reply)
            entry.completeUnsafe(
              Result.isSuccess(job) ? Exit.succeed(Option.some(job.success)) : Exit.fail(job.failure)
            )
          })
        )
      )
  })

  return JobStore.JobStore.of({
    create: (job) => createMany([job]),
    createMany,
    get,
    getMany,
    transition: Effect.fnUntraced(function* (transition: JobStore.Transition) {
      if (!JobStore.isAllowed(transition)) return yield* JobStore.invalidTransition(transition)
      const nowMillis = yield* Clock.currentTimeMillis
      const set = patchFields(transition.set ?? {})
      const script: ScriptTransition = {
        keys: [key.job(transition.id), key.status(transition.from), key.status(transition.to)],
        args: [
          transition.id,
          transition.from,
          transition.to,
          transition.expectedVersion === undefined ? "" : String(transition.expectedVersion),
          new Date(nowMillis).toISOString(),
          nowMillis,
          Job.isFinished(transition.to) ? finishedTtlMillis : 0,
          Job.isFinished(transition.from) && !Job.isFinished(transition.to) ? "1" : "0",
          set.length / 2,
          ...set,
          ...new Set(transition.unset)
        ]
      }
      return yield* Effect.request(TransitionRequest({ transition, script }), transitions)
    }),
    listStale: Effect.fnUntraced(function* (query: JobStore.StaleQuery) {
      const limit = Math.floor(query.limit)
      // ZRANGEBYSCORE reads a negative count as "no limit".
      if (!(limit > 0)) return []
      const before = query.updatedBefore.getTime()
      const what = `listing ${query.status} jobs`
      const ids = yield* redis
        .send<ReadonlyArray<string>>(
          "ZRANGEBYSCORE",
          key.status(query.status),
          "-inf",
          `(${before}`,
          "LIMIT",
          "0",
          String(limit)
        )
        .pipe(Effect.mapError(unavailable(what)))
      // Sent together, so the replies come back in one wait rather than one per job.
      const hashes = yield* Effect.forEach(
        ids,
        (id) =>
          redis.send<ReadonlyArray<string>>("HGETALL", key.job(id)).pipe(Effect.map((flat) => [id, flat] as const)),
        { concurrency: "unbounded" }
      ).pipe(Effect.mapError(unavailable(what)))
      const jobs = yield* Effect.forEach(
        hashes.filter(([, flat]) => flat.length > 0),
        ([id, flat]) => decode(id, flat)
      )
      return jobs.filter((job) => job.status === query.status && Date.parse(job.updatedAt) < before)
    }),
    list: Effect.fnUntraced(function* (query: JobStore.ListQuery) {
      const limit = Math.max(0, Math.floor(query.limit))
      const what = `listing ${query.status} jobs`
      const { after } = query
      // Newest first: the status's set by score (updatedAt ms) descending; equal scores come in
      // descending member order, which is the id order the cursor uses.
      const found: Array<Job.Job> = []
      let offset = 0
      for (let batch = 0; batch < listBatches && found.length <= limit; batch++) {
        const reply = yield* redis
          .send<ReadonlyArray<string>>(
            "ZREVRANGEBYSCORE",
            key.status(query.status),
            after === undefined ? "+inf" : String(Date.parse(after.updatedAt)),
            "-inf",
            "LIMIT",
            String(offset),
            String(listBatchSize)
          )
          .pipe(Effect.mapError(unavailable(what)))
        offset += reply.length
        const flats = yield* Effect.forEach(reply, (id) => redis.send<ReadonlyArray<string>>("HGETALL", key.job(id)), {
          concurrency: "unbounded"
        }).pipe(Effect.mapError(unavailable(what)))
        const jobs = yield* Effect.forEach(
          reply.flatMap((id, i) => (flats[i] !== undefined && flats[i].length > 0 ? [[id, flats[i]] as const] : [])),
          ([id, flat]) => decode(id, flat)
        )
        found.push(...jobs.filter((job) => JobStore.isListed(job, query)))
        if (reply.length < listBatchSize) break
      }
      return JobStore.pageOf(found.slice(0, limit + 1), limit)
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

/**
 * Core's {@link JobStore.JobStore} on SQLite: one row per job in the `jobs` table, shared by every
 * process that opens the same file.
 *
 * A row holds the job's summary (every field but the payload) and its payload as JSON, and the
 * columns its indexes read: `status`, `vendor`, `owner`, `updated_at` (the listings, newest first,
 * a seek whatever the filter), `overdue_at` (ms, only while unfinished: the sweeper's index) and
 * `expires_at` (ms, finished jobs only, when they expire).
 *
 * How the operations map onto SQLite:
 * - `create` and `createMany`: one `INSERT … ON CONFLICT DO NOTHING RETURNING id` per 500 jobs; an
 *   id that exists fails with `Duplicate`, after the others are stored.
 * - `transition`: the compare-and-set is the `UPDATE`'s `WHERE id = ? AND version = ?`: the new
 *   record is computed with core's {@link JobStore.applyTransition} from the row as read, and
 *   written only if nobody changed it meanwhile (else read again). One statement, never a lock held
 *   while JavaScript runs.
 * - `list`: one query on the index of the filter, from the cursor (`(updated_at, id) < (?, ?)`).
 * - `listOverdue`: one query on the overdue index.
 *
 * Finished jobs expire after `finishedTtl` (`SQLITE_JOB_TTL`; off by default): a job that expired
 * is no longer read or listed, and the backend's housekeeping deletes its row.
 *
 * Layers: {@link layer} (over a provided `SqlClient`).
 *
 * @since 0.1.0
 */
import { Job, JobStore } from "@vendorflow/core"
import { Array as Arr, Clock, Config, Duration, Effect, Layer, Option, Result, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

/**
 * Store settings.
 *
 * @category models
 */
export interface Options {
  /** How long a job is kept after it completes or fails; kept for ever when absent, zero or infinite. */
  readonly finishedTtl?: Duration.Input | undefined
}

interface Row {
  readonly summary: string
  readonly payload: string
  readonly expires_at: number | null
}

const decodeJob = Schema.decodeUnknownResult(Job.Job)
const decodeSummary = Schema.decodeUnknownResult(Job.JobSummary)

const parsed = <A>(
  id: string,
  text: () => unknown,
  decode: (input: unknown) => Result.Result<A, Schema.SchemaError>
): Result.Result<A, JobStore.JobStoreError> => {
  const rejected = (problem: string) =>
    new JobStore.JobStoreError({ reason: "Rejected", message: `SQLite: the row of job ${id} is not a job: ${problem}` })
  try {
    return Result.mapError(decode(text()), (error) => rejected(error.message))
  } catch (error) {
    return Result.fail(rejected(error instanceof Error ? error.message : String(error)))
  }
}

const jobOf = (id: string, row: Pick<Row, "summary" | "payload">) =>
  Effect.fromResult(
    parsed(id, () => ({ ...(JSON.parse(row.summary) as object), payload: JSON.parse(row.payload) }), decodeJob)
  )

const summaryOf = (id: string, summary: string) =>
  Effect.fromResult(parsed(id, () => JSON.parse(summary), decodeSummary))

/** The TTL in whole ms, or 0 when it is off. */
const ttlMillis = (ttl: Duration.Input | undefined): number => {
  if (ttl === undefined) return 0
  const millis = Duration.toMillis(Duration.fromInputUnsafe(ttl))
  return Number.isFinite(millis) && millis > 0 ? Math.max(1, Math.round(millis)) : 0
}

/** A job's indexed columns and its summary, as a row stores them. */
const columnsOf = (job: Job.Job, expiresAt: number | null) => ({
  status: job.status,
  updated_at: job.updatedAt,
  version: job.version,
  overdue_at: job.overdueAt === undefined ? null : Date.parse(job.overdueAt),
  expires_at: expiresAt,
  summary: JSON.stringify(Job.summaryOf(job))
})

/** How many jobs one `INSERT` stores at most (SQLite binds at most 32,766 values to a statement). */
const insertBatch = 500

/**
 * The store over the `SqlClient` in context (a database opened by `SqliteDatabase`).
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const sql = yield* SqlClient.SqlClient
  const finishedTtl = ttlMillis(options.finishedTtl)

  const unavailable = (what: string) => (error: SqlError.SqlError) =>
    new JobStore.JobStoreError({ reason: "Unavailable", message: `SQLite: ${what}: ${error.message}` })
  const live = (now: number) => sql`(expires_at IS NULL OR expires_at > ${now})`

  const createMany = Effect.fnUntraced(function* (jobs: ReadonlyArray<Job.Job>) {
    const stored = new Set<string>()
    for (let at = 0; at < jobs.length; at += insertBatch) {
      const rows: ReadonlyArray<Record<string, unknown>> = jobs.slice(at, at + insertBatch).map((job) => ({
        id: job.id,
        vendor: job.vendor,
        owner: job.owner ?? null,
        payload: JSON.stringify(job.payload),
        ...columnsOf(job, null)
      }))
      if (!Arr.isReadonlyArrayNonEmpty(rows)) continue
      const inserted = yield* sql<{ readonly id: string }>`INSERT INTO jobs ${sql.insert(rows)}
        ON CONFLICT (id) DO NOTHING RETURNING id`.pipe(
        Effect.mapError(unavailable(jobs.length === 1 ? `storing job ${jobs[0]!.id}` : `storing ${jobs.length} jobs`))
      )
      for (const row of inserted) stored.add(row.id)
    }
    const existing = jobs.filter((job) => !stored.has(job.id)).map((job) => job.id)
    if (existing.length > 0) return yield* JobStore.duplicate(existing)
  })

  const read = Effect.fnUntraced(function* (id: Job.JobId) {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* sql<Row>`SELECT summary, payload, expires_at FROM jobs WHERE id = ${id} AND ${live(now)}`.pipe(
      Effect.mapError(unavailable(`reading job ${id}`))
    )
    return rows[0]
  })

  const transition = Effect.fnUntraced(function* (transition: JobStore.Transition) {
    if (!JobStore.isAllowed(transition)) return yield* JobStore.invalidTransition(transition)
    const what = `moving job ${transition.id} from ${transition.from} to ${transition.to}`
    // Read, compute, write if unchanged: a writer that came in between makes us read again, and
    // then the job is either still as expected (we apply to the newer row) or not (None).
    while (true) {
      const row = yield* read(transition.id)
      if (row === undefined) return Option.none<Job.Job>()
      const current = yield* jobOf(transition.id, row)
      const now = yield* Clock.currentTimeMillis
      const next = JobStore.applyTransition(current, transition, new Date(now))
      if (next === undefined) return Option.none<Job.Job>()
      const expiresAt = Job.isFinished(next.status) && finishedTtl > 0 ? now + finishedTtl : null
      const written = yield* sql<{ readonly id: string }>`UPDATE jobs SET ${sql.update(columnsOf(next, expiresAt))}
        WHERE id = ${transition.id} AND version = ${current.version} RETURNING id`.pipe(
        Effect.mapError(unavailable(what))
      )
      if (written.length > 0) return Option.some(next)
    }
  })

  const get = (id: Job.JobId) =>
    Effect.flatMap(read(id), (row) => (row === undefined ? Effect.succeedNone : Effect.asSome(jobOf(id, row))))

  return JobStore.JobStore.of({
    create: (job) => createMany([job]),
    createMany,
    get,
    getMany: Effect.fnUntraced(function* (ids) {
      if (ids.length === 0) return []
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql<{ readonly id: string; readonly summary: string }>`SELECT id, summary FROM jobs
        WHERE ${sql.in("id", ids)} AND ${live(now)}`.pipe(
        Effect.mapError(unavailable(ids.length === 1 ? `reading job ${ids[0]}` : `reading ${ids.length} jobs`))
      )
      const byId = new Map(rows.map((row) => [row.id, row.summary]))
      return yield* Effect.forEach(ids, (id) => {
        const summary = byId.get(id)
        return summary === undefined ? Effect.succeedNone : Effect.asSome(summaryOf(id, summary))
      })
    }),
    transition,
    claim: JobStore.claimVia({ get, transition }),
    listOverdue: Effect.fnUntraced(function* (query) {
      const limit = Math.floor(query.limit)
      if (!(limit > 0)) return []
      const rows = yield* sql<{ readonly id: string; readonly summary: string; readonly payload: string }>`
        SELECT id, summary, payload FROM jobs WHERE overdue_at < ${query.before.getTime()}
        ORDER BY overdue_at LIMIT ${limit}`.pipe(Effect.mapError(unavailable("listing overdue jobs")))
      const jobs = yield* Effect.forEach(rows, (row) => jobOf(row.id, row))
      return jobs.filter((job) => JobStore.isOverdue(job, query.before))
    }),
    list: Effect.fnUntraced(function* (query) {
      const limit = Math.max(0, Math.floor(query.limit))
      if (limit === 0) return { jobs: [] }
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql<{ readonly id: string; readonly summary: string }>`SELECT id, summary FROM jobs
        WHERE ${sql.and([
          sql`status = ${query.status}`,
          ...(query.vendor === undefined ? [] : [sql`vendor = ${query.vendor}`]),
          ...(query.owner === undefined ? [] : [sql`owner = ${query.owner}`]),
          ...(query.after === undefined ? [] : [sql`(updated_at, id) < (${query.after.updatedAt}, ${query.after.id})`]),
          live(now)
        ])}
        ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`.pipe(
        Effect.mapError(unavailable(`listing ${query.status} jobs`))
      )
      const summaries = yield* Effect.forEach(rows, (row) => summaryOf(row.id, row.summary))
      return JobStore.pageOf(summaries, limit)
    })
  })
})

/**
 * The store over a provided `SqlClient`.
 *
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<JobStore.JobStore, never, SqlClient.SqlClient> =>
  Layer.effect(JobStore.JobStore, make(options))

/**
 * `SQLITE_JOB_TTL`: how long finished jobs are kept (a duration such as `7 days`; for ever when unset).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  finishedTtl: Config.option(Config.Duration("SQLITE_JOB_TTL")).pipe(Config.map(Option.getOrUndefined))
})

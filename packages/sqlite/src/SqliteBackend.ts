/**
 * Everything a deployment shares, on one SQLite file (core's `Backend`): the job store, the job
 * queue, the rate limits, the circuit breakers, the webhook replay guard, the workers' heartbeats
 * and the dashboard's statistics, with a `sqlite` health check. Several processes on one host (a
 * server and workers) share the file when they are given the same path.
 *
 * Housekeeping runs in every process, once a minute and at start: it deletes what has expired
 * (finished jobs past their TTL, spent replay keys, idle rate-limit and circuit rows, statistics older than
 * the hour a window reads) a batch at a time, and gives the freed pages back to the file system
 * (`PRAGMA incremental_vacuum`), so the file does not only grow.
 *
 * Offers {@link make} (explicit options) and {@link fromEnv} (`SQLITE_PATH`, `SQLITE_JOB_TTL` and
 * the `QUEUE_*` settings).
 *
 * @since 0.1.0
 */
import { Backend, Health, Stats } from "@vendorflow/core"
import { Clock, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as SqliteCircuitBreaker from "./SqliteCircuitBreaker.ts"
import * as SqliteDatabase from "./SqliteDatabase.ts"
import * as SqliteJobQueue from "./SqliteJobQueue.ts"
import * as SqliteJobStore from "./SqliteJobStore.ts"
import * as SqliteRateLimiter from "./SqliteRateLimiter.ts"
import * as SqliteRateLimitStore from "./SqliteRateLimitStore.ts"
import * as SqliteReplayGuard from "./SqliteReplayGuard.ts"
import * as SqliteStats from "./SqliteStats.ts"
import * as SqliteWorkers from "./SqliteWorkers.ts"

/**
 * The database's options (`path`, `busyTimeout`), the queue's and the job store's.
 *
 * @category models
 */
export interface Options extends SqliteDatabase.Options {
  readonly queue?: SqliteJobQueue.Options | undefined
  readonly store?: SqliteJobStore.Options | undefined
}

/** How many expired rows one statement deletes: a short write, however much has expired. */
const purgeBatch = 500

/**
 * One round of housekeeping: expired rows deleted, freed pages given back.
 *
 * @category housekeeping
 */
export const housekeep = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const now = yield* Clock.currentTimeMillis
  const purge = (table: string, condition: string) =>
    Effect.gen(function* () {
      while (true) {
        const deleted = yield* sql.unsafe<{ readonly rowid: number }>(
          `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${condition} LIMIT ${purgeBatch}) RETURNING rowid`
        )
        if (deleted.length < purgeBatch) return
      }
    })
  yield* purge("jobs", `expires_at <= ${now}`)
  yield* purge("replay_guard", `expires_at <= ${now}`)
  yield* purge("rate_limits", `expires_at <= ${now - 60_000}`)
  yield* purge("circuits", `expires_at <= ${now}`)
  yield* sql`DELETE FROM rate_slots WHERE expires_at <= ${now}`
  // `stats` has no rowid; its buckets are few (one row per field), so one statement does.
  yield* sql`DELETE FROM stats WHERE bucket < ${Math.floor(now / Stats.bucketMillis) - Stats.keptBuckets}`
  yield* sql`PRAGMA incremental_vacuum`
})

const housekeeping = Layer.effectDiscard(
  housekeep.pipe(
    Effect.catch((error) => Effect.logWarning(`SQLite housekeeping: ${error.message}`)),
    Effect.repeat(Schedule.spaced("1 minute")),
    Effect.forkScoped
  )
)

const health = Layer.effect(
  Health.Health,
  SqlClient.SqlClient.useSync((sql) =>
    Health.Health.of({
      checks: [{ name: "sqlite", check: sql`SELECT 1` }]
    })
  )
)

const over = (options: SqliteDatabase.Options, store: SqliteJobStore.Options, queue: SqliteJobQueue.Options) =>
  Layer.mergeAll(
    SqliteJobStore.layer(store),
    SqliteJobQueue.layer(queue),
    SqliteRateLimiter.layerStore,
    SqliteRateLimitStore.layer,
    SqliteCircuitBreaker.layerStore,
    SqliteReplayGuard.layer,
    SqliteWorkers.layer,
    SqliteStats.layer(),
    health,
    housekeeping
  ).pipe(Layer.provide(SqliteDatabase.layer(options)))

/**
 * The backend on the SQLite file at `options.path`.
 *
 * @category constructors
 */
export const make = (options: Options): Backend.Backend =>
  Backend.make(`sqlite`, over(options, options.store ?? {}, options.queue ?? {}))

/**
 * The backend configured from the environment: `SQLITE_PATH` (default
 * `./.vendorflow/vendorflow.db`), `SQLITE_JOB_TTL`, `QUEUE_VISIBILITY_TIMEOUT`,
 * `QUEUE_DELIVERY_LIMIT`, `QUEUE_MAXLEN`.
 *
 * @category constructors
 */
export const fromEnv: Backend.Backend = Backend.make(
  "sqlite",
  Layer.unwrap(
    Effect.map(
      Effect.all([SqliteDatabase.config, SqliteJobStore.config, SqliteJobQueue.config]),
      ([database, store, queue]) => over(database, store, queue)
    )
  )
)

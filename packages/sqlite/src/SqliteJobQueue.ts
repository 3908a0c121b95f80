/**
 * Core's {@link JobQueue.JobQueue} on SQLite: at-least-once delivery of job ids, one logical queue
 * per vendor in the `deliveries` table, shared by every process that opens the same file.
 *
 * A row is one job's delivery: waiting (no holder, `visible_at` passed), waiting to be retried
 * (`visible_at` ahead), or held (a `holder`, and `visible_at` the end of its lease). `deliveries`
 * counts how many times the job was handed out so far, retries included.
 *
 * How the operations map onto SQLite (every write one statement, or one short `BEGIN IMMEDIATE`
 * transaction where two must go together):
 * - `enqueue` and `enqueueMany`: one `INSERT` of all the rows.
 * - `take`: one `UPDATE … RETURNING` claims up to `max` rows whose `visible_at` has passed (waiting
 *   ones, due retries, and held ones whose lease ran out: their holder is presumed dead), in order,
 *   for this consumer, counting the delivery and starting the lease. One statement, so two
 *   processes taking at once never get the same row. With nothing to take it waits, polling every
 *   `pollInterval` with a read (which takes no lock), and waking at once when this process enqueues
 *   for the vendor.
 * - A delivery's id is `<row>.<deliveries>`, and `renew`, `ack`, `retryLater` and `deadLetter` match
 *   the row, its count and the holder: a holder whose lease ran out and whose delivery was taken
 *   again holds nothing any more, and whatever it does late changes nothing.
 * - `renew`: moves the lease's end (`UPDATE`). `ack`: `DELETE`.
 * - `retryLater`: in one transaction, deletes the held row (as `ack` does) and inserts the job again,
 *   visible after the delay: a crash leaves it either held (and reclaimed) or parked.
 * - `deadLetter`: in one transaction, the dead letter's `INSERT` and `ack`'s `DELETE`.
 * - delivery limit: a delivery past `deliveryLimit` comes out marked `exhausted`, and the engine
 *   fails the job's record and dead-letters it.
 *
 * Times are ms on the caller's clock: on one host every process reads the same clock.
 *
 * Layers: {@link layer} (over a provided `SqlClient`); {@link config} reads
 * `QUEUE_VISIBILITY_TIMEOUT`, `QUEUE_DELIVERY_LIMIT` and `QUEUE_MAXLEN` as the Redis queue does.
 *
 * @since 0.1.0
 */
import { hostname } from "node:os"
import { Job, JobQueue } from "@vendorflow/core"
import { Array as Arr, Clock, Config, Duration, Effect, Latch, Layer, Option, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

/**
 * Queue settings; every field has a default.
 *
 * @category models
 */
export interface Options {
  /** How long a taken delivery stays with its taker unrenewed; default 30 seconds. */
  readonly visibilityTimeout?: Duration.Input | undefined
  /** How many times a job is handed to workers at most before it is dead-lettered; default 5. */
  readonly deliveryLimit?: number | undefined
  /** How many dead letters a vendor keeps (the oldest go first); default 100,000. */
  readonly maxLength?: number | undefined
  /** How often a waiting `take` looks for work another process added; default 50 ms. */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * The defaults of {@link Options}.
 *
 * @category constants
 */
export const defaults = {
  visibilityTimeout: Duration.seconds(30),
  deliveryLimit: 5,
  maxLength: 100_000,
  pollInterval: Duration.millis(50)
} as const

const decodeJobId = Schema.decodeUnknownOption(Job.JobId)

const positiveMillis = (input: Duration.Input) =>
  Math.max(0, Math.round(Duration.toMillis(Duration.fromInputUnsafe(input))))

/** A delivery's row and count, from its id. */
const parseId = (id: string | undefined): { readonly row: number; readonly count: number } | undefined => {
  const match = /^(\d+)\.(\d+)$/.exec(id ?? "")
  return match === null ? undefined : { row: Number(match[1]), count: Number(match[2]) }
}

/**
 * The queue over the `SqlClient` in context (a database opened by `SqliteDatabase`).
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const sql = yield* SqlClient.SqlClient
  const visibilityMillis = Math.max(1, positiveMillis(options.visibilityTimeout ?? defaults.visibilityTimeout))
  const deliveryLimit = Math.max(1, Math.floor(options.deliveryLimit ?? defaults.deliveryLimit))
  const maxLength = Math.max(1, Math.floor(options.maxLength ?? defaults.maxLength))
  const pollInterval = Duration.fromInputUnsafe(options.pollInterval ?? defaults.pollInterval)
  // Unique per layer instance, so two instances in one process are two consumers, like two workers.
  const consumer = `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 8)}`

  const unavailable = (error: SqlError.SqlError) =>
    new JobQueue.JobQueueError({ reason: "Unavailable", message: `SQLite: ${error.message}` })

  // Per vendor, opened when this process enqueues for it: wakes its waiting takes at once.
  const arrivals = new Map<string, Latch.Latch>()
  const arrivalsOf = (vendor: string) => {
    let latch = arrivals.get(vendor)
    if (latch === undefined) {
      latch = Latch.makeUnsafe(false)
      arrivals.set(vendor, latch)
    }
    return latch
  }

  const enqueueMany = Effect.fnUntraced(function* (vendor: string, jobIds: ReadonlyArray<Job.JobId>) {
    if (jobIds.length === 0) return
    const now = yield* Clock.currentTimeMillis
    for (let at = 0; at < jobIds.length; at += 1_000) {
      const rows: ReadonlyArray<Record<string, unknown>> = jobIds
        .slice(at, at + 1_000)
        .map((jobId) => ({ vendor, job_id: jobId, deliveries: 0, visible_at: now, holder: null }))
      if (Arr.isReadonlyArrayNonEmpty(rows))
        yield* sql`INSERT INTO deliveries ${sql.insert(rows)}`.pipe(Effect.mapError(unavailable))
    }
    yield* arrivalsOf(vendor).open
  })

  /** Claims up to `max` rows that are due, in one statement. */
  const claim = Effect.fnUntraced(function* (vendor: string, max: number) {
    const now = yield* Clock.currentTimeMillis
    // A read first: in WAL mode it takes no lock, where even an UPDATE that matches nothing takes
    // the file's one write lock, and idle takers polling would keep the writers waiting.
    const due = yield* sql`SELECT 1 FROM deliveries WHERE vendor = ${vendor} AND visible_at <= ${now} LIMIT 1`.pipe(
      Effect.mapError(unavailable)
    )
    if (due.length === 0) return []
    const rows = yield* sql<{
      readonly id: number
      readonly job_id: string
      readonly deliveries: number
      readonly visible_at: number
    }>`UPDATE deliveries SET holder = ${consumer}, deliveries = deliveries + 1, visible_at = ${now + visibilityMillis}
      WHERE id IN (SELECT id FROM deliveries WHERE vendor = ${vendor} AND visible_at <= ${now}
        ORDER BY visible_at, id LIMIT ${max})
      RETURNING id, job_id, deliveries`.pipe(Effect.mapError(unavailable))
    const deliveries: Array<JobQueue.Delivery> = []
    for (const row of [...rows].sort((a, b) => a.id - b.id)) {
      const jobId = decodeJobId(row.job_id)
      const delivery = { id: `${row.id}.${row.deliveries}`, vendor, deliveryCount: row.deliveries }
      if (Option.isNone(jobId)) {
        yield* Effect.logWarning(`dropping delivery ${delivery.id} of ${vendor}: ${row.job_id} is not a job id`)
        yield* release(delivery)
      } else {
        deliveries.push({
          ...delivery,
          jobId: jobId.value,
          ...(row.deliveries > deliveryLimit ? { exhausted: true } : {})
        })
      }
    }
    return deliveries
  })

  /** Deletes a delivery while this consumer holds it (`ack`'s statement). */
  const release = (delivery: Pick<JobQueue.Delivery, "id">) => {
    const held = parseId(delivery.id)
    return held === undefined
      ? Effect.void
      : sql`DELETE FROM deliveries WHERE id = ${held.row} AND deliveries = ${held.count} AND holder = ${consumer}`.pipe(
          Effect.asVoid,
          Effect.mapError(unavailable)
        )
  }

  const take = Effect.fnUntraced(function* (
    vendor: string,
    takeOptions: { readonly max: number; readonly block: Duration.Input }
  ) {
    const max = Math.max(1, Math.floor(takeOptions.max))
    const deadline = (yield* Clock.currentTimeMillis) + positiveMillis(takeOptions.block)
    const arrived = arrivalsOf(vendor)
    while (true) {
      yield* arrived.close
      const taken = yield* claim(vendor, max)
      const left = deadline - (yield* Clock.currentTimeMillis)
      if (taken.length > 0 || left <= 0) return taken
      yield* arrived.await.pipe(Effect.timeoutOption(Duration.min(pollInterval, Duration.millis(left))), Effect.asVoid)
    }
  })

  const insertAgain = (delivery: JobQueue.Delivery, visibleAt: number) =>
    sql`INSERT INTO deliveries ${sql.insert({
      vendor: delivery.vendor,
      job_id: delivery.jobId,
      deliveries: delivery.deliveryCount,
      visible_at: visibleAt,
      holder: null
    })}`

  const trimDeadLetters = (vendor: string) =>
    sql`DELETE FROM dead_letters WHERE vendor = ${vendor} AND id <= (
      SELECT id FROM dead_letters WHERE vendor = ${vendor} ORDER BY id DESC LIMIT 1 OFFSET ${maxLength})`

  return JobQueue.JobQueue.of({
    visibilityTimeout: Duration.millis(visibilityMillis),
    enqueue: (vendor, jobId) => enqueueMany(vendor, [jobId]),
    enqueueMany,
    take,
    renew: Effect.fnUntraced(function* (delivery) {
      const held = parseId(delivery.id)
      if (held === undefined) return
      const now = yield* Clock.currentTimeMillis
      yield* sql`UPDATE deliveries SET visible_at = ${now + visibilityMillis}
        WHERE id = ${held.row} AND deliveries = ${held.count} AND holder = ${consumer}`.pipe(
        Effect.mapError(unavailable)
      )
    }),
    ack: release,
    // The job is parked even when this consumer no longer holds the delivery: the engine parks a
    // job only after its own compare-and-set moved it to pending, so the job needs this delivery.
    retryLater: Effect.fnUntraced(function* (delivery, delay) {
      const now = yield* Clock.currentTimeMillis
      yield* release(delivery).pipe(
        Effect.andThen(insertAgain(delivery, now + positiveMillis(delay)).pipe(Effect.mapError(unavailable))),
        sql.withTransaction,
        Effect.mapError((error) => (error._tag === "SqlError" ? unavailable(error) : error))
      )
    }),
    deadLetter: Effect.fnUntraced(function* (givenUp, reason) {
      const at = new Date(yield* Clock.currentTimeMillis).toISOString()
      yield* sql`INSERT INTO dead_letters ${sql.insert({
        vendor: givenUp.vendor,
        job_id: givenUp.jobId,
        reason,
        at,
        deliveries: givenUp.deliveryCount ?? 0
      })}`.pipe(
        Effect.mapError(unavailable),
        Effect.andThen(givenUp.id === undefined ? Effect.void : release({ id: givenUp.id })),
        Effect.andThen(trimDeadLetters(givenUp.vendor).pipe(Effect.mapError(unavailable))),
        sql.withTransaction,
        Effect.mapError((error) => (error._tag === "SqlError" ? unavailable(error) : error))
      )
    }),
    deadLetters: (vendor) =>
      sql<{ readonly job_id: string; readonly reason: string; readonly at: string }>`
        SELECT job_id, reason, at FROM dead_letters WHERE vendor = ${vendor} ORDER BY id`.pipe(
        Effect.mapError(unavailable),
        Effect.map((rows) =>
          rows.flatMap((row) =>
            Option.toArray(
              Option.map(decodeJobId(row.job_id), (jobId) => ({ vendor, jobId, reason: row.reason, at: row.at }))
            )
          )
        )
      ),
    depth: (vendor) =>
      sql<{ readonly n: number }>`SELECT count(*) AS n FROM deliveries WHERE vendor = ${vendor}`.pipe(
        Effect.mapError(unavailable),
        Effect.map((rows) => rows[0]?.n ?? 0)
      )
  })
})

/**
 * The queue over a provided `SqlClient`.
 *
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<JobQueue.JobQueue, never, SqlClient.SqlClient> =>
  Layer.effect(JobQueue.JobQueue, make(options))

const atLeastOne = (name: string) =>
  Config.schema(Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1))), name)

/**
 * `QUEUE_VISIBILITY_TIMEOUT`, `QUEUE_DELIVERY_LIMIT` and `QUEUE_MAXLEN` (the dead letters kept per vendor).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  visibilityTimeout: Config.Duration("QUEUE_VISIBILITY_TIMEOUT").pipe(Config.withDefault(defaults.visibilityTimeout)),
  deliveryLimit: atLeastOne("QUEUE_DELIVERY_LIMIT").pipe(Config.withDefault(defaults.deliveryLimit)),
  maxLength: atLeastOne("QUEUE_MAXLEN").pipe(Config.withDefault(defaults.maxLength))
})

/**
 * The dashboard's statistics on SQLite (core's `Stats`), so the server reports what every worker
 * on the file recorded.
 *
 * Each process adds what it records to buckets of its own memory and, every second, adds them into
 * `stats` (a row per vendor, bucket and field, named as `Stats.bucketFields` names them) in one
 * transaction. Reading sums a window's rows. The housekeeping of the backend deletes buckets older
 * than the hour a window reads. A write that fails keeps the figures for the next flush.
 *
 * @since 0.1.0
 */
import { Stats } from "@vendorflow/core"
import { Clock, Duration, Effect, Layer, Schedule } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

/**
 * The collector over the `SqlClient` in context; its flushing fiber runs in the scope, and a last
 * flush runs when the scope closes.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (flushInterval: Duration.Input = Duration.seconds(1)) {
  const sql = yield* SqlClient.SqlClient
  const warn = (what: string) => (error: SqlError.SqlError) =>
    Effect.logWarning(`statistics: SQLite: ${what}: ${error.message}`)
  // What this process recorded and has not written yet, by vendor, then bucket index.
  let pending = new Map<string, Map<number, Stats.Bucket>>()

  const write = (batch: Map<string, Map<number, Stats.Bucket>>) =>
    Effect.forEach(
      [...batch].flatMap(([vendor, buckets]) =>
        [...buckets.values()].flatMap((bucket) =>
          Stats.bucketFields(bucket).map(([field, count]) => ({ vendor, bucket: bucket.index, field, count }))
        )
      ),
      (row) =>
        sql`INSERT INTO stats ${sql.insert(row)}
          ON CONFLICT (vendor, bucket, field) DO UPDATE SET count = count + excluded.count`,
      { discard: true }
    ).pipe(sql.withTransaction)

  const flush = Effect.suspend(() => {
    if (pending.size === 0) return Effect.void
    const batch = pending
    pending = new Map()
    return write(batch).pipe(
      Effect.catch((error) =>
        // Kept for the next flush rather than lost.
        Effect.sync(() => {
          for (const [vendor, buckets] of batch) {
            for (const bucket of buckets.values()) Stats.addBucket(bucketOf(vendor, bucket.index), bucket)
          }
        }).pipe(Effect.andThen(warn("adding the figures")(error)))
      )
    )
  })

  const bucketOf = (vendor: string, index: number) => {
    let buckets = pending.get(vendor)
    if (buckets === undefined) pending.set(vendor, (buckets = new Map()))
    let bucket = buckets.get(index)
    if (bucket === undefined) buckets.set(index, (bucket = Stats.emptyBucket(index)))
    return bucket
  }

  const now = yield* Clock.currentTimeMillis
  yield* sql`INSERT INTO meta (key, value) VALUES ('stats_since', ${String(now)}) ON CONFLICT (key) DO NOTHING`.pipe(
    Effect.catch(warn("recording the start"))
  )
  const since = yield* sql<{ readonly value: string }>`SELECT value FROM meta WHERE key = 'stats_since'`.pipe(
    Effect.map((rows) => Number(rows[0]?.value ?? now)),
    Effect.orElseSucceed(() => now)
  )

  yield* Effect.addFinalizer(() => flush)
  yield* flush.pipe(Effect.repeat(Schedule.spaced(flushInterval)), Effect.forkScoped)

  return Stats.makeWith({
    update: (vendor, at, change) => Effect.sync(() => change(bucketOf(vendor, Math.floor(at / Stats.bucketMillis)))),
    read: (vendor, first, last) =>
      sql<{ readonly bucket: number; readonly field: string; readonly count: number }>`
        SELECT bucket, field, count FROM stats WHERE vendor = ${vendor} AND bucket BETWEEN ${first} AND ${last}`.pipe(
        Effect.map((rows) => {
          const fields = new Map<number, Array<readonly [string, number]>>()
          for (const row of rows) {
            const list = fields.get(row.bucket) ?? []
            list.push([row.field, row.count])
            fields.set(row.bucket, list)
          }
          return new Map([...fields].map(([index, list]) => [index, Stats.bucketFromFields(index, list)]))
        }),
        Effect.catch((error) => Effect.as(warn("reading the figures")(error), new Map<number, Stats.Bucket>()))
      ),
    startedAt: Effect.succeed(since)
  })
})

/**
 * The collector as the process's `Stats`, over a provided `SqlClient`.
 *
 * @category layers
 */
export const layer = (flushInterval?: Duration.Input): Layer.Layer<never, never, SqlClient.SqlClient> =>
  Layer.effect(Stats.Stats, make(flushInterval))

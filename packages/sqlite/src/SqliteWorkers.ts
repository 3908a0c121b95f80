/**
 * Worker heartbeats on SQLite (core's `Workers`), so the server sees every worker on the file.
 *
 * One row per worker in `workers`: its last beat (JSON) and when it beat (ms). A beat forgets
 * workers silent for an hour.
 *
 * @since 0.1.0
 */
import { Workers } from "@vendorflow/core"
import { Clock, Duration, Effect, Layer, Option, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

const forgetAfter = Duration.hours(1)

const decodeBeat = Schema.decodeUnknownOption(Schema.fromJsonString(Workers.WorkerBeat))

/**
 * The registry over the `SqlClient` in context; `ttl` is how long a beat counts.
 *
 * @category constructors
 */
export const make = (ttl: Duration.Input = Workers.defaultTtl) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ttlMillis = Duration.toMillis(Duration.fromInputUnsafe(ttl))
    const unavailable = (what: string) => (error: SqlError.SqlError) =>
      new Workers.WorkersError({ message: `SQLite: ${what}: ${error.message}` })

    return Workers.Workers.of({
      beat: (beat) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql`INSERT INTO workers (id, beat, seen_at)
            VALUES (${beat.id}, ${JSON.stringify({ ...beat, last_seen: new Date(now).toISOString() })}, ${now})
            ON CONFLICT (id) DO UPDATE SET beat = excluded.beat, seen_at = excluded.seen_at`.pipe(
            Effect.andThen(sql`DELETE FROM workers WHERE seen_at < ${now - Duration.toMillis(forgetAfter)}`),
            Effect.asVoid,
            Effect.mapError(unavailable("recording a heartbeat"))
          )
        ),
      leave: (id) =>
        sql`DELETE FROM workers WHERE id = ${id}`.pipe(
          Effect.asVoid,
          Effect.mapError(unavailable("removing a worker"))
        ),
      alive: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql<{ readonly beat: string }>`SELECT beat FROM workers WHERE seen_at >= ${now - ttlMillis}
          ORDER BY seen_at DESC`.pipe(
          Effect.map((rows) => rows.flatMap((row) => Option.toArray(decodeBeat(row.beat)))),
          Effect.mapError(unavailable("reading the workers"))
        )
      )
    })
  })

/**
 * The registry over a provided `SqlClient`.
 *
 * @category layers
 */
export const layer: Layer.Layer<Workers.Workers, never, SqlClient.SqlClient> = Layer.effect(Workers.Workers, make())

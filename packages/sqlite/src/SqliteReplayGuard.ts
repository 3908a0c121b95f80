/**
 * The webhook replay guard on SQLite (core's `WebhookSignature.ReplayGuard`), so a signed delivery
 * is accepted once by all the processes on the file together.
 *
 * A claim is one statement on `replay_guard`: an insert that, when the key is there already,
 * takes it over only if it has expired; `RETURNING` says whether it did. While the file cannot be
 * written (a lock held past `busy_timeout`), this process's own memory guard decides, and a
 * warning is logged, as the Redis guard does.
 *
 * @since 0.1.0
 */
import { WebhookSignature } from "@vendorflow/core"
import { Clock, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

/**
 * The guard over the `SqlClient` in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const local = WebhookSignature.makeMemoryReplayGuard()
  const orLocally =
    <A>(decide: Effect.Effect<A>) =>
    (error: SqlError.SqlError) =>
      Effect.logWarning(`replay guard: SQLite: ${error.message}; this process decides alone`).pipe(
        Effect.andThen(decide)
      )
  return WebhookSignature.ReplayGuard.of({
    claim: (key, ttlSeconds) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql<{ readonly key: string }>`INSERT INTO replay_guard (key, expires_at)
          VALUES (${key}, ${now + Math.max(1, ttlSeconds) * 1_000})
          ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay_guard.expires_at <= ${now}
          RETURNING key`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.catch(orLocally(local.claim(key, ttlSeconds)))
        )
      ),
    seen: (key) =>
      Effect.flatMap(local.seen(key), (seenHere) =>
        seenHere
          ? Effect.succeed(true)
          : Effect.flatMap(Clock.currentTimeMillis, (now) =>
              sql`SELECT 1 FROM replay_guard WHERE key = ${key} AND expires_at > ${now}`.pipe(
                Effect.map((rows) => rows.length > 0),
                Effect.catch(orLocally(Effect.succeed(false)))
              )
            )
      )
  })
})

/**
 * The guard over a provided `SqlClient`.
 *
 * @category layers
 */
export const layer: Layer.Layer<WebhookSignature.ReplayGuard, never, SqlClient.SqlClient> = Layer.effect(
  WebhookSignature.ReplayGuard,
  make
)

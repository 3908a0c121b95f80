/**
 * `effect/persistence`'s rate-limit store on SQLite, so every process on the file draws on one
 * budget per API key: the API's quotas run over it (the vendors' pacing is `SqliteRateLimitStore`).
 *
 * Each call is one short `BEGIN IMMEDIATE` transaction on the key's row of `rate_limits`: read,
 * refill and take, write back, with the arithmetic of `effect/persistence`'s memory store, so two
 * processes taking at once get consecutive slots. Times are the calling process's clock, which on
 * one host is every process's clock.
 *
 * The adaptive limiter (`adaptiveConsume`/`adaptiveFeedback`, which nothing in vendorflow uses)
 * keeps no state here: it always answers "inactive".
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Layer } from "effect"
import { RateLimiter } from "effect/persistence"
import { SqlClient, type SqlError } from "effect/sql"

interface Row {
  readonly tokens: number
  readonly stamp: number
}

/**
 * The store over the `SqlClient` in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const failed = (error: SqlError.SqlError) =>
    new RateLimiter.RateLimiterError({
      reason: new RateLimiter.RateLimitStoreError({ message: `SQLite: ${error.message}`, cause: error })
    })

  /** Reads the row of `key`, lets `step` compute the answer and the row to write, writes it: one transaction. */
  const update = <A>(key: string, step: (row: Row | undefined, now: number) => readonly [A, Row, number]) =>
    Effect.gen(function* () {
      const rows = yield* sql<Row>`SELECT tokens, stamp FROM rate_limits WHERE key = ${key}`
      const [answer, next, expiresAt] = step(rows[0], yield* Clock.currentTimeMillis)
      yield* sql`INSERT INTO rate_limits (key, tokens, stamp, expires_at)
        VALUES (${key}, ${next.tokens}, ${next.stamp}, ${Math.ceil(expiresAt)})
        ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, stamp = excluded.stamp, expires_at = excluded.expires_at`
      return answer
    }).pipe(sql.withTransaction, Effect.mapError(failed))

  return RateLimiter.RateLimiterStore.of({
    // `tokens` counts what the window took, `stamp` is when the window ends.
    fixedWindow: (options) => {
      const refillMillis = Duration.toMillis(options.refillRate)
      return update(`fixed:${options.key}`, (row, now) => {
        const counter = row === undefined || row.stamp <= now ? { tokens: 0, stamp: now } : row
        if (options.limit !== undefined && counter.tokens + options.tokens > options.limit) {
          return [[counter.tokens + options.tokens, counter.stamp - now] as const, counter, counter.stamp]
        }
        const next = { tokens: counter.tokens + options.tokens, stamp: counter.stamp + refillMillis * options.tokens }
        return [[next.tokens, next.stamp - now] as const, next, next.stamp]
      })
    },
    // `tokens` is what the bucket holds (negative when overdrawn), `stamp` its last refill.
    tokenBucket: (options) => {
      const refillMillis = Duration.toMillis(options.refillRate)
      return update(`bucket:${options.key}`, (row, now) => {
        let { tokens, stamp } = row ?? { tokens: options.limit, stamp: now }
        const refills = Math.floor((now - stamp) / refillMillis)
        if (refills > 0) {
          tokens = Math.min(options.limit, tokens + refills)
          stamp += refills * refillMillis
        }
        if (tokens >= options.limit) stamp = now
        const left = tokens - options.tokens
        if (options.allowOverflow || left >= 0) tokens = left
        // Full again (and so forgettable) once every taken token has been refilled.
        const fullAt = stamp + (options.limit - tokens) * refillMillis
        return [[left, Math.max(0, now - stamp)] as const, { tokens, stamp }, fullAt]
      })
    },
    adaptiveConsume: () => Effect.succeed({ delay: Duration.zero, epoch: 0, phase: "inactive" as const }),
    adaptiveFeedback: () => Effect.void
  })
})

/**
 * The store over a provided `SqlClient`.
 *
 * @category layers
 */
export const layerStore: Layer.Layer<RateLimiter.RateLimiterStore, never, SqlClient.SqlClient> = Layer.effect(
  RateLimiter.RateLimiterStore,
  make
)

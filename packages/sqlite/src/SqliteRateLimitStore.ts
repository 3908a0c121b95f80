/**
 * Core's {@link RateLimitStore.RateLimitStore} on SQLite, so every process on the file shares one
 * pace per vendor, one pause after a 429, one learned rate and one count of calls in flight.
 *
 * Each operation is one short `BEGIN IMMEDIATE` transaction: read the vendor's row, apply core's
 * rule (`RateLimitStore.take`, `limited`, `advertised`, `delayed`, `acquireSlot`), write it back. The store's
 * clock is the calling process's, which on one host is every process's clock.
 *
 * Tables: `rate_state` (a vendor's `State` as JSON) and `rate_slots` (one row per lease: vendor,
 * holder, expiry in ms).
 *
 * @since 0.1.0
 */
import { RateLimitStore } from "@vendorflow/core"
import { Clock, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

/**
 * The store over the `SqlClient` in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const failed = (error: SqlError.SqlError) => RateLimitStore.storeError(`SQLite: ${error.message}`, error)

  const stateOf = (vendor: string) =>
    Effect.map(
      sql<{ readonly state: string }>`SELECT state FROM rate_state WHERE vendor = ${vendor}`,
      (rows): RateLimitStore.State =>
        rows[0] === undefined ? RateLimitStore.initial : { ...RateLimitStore.initial, ...JSON.parse(rows[0].state) }
    )

  /** Reads the vendor's state, applies `rule` at now, writes it back: one transaction. */
  const update = <A>(
    vendor: string,
    rule: (state: RateLimitStore.State, now: number) => readonly [RateLimitStore.State, A]
  ) =>
    Effect.gen(function* () {
      const [state, answer] = rule(yield* stateOf(vendor), yield* Clock.currentTimeMillis)
      yield* sql`INSERT INTO rate_state (vendor, state) VALUES (${vendor}, ${JSON.stringify(state)})
        ON CONFLICT (vendor) DO UPDATE SET state = excluded.state`
      return answer
    }).pipe(sql.withTransaction, Effect.mapError(failed))

  return RateLimitStore.RateLimitStore.of({
    take: (vendor, pace) =>
      update(vendor, (state, now) => {
        const [next, taken] = RateLimitStore.take(state, now, pace)
        return [next, { ...taken, at: now }] as const
      }),
    limited: (vendor, options) =>
      update(vendor, (state, now) => [RateLimitStore.limited(state, now, options), undefined] as const),
    advertise: (vendor, perSecond) =>
      update(vendor, (state) => [RateLimitStore.advertised(state, perSecond), undefined] as const),
    delay: (vendor, millis) => update(vendor, (state) => [RateLimitStore.delayed(state, millis), undefined] as const),
    acquireSlot: (vendor, options) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* sql<{ readonly holder: string; readonly expires_at: number }>`
          SELECT holder, expires_at FROM rate_slots WHERE vendor = ${vendor}`
        const [held, granted] = RateLimitStore.acquireSlot(
          new Map(rows.map((row) => [row.holder, row.expires_at])),
          now,
          options
        )
        yield* sql`DELETE FROM rate_slots WHERE vendor = ${vendor} AND expires_at <= ${now}`
        const expiresAt = held.get(options.holder)
        if (granted && expiresAt !== undefined) {
          yield* sql`INSERT INTO rate_slots (vendor, holder, expires_at) VALUES (${vendor}, ${options.holder}, ${expiresAt})
            ON CONFLICT (vendor, holder) DO UPDATE SET expires_at = excluded.expires_at`
        }
        return granted
      }).pipe(sql.withTransaction, Effect.mapError(failed)),
    releaseSlot: (vendor, holder) =>
      sql`DELETE FROM rate_slots WHERE vendor = ${vendor} AND holder = ${holder}`.pipe(
        Effect.asVoid,
        Effect.mapError(failed)
      ),
    snapshot: (vendor) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const state = yield* stateOf(vendor)
        const live = yield* sql<{ readonly n: number }>`
          SELECT count(*) AS n FROM rate_slots WHERE vendor = ${vendor} AND expires_at > ${now}`
        return RateLimitStore.snapshotOf(state, live[0]?.n ?? 0, now)
      }).pipe(Effect.mapError(failed))
  })
})

/**
 * The store over a provided `SqlClient`.
 *
 * @category layers
 */
export const layer: Layer.Layer<RateLimitStore.RateLimitStore, never, SqlClient.SqlClient> = Layer.effect(
  RateLimitStore.RateLimitStore,
  make
)

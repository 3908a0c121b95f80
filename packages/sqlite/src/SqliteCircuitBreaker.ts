/**
 * Circuit breaker state on SQLite (`effect/persistence`'s `CircuitBreakerStore`), so every process
 * on the file sees one circuit per vendor, seen through the process's view of its closed circuits
 * (core's `VendorCircuit.withLocalView`), so that a healthy vendor's calls cost no transaction.
 *
 * A circuit is one row of `circuits` (its state as JSON); `admit` and `record` are each one short
 * `BEGIN IMMEDIATE` transaction that reads the row, applies the rules of `effect/persistence`'s
 * memory store, and writes it back. A half-open circuit's probe is a lease (`probeLease`, 30
 * seconds): a process that dies while probing frees the probe when its lease runs out. A circuit
 * idle for an hour is forgotten.
 *
 * @since 0.1.0
 */
import { VendorCircuit } from "@vendorflow/core"
import { Clock, Duration, Effect, Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { SqlClient, type SqlError } from "effect/sql"

interface Entry {
  state: "Closed" | "Open" | "HalfOpen"
  generation: number
  lastActivity: number
  streak: number
  ring: Array<boolean>
  ringFailures: number
  openUntil: number
  consecutiveOpenings: number
  lastOpenFor: number
  resetAt: number
  /** While a probe runs: when its lease ends. 0 when none runs. */
  probeUntil: number
}

const idleMillis = Duration.toMillis(Duration.hours(1))

/** A fresh generation: unique enough that a late `record` of an earlier one never matches. */
const generation = () => Math.floor(Math.random() * Number.MAX_SAFE_INTEGER)

const isExpired = (entry: Entry, now: number) =>
  now - Math.max(entry.lastActivity, entry.openUntil, entry.probeUntil) >= idleMillis

const fresh = (now: number): Entry => ({
  state: "Closed",
  generation: generation(),
  lastActivity: now,
  streak: 0,
  ring: [],
  ringFailures: 0,
  openUntil: 0,
  consecutiveOpenings: 0,
  lastOpenFor: 0,
  resetAt: 0,
  probeUntil: 0
})

const open = (
  key: string,
  entry: Entry,
  from: "Closed" | "HalfOpen",
  openFor: Duration.Duration,
  now: number
): CircuitBreaker.Transition => {
  entry.state = "Open"
  entry.generation = generation()
  entry.lastOpenFor = Duration.toMillis(openFor)
  entry.openUntil = now + entry.lastOpenFor
  entry.consecutiveOpenings++
  entry.probeUntil = 0
  entry.streak = 0
  entry.ring = []
  entry.ringFailures = 0
  return { key, from, to: "Open", retryAfter: openFor, consecutiveOpenings: entry.consecutiveOpenings }
}

const trips = (entry: Entry, policy: CircuitBreaker.TripPolicy) =>
  policy._tag === "Consecutive"
    ? entry.streak >= policy.failures
    : entry.ring.length >= policy.minimumCalls &&
      entry.ringFailures > 0 &&
      entry.ringFailures / entry.ring.length >= policy.threshold

/**
 * The store over the `SqlClient` in context, without the local view.
 *
 * @category constructors
 */
export const make = (options: { readonly probeLease?: Duration.Input | undefined } = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const probeLeaseMillis = Duration.toMillis(Duration.fromInputUnsafe(options.probeLease ?? Duration.seconds(30)))
    const failed = (error: SqlError.SqlError) =>
      new CircuitBreaker.CircuitBreakerError({
        reason: new CircuitBreaker.CircuitBreakerStoreError({ message: `SQLite: ${error.message}`, cause: error })
      })

    const read = (key: string, now: number) =>
      Effect.map(
        sql<{ readonly entry: string }>`SELECT entry FROM circuits WHERE key = ${key}`,
        (rows): Entry | undefined => {
          const entry = rows[0] === undefined ? undefined : (JSON.parse(rows[0].entry) as Entry)
          return entry === undefined || isExpired(entry, now) ? undefined : entry
        }
      )
    const write = (key: string, entry: Entry) =>
      sql`INSERT INTO circuits (key, entry, expires_at) VALUES (${key}, ${JSON.stringify(entry)},
        ${Math.max(entry.lastActivity, entry.openUntil, entry.probeUntil) + idleMillis})
        ON CONFLICT (key) DO UPDATE SET entry = excluded.entry, expires_at = excluded.expires_at`

    /** Reads the circuit, lets `step` change it, writes it back when it says so: one transaction. */
    const update = <A>(key: string, step: (entry: Entry | undefined, now: number) => readonly [A, Entry | undefined]) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const [answer, changed] = step(yield* read(key, now), now)
        if (changed !== undefined) yield* write(key, changed)
        return answer
      }).pipe(sql.withTransaction, Effect.mapError(failed))

    type Admitted = CircuitBreaker.Admission | CircuitBreaker.CircuitOpen | CircuitBreaker.CircuitHalfOpen

    return CircuitBreaker.CircuitBreakerStore.of({
      admit: (key) =>
        update(key, (found, now): readonly [Admitted, Entry | undefined] => {
          const entry = found ?? fresh(now)
          let transition: CircuitBreaker.Transition | undefined
          if (entry.state === "Closed" && entry.consecutiveOpenings > 0 && now >= entry.resetAt) {
            entry.consecutiveOpenings = 0
          }
          if (entry.state === "Open") {
            if (now < entry.openUntil) {
              return [
                new CircuitBreaker.CircuitOpen({ key, retryAfter: Duration.millis(entry.openUntil - now) }),
                found
              ]
            }
            entry.state = "HalfOpen"
            transition = { key, from: "Open", to: "HalfOpen" }
          } else if (entry.state === "HalfOpen" && entry.probeUntil > now) {
            return [new CircuitBreaker.CircuitHalfOpen({ key }), undefined]
          }
          entry.lastActivity = now
          if (entry.state === "HalfOpen") {
            entry.probeUntil = now + probeLeaseMillis
            entry.generation = generation()
          }
          const admission: CircuitBreaker.Admission = {
            generation: entry.generation,
            probe: entry.state === "HalfOpen",
            consecutiveOpenings: entry.consecutiveOpenings,
            transition
          }
          return [admission, entry]
        }).pipe(
          Effect.flatMap((admitted) =>
            "generation" in admitted
              ? Effect.succeed(admitted)
              : Effect.fail(new CircuitBreaker.CircuitBreakerError({ reason: admitted }))
          )
        ),
      record: ({ generation: recorded, key, openFor, outcome, tripPolicy }) =>
        update(key, (entry, now): readonly [CircuitBreaker.Transition | undefined, Entry | undefined] => {
          if (entry === undefined || entry.generation !== recorded) return [undefined, undefined]
          entry.lastActivity = now
          if (entry.state === "HalfOpen") {
            if (outcome === "Ignored") {
              entry.probeUntil = 0
              return [undefined, entry]
            }
            if (outcome === "Failure") return [open(key, entry, "HalfOpen", openFor, now), entry]
            entry.state = "Closed"
            entry.generation = generation()
            entry.resetAt = now + entry.lastOpenFor
            entry.probeUntil = 0
            entry.streak = 0
            entry.ring = []
            entry.ringFailures = 0
            return [{ key, from: "HalfOpen", to: "Closed" }, entry]
          }
          if (entry.state !== "Closed" || outcome === "Ignored") return [undefined, entry]
          const failure = outcome === "Failure"
          entry.streak = failure ? entry.streak + 1 : 0
          if (tripPolicy._tag === "Rate") {
            entry.ring.push(failure)
            if (failure) entry.ringFailures++
            while (entry.ring.length > tripPolicy.size) if (entry.ring.shift()) entry.ringFailures--
          }
          return [trips(entry, tripPolicy) ? open(key, entry, "Closed", openFor, now) : undefined, entry]
        }),
      state: (key) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const entry = yield* read(key, now)
          if (entry === undefined || entry.state === "Closed") return { _tag: "Closed", key } as const
          if (entry.state === "Open") {
            return {
              _tag: "Open",
              key,
              retryAfter: Duration.millis(Math.max(0, entry.openUntil - now)),
              consecutiveOpenings: entry.consecutiveOpenings
            } as const
          }
          return {
            _tag: "HalfOpen",
            key,
            probing: entry.probeUntil > now,
            consecutiveOpenings: entry.consecutiveOpenings
          } as const
        }).pipe(Effect.mapError(failed))
    })
  })

/**
 * The store over a provided `SqlClient`, seen through the process's local view.
 *
 * @category layers
 */
export const layerStore: Layer.Layer<CircuitBreaker.CircuitBreakerStore, never, SqlClient.SqlClient> = Layer.effect(
  CircuitBreaker.CircuitBreakerStore,
  Effect.map(make(), (store) => VendorCircuit.withLocalView(store))
)

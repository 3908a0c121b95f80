/**
 * The dashboard's statistics shared through Redis (core's `Stats`), so the server of a split
 * deployment reports what every worker recorded: calls, outcomes, latencies.
 *
 * Each process adds what it records to buckets of its own memory and, every second, adds them into
 * Redis with one script per bucket (`statsAdd.lua`): `<prefix>{v:<vendor>}:stats:<bucket>` (see `RedisKeys`), a hash of
 * counts (`calls`, `completed`, `failed`, `e:<error>`, `f:<failure reason>`, `c:<latency bin>`,
 * `t:<end-to-end bin>`) that expires after 65 minutes. Reading sums the buckets of a window; a
 * bucket that no process writes any more (older than a few seconds) is read once and kept. A Redis
 * outage keeps the figures in memory until the next flush that works; reading through one answers
 * empty windows (and logs it), since the figures are for people and never hold a job up.
 *
 * @since 0.1.0
 */
import { Stats } from "@vendorflow/core"
import { Clock, Duration, Effect, Layer, Schedule } from "effect"
import { Redis } from "effect/persistence"
import * as Lua from "./internal/lua.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

const addScript = Redis.script(
  (key: string, ttlSeconds: number, fields: ReadonlyArray<string>) => [key, ttlSeconds, ...fields],
  {
    numberOfKeys: 1,
    lua: Lua.load("statsAdd")
  }
).withReturnType<number>()

// A bucket's counts as the hash's fields, flat (field, count, …).
const fieldsOf = (bucket: Stats.Bucket): Array<string> => {
  const out: Array<string> = []
  const push = (field: string, n: number) => {
    if (n !== 0) out.push(field, String(n))
  }
  push("calls", bucket.calls)
  push("completed", bucket.completed)
  push("failed", bucket.failed)
  for (const [reason, n] of bucket.callErrors) push(`e:${reason}`, n)
  for (const [reason, n] of bucket.failureReasons) push(`f:${reason}`, n)
  for (const [bin, n] of bucket.callLatency) push(`c:${bin}`, n)
  for (const [bin, n] of bucket.endToEnd) push(`t:${bin}`, n)
  return out
}

const bucketOf = (index: number, flat: ReadonlyArray<string>): Stats.Bucket => {
  const bucket = Stats.emptyBucket(index)
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i] ?? ""
    const n = Number(flat[i + 1])
    const rest = field.slice(2)
    if (field === "calls") bucket.calls = n
    else if (field === "completed") bucket.completed = n
    else if (field === "failed") bucket.failed = n
    else if (field.startsWith("e:")) bucket.callErrors.set(rest, n)
    else if (field.startsWith("f:")) bucket.failureReasons.set(rest, n)
    else if (field.startsWith("c:")) bucket.callLatency.set(Number(rest), n)
    else if (field.startsWith("t:")) bucket.endToEnd.set(Number(rest), n)
  }
  return bucket
}

/**
 * Options of {@link make}.
 *
 * @category models
 */
export interface Options {
  /** How often a process adds what it recorded into Redis; 1 second by default. */
  readonly flushInterval?: Duration.Input | undefined
}

/**
 * The collector over the connection in context; its flushing fiber runs in the scope, and a last
 * flush runs when the scope closes.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const { prefix, redis, target } = yield* RedisConnection.RedisConnection
  const flushMillis = Duration.toMillis(Duration.fromInputUnsafe(options.flushInterval ?? Duration.seconds(1)))
  const ttlSeconds = 65 * 60
  const keyOf = (vendor: string, index: number) => RedisKeys.vendor(prefix, vendor).stats(index)
  const sinceKey = RedisKeys.statsSince(prefix)
  // What this process recorded and has not added into Redis yet, by bucket key.
  let pending = new Map<string, Stats.Bucket>()
  // Buckets no process writes to any more, as read: they never change again.
  const settled = new Map<string, Stats.Bucket>()
  const settleMillis = flushMillis * 3 + 2_000

  const warn = (what: string) => (error: Redis.RedisError) =>
    Effect.logWarning(`statistics: Redis at ${target}: ${what}: ${RedisConnection.causeMessage(error)}`)

  const flush = Effect.suspend(() => {
    if (pending.size === 0) return Effect.void
    const batch = pending
    pending = new Map()
    return Effect.forEach(
      batch,
      ([key, bucket]) =>
        redis
          .eval(addScript)(key, ttlSeconds, fieldsOf(bucket))
          .pipe(
            Effect.catch((error) =>
              // Kept for the next flush rather than lost.
              Effect.sync(() => {
                const later = pending.get(key)
                if (later === undefined) pending.set(key, bucket)
                else Stats.addBucket(later, bucket)
              }).pipe(Effect.andThen(warn("adding the figures")(error)))
            )
          ),
      { concurrency: "unbounded", discard: true }
    )
  })

  const now = yield* Clock.currentTimeMillis
  yield* redis.send("SET", sinceKey, String(now), "NX").pipe(Effect.catch(warn("recording the start")))
  let startedAt: number | undefined

  yield* Effect.addFinalizer(() => flush)
  yield* flush.pipe(Effect.repeat(Schedule.spaced(Duration.millis(flushMillis))), Effect.forkScoped)

  return Stats.makeWith({
    update: (vendor, at, change) =>
      Effect.sync(() => {
        const index = Math.floor(at / Stats.bucketMillis)
        const key = keyOf(vendor, index)
        let bucket = pending.get(key)
        if (bucket === undefined) {
          bucket = Stats.emptyBucket(index)
          pending.set(key, bucket)
        }
        change(bucket)
      }),
    read: (vendor, first, last) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const found = new Map<number, Stats.Bucket>()
        const toRead: Array<number> = []
        for (let index = first; index <= last; index++) {
          const cached = settled.get(keyOf(vendor, index))
          if (cached === undefined) toRead.push(index)
          else found.set(index, cached)
        }
        const flats = yield* Effect.forEach(
          toRead,
          (index) => redis.send<ReadonlyArray<string>>("HGETALL", keyOf(vendor, index)),
          { concurrency: "unbounded" }
        )
        toRead.forEach((index, i) => {
          const bucket = bucketOf(index, flats[i] ?? [])
          found.set(index, bucket)
          if ((index + 1) * Stats.bucketMillis < at - settleMillis) settled.set(keyOf(vendor, index), bucket)
        })
        // An hour and a bit is all a window reads.
        for (const [key, bucket] of settled) {
          if (bucket.index < last - Stats.keptBuckets) settled.delete(key)
        }
        return found
      }).pipe(Effect.catch((error) => Effect.as(warn("reading the figures")(error), new Map<number, Stats.Bucket>()))),
    startedAt: Effect.suspend(() =>
      startedAt !== undefined
        ? Effect.succeed(startedAt)
        : redis.send<string | null>("GET", sinceKey).pipe(
            Effect.map((text) => {
              startedAt = text === null ? now : Number(text)
              return startedAt
            }),
            Effect.orElseSucceed(() => now)
          )
    )
  })
})

/**
 * The collector as the process's `Stats`, over a provided connection.
 *
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, RedisConnection.RedisConnection> =>
  Layer.effect(Stats.Stats, make(options))

/**
 * Core's {@link RateLimitStore.RateLimitStore} in Redis: every worker process shares one pace, one
 * pause, one learned limit and one set of in-flight slots per vendor.
 *
 * Every step is one Lua script on the Redis server's clock (`TIME`), so workers on hosts whose
 * clocks disagree still keep one pace: `rateTake`, `rateLimited`, `rateAdvertise`, `rateDelay`, `rateSlot` and `rateSnapshot` in
 * `src/lua/`, which apply core's rules (`RateLimitStore.take` and the rest, with its constants
 * passed in ARGV). Scripts take every key in KEYS.
 *
 * Keys, from `RedisKeys.vendor`: `<prefix>{v:<vendor>}:rate:state` (a hash: next slot, pause, learned
 * rate) and `<prefix>{v:<vendor>}:rate:slots` (a sorted set of in-flight leases by expiry). The
 * `{v:<vendor>}` hash tag puts a vendor's keys in one Cluster slot with its other keys.
 *
 * Layers: {@link layer} (over a provided connection).
 *
 * @since 0.2.0
 */
import { RateLimitStore } from "@vendorflow/core"
import { Duration, Effect, Layer } from "effect"
import { Redis } from "effect/persistence"
import * as Lua from "./internal/lua.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

/**
 * How long a vendor's state outlives its last use.
 *
 * @category constants
 */
export const stateTtl = Duration.days(1)

const ttlMillis = Duration.toMillis(stateTtl)

const takeScript = Redis.script(
  (state: string, pace: RateLimitStore.Pace) => [
    state,
    pace._tag === "Fixed" ? pace.intervalMillis : -1,
    pace._tag === "Learned" && Number.isFinite(pace.ceilingPerSecond) ? pace.ceilingPerSecond : -1,
    ttlMillis,
    RateLimitStore.initialRate,
    RateLimitStore.holdMillis,
    RateLimitStore.factors.below,
    RateLimitStore.factors.climb,
    RateLimitStore.factors.creep,
    RateLimitStore.probeMillis,
    RateLimitStore.probePollMillis,
    RateLimitStore.countBucketMillis,
    RateLimitStore.countBuckets,
    RateLimitStore.dueSlotLagMillis
  ],
  { numberOfKeys: 1, lua: Lua.load("rateTake") }
).withReturnType<[string, string, string, string]>()

const limitedScript = Redis.script(
  (state: string, pauseMillis: number, learn: boolean) => [
    state,
    pauseMillis,
    learn ? 1 : 0,
    ttlMillis,
    RateLimitStore.initialRate,
    RateLimitStore.minimumRate,
    RateLimitStore.congestedWithinMillis,
    RateLimitStore.factors.cut,
    RateLimitStore.factors.congestedCut,
    RateLimitStore.countBucketMillis
  ],
  { numberOfKeys: 1, lua: Lua.load("rateLimited") }
).withReturnType<string>()

const advertiseScript = Redis.script(
  (state: string, perSecond: number | undefined) => [state, perSecond ?? -1, ttlMillis],
  {
    numberOfKeys: 1,
    lua: Lua.load("rateAdvertise")
  }
).withReturnType<number>()

const delayScript = Redis.script((state: string, millis: number) => [state, millis], {
  numberOfKeys: 1,
  lua: Lua.load("rateDelay")
}).withReturnType<number>()

const slotScript = Redis.script(
  (slots: string, holder: string, max: number, leaseMillis: number) => [slots, holder, max, leaseMillis],
  { numberOfKeys: 1, lua: Lua.load("rateSlot") }
).withReturnType<number>()

const snapshotScript = Redis.script((state: string, slots: string) => [state, slots], {
  numberOfKeys: 2,
  lua: Lua.load("rateSnapshot")
}).withReturnType<[string, string, string, number]>()

const sources: ReadonlySet<string> = new Set<RateLimitStore.Source>(["none", "advertised", "probed"])

/**
 * The store over the connection in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const { prefix, redisImmediate: redis, target } = yield* RedisConnection.RedisConnection
  const failed = (error: Redis.RedisError) =>
    RateLimitStore.storeError(`rate-limit store at ${target}: ${RedisConnection.causeMessage(error)}`, error)
  const state = (vendor: string) => RedisKeys.vendor(prefix, vendor).rate("state")
  const slots = (vendor: string) => RedisKeys.vendor(prefix, vendor).rate("slots")
  return RateLimitStore.RateLimitStore.of({
    take: (vendor, pace) =>
      redis
        .eval(takeScript)(state(vendor), pace)
        .pipe(
          Effect.map(([wait, at, granted, probe]) => ({
            granted: granted === "1",
            waitMillis: Number(wait),
            at: Number(at),
            probe: probe === "1"
          })),
          Effect.mapError(failed)
        ),
    limited: (vendor, options) =>
      redis
        .eval(limitedScript)(
          state(vendor),
          options.retryAfterMillis ?? RateLimitStore.defaultPauseMillis,
          options.learn
        )
        .pipe(Effect.asVoid, Effect.mapError(failed)),
    advertise: (vendor, perSecond) =>
      redis.eval(advertiseScript)(state(vendor), perSecond).pipe(Effect.asVoid, Effect.mapError(failed)),
    delay: (vendor, millis) =>
      redis.eval(delayScript)(state(vendor), millis).pipe(Effect.asVoid, Effect.mapError(failed)),
    acquireSlot: (vendor, options) =>
      redis
        .eval(slotScript)(slots(vendor), options.holder, options.max, options.leaseMillis)
        .pipe(
          Effect.map((granted) => granted === 1),
          Effect.mapError(failed)
        ),
    releaseSlot: (vendor, holder) =>
      redis.send("ZREM", slots(vendor), holder).pipe(Effect.asVoid, Effect.mapError(failed)),
    snapshot: (vendor) =>
      redis
        .eval(snapshotScript)(state(vendor), slots(vendor))
        .pipe(
          Effect.map(([rate, source, pausedFor, inFlight]) => {
            const known = sources.has(source) ? (source as RateLimitStore.Source) : "none"
            return {
              learnedPerSecond: known === "none" ? undefined : Number(rate),
              source: known,
              pausedForMillis: Number(pausedFor),
              inFlight
            }
          }),
          Effect.mapError(failed)
        )
  })
})

/**
 * The store over a provided connection.
 *
 * @category layers
 */
export const layer: Layer.Layer<RateLimitStore.RateLimitStore, never, RedisConnection.RedisConnection> = Layer.effect(
  RateLimitStore.RateLimitStore,
  make
)

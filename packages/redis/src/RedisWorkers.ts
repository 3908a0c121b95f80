/**
 * Worker heartbeats shared through Redis (core's `Workers`), so the server of a split deployment
 * sees every worker.
 *
 * Keys, under the connection's prefix, in one hash slot (see `RedisKeys`): `{workers}:beats`, a hash
 * of each worker's last beat (JSON), and `{workers}:seen`, a sorted set of when each last beat (ms, by the beating process's clock). A beat
 * forgets workers silent for an hour. The workers' and the server's clocks are compared, so they
 * should agree within a few seconds (NTP), well inside the heartbeat TTL.
 *
 * @since 0.1.0
 */
import { Workers } from "@vendorflow/core"
import { Clock, Duration, Effect, Layer, Option, Schema } from "effect"
import { Redis } from "effect/persistence"
import * as Lua from "./internal/lua.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

const forgetAfter = Duration.hours(1)

const beatScript = Redis.script(
  (hash: string, seen: string, id: string, beat: string, now: number, staleBefore: number) => [
    hash,
    seen,
    id,
    beat,
    now,
    staleBefore
  ],
  { numberOfKeys: 2, lua: Lua.load("workersBeat") }
).withReturnType<number>()

const decodeBeat = Schema.decodeUnknownOption(Schema.fromJsonString(Workers.WorkerBeat))

/**
 * The registry over the connection in context; `ttl` is how long a beat counts.
 *
 * @category constructors
 */
export const make = (ttl: Duration.Input = Workers.defaultTtl) =>
  Effect.gen(function* () {
    const { prefix, redis, target } = yield* RedisConnection.RedisConnection
    const { beats: hash, seen } = RedisKeys.workers(prefix)
    const ttlMillis = Duration.toMillis(Duration.fromInputUnsafe(ttl))
    const unavailable = (what: string) => (error: Redis.RedisError) =>
      new Workers.WorkersError({ message: `Redis at ${target}: ${what}: ${RedisConnection.causeMessage(error)}` })

    return Workers.Workers.of({
      beat: (beat) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          redis
            .eval(beatScript)(
              hash,
              seen,
              beat.id,
              JSON.stringify({ ...beat, last_seen: new Date(now).toISOString() }),
              now,
              now - Duration.toMillis(forgetAfter)
            )
            .pipe(Effect.asVoid, Effect.mapError(unavailable("recording a heartbeat")))
        ),
      leave: (id) =>
        Effect.all([redis.send("HDEL", hash, id), redis.send("ZREM", seen, id)]).pipe(
          Effect.asVoid,
          Effect.mapError(unavailable("removing a worker"))
        ),
      alive: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const ids = yield* redis.send<ReadonlyArray<string>>("ZREVRANGEBYSCORE", seen, "+inf", String(now - ttlMillis))
        if (ids.length === 0) return []
        const beats = yield* redis.send<ReadonlyArray<string | null>>("HMGET", hash, ...ids)
        return beats.flatMap((text) => (text === null ? [] : Option.toArray(decodeBeat(text))))
      }).pipe(Effect.mapError(unavailable("reading the workers")))
    })
  })

/**
 * The registry over a provided connection.
 *
 * @category layers
 */
export const layer: Layer.Layer<Workers.Workers, never, RedisConnection.RedisConnection> = Layer.effect(
  Workers.Workers,
  make()
)

/**
 * The {@link JobQueue.JobQueue} on Redis Streams: at-least-once delivery of job ids, one stream per
 * vendor, shared by every worker process through one consumer group.
 *
 * Keys, for vendor `v` under prefix `p` (`REDIS_PREFIX`, default `vendorflow:`), all in the
 * vendor's hash slot (see `RedisKeys`), so every script runs on Redis Cluster:
 * - `p{v:v}:stream`: the jobs, one entry each (`jobId`, `deliveries` before this entry), read by the
 *   consumer group `workers`, which is created with the stream (from id 0, so nothing added before
 *   it is skipped) and recreated when Redis lost it.
 * - `p{v:v}:delayed`: a sorted set of jobs waiting for a retry, scored by due time.
 * - `p{v:v}:dead`: the dead letters (`jobId`, `reason`, `at`).
 *
 * How the operations map onto Redis:
 * - `enqueue` and `enqueueMany`: one script for all the ids, an `XADD` each, trimming as described
 *   below.
 * - `take`: first reclaims entries that sat unacknowledged and unrenewed past the visibility timeout
 *   (their worker is presumed dead) with `XAUTOCLAIM`, then reads new ones with `XREADGROUP … BLOCK` on a
 *   dedicated connection, never the shared command connection. A take looks for entries to reclaim
 *   only when a tenth of the visibility timeout has passed since a look that reached the end of the
 *   pending list found none, so a dead worker's entries are taken over within about 1.1 timeouts
 *   (as before, a worker with no free slot takes nothing, and looks at nothing). Each process
 *   reads as its own consumer (`hostname-pid-random`). A delivery's count is the entry's
 *   `deliveries` field plus the entry's delivery counter from `XPENDING`.
 * - delivery limit: no job is run more than `deliveryLimit` times in all, counting crash
 *   redeliveries and retries: a delivery past it comes out marked `exhausted`, and the engine fails
 *   the job's record (`DeliveryLimit`) and dead-letters it, so the record and the dead letters agree.
 * - `renew`: one script per batch: the entries this consumer still holds are claimed again by it
 *   (`XCLAIM` with no minimum idle time, `JUSTID`), which resets their idle time, so a job that
 *   waits long on its vendor's rate limit or call is not reclaimed from a live worker.
 * - `ack`: one script per batch that `XACK`s the entries this consumer still holds: one that was
 *   reclaimed by another consumer stays with that one. Acknowledged entries stay in the stream until trimming rather than being
 *   `XDEL`eted one by one: that saves a write per job, keeps recent history readable with `XRANGE`,
 *   and `XTRIM MINID ~` frees whole nodes at once where `XDEL` leaves tombstones behind.
 * - `retryLater`: acknowledges the entry (as `ack` does) and parks the job in the delayed set, in one script; a
 *   poller fiber in the layer's scope (every `pollInterval`) moves due jobs back into the stream
 *   with one script (`ZRANGEBYSCORE` + `XADD` + `ZREM`), so pollers of several workers racing
 *   each other move a job exactly once, and a crash can neither lose nor double it. Due times are
 *   on the Redis server's clock, so worker clock skew does not matter.
 * - `deadLetter`: `XADD` to the dead-letter stream plus the `XACK` of `ack`, in one script.
 *
 * Trimming never drops an unacknowledged entry. Plain `XADD MAXLEN ~ N` would: it counts every
 * entry, so a backlog longer than N loses jobs nobody has read. Instead, once the stream is longer
 * than `maxLength`, `enqueue`'s script trims with `XTRIM MINID ~ <id>`, where `<id>` is the oldest
 * entry the group still needs: the smallest id in its pending list (delivered, unacknowledged),
 * else its `last-delivered-id` (everything after it is undelivered). Everything below that id is
 * delivered and acknowledged. So the stream holds at most about `maxLength` entries plus the
 * unacknowledged ones; a stuck pending entry holds trimming back until it is reclaimed, and
 * reclaiming ends with an acknowledgement or, past `deliveryLimit`, a dead letter.
 *
 * Every change to more than one key is one Lua script in `src/lua/`, whose header documents its
 * KEYS and ARGV; scripts run with `EVALSHA` and are reloaded when Redis has forgotten them.
 *
 * A delivery must be renewed or acknowledged within the visibility timeout, or another worker takes
 * it over: the engine renews its deliveries every third of it, so it need only exceed the longest a
 * worker can stall (a pause of its event loop, a store outage).
 *
 * Layers: {@link layer} (over a provided {@link RedisConnection.RedisConnection}) and
 * {@link layerConfig} (`REDIS_URL`, `REDIS_PREFIX`, `QUEUE_VISIBILITY_TIMEOUT`,
 * `QUEUE_DELIVERY_LIMIT`, `QUEUE_MAXLEN`).
 *
 * @since 0.1.0
 */
import { hostname } from "node:os"
import { Job, JobQueue } from "@vendorflow/core"
import {
  Clock,
  Config,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Request,
  RequestResolver,
  Schedule,
  Schema
} from "effect"
import { Redis } from "effect/persistence"
import * as Lua from "./internal/lua.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

/**
 * Queue settings; every field has a default.
 *
 * @category models
 */
export interface Options {
  /** How long a delivery may stay unacknowledged and unrenewed before another worker reclaims it; default 30 seconds. */
  readonly visibilityTimeout?: Duration.Input | undefined
  /** How many times a job is handed to workers at most before it is dead-lettered; default 5. */
  readonly deliveryLimit?: number | undefined
  /** Stream length past which acknowledged entries are trimmed (also caps the dead-letter stream); default 100,000. */
  readonly maxLength?: number | undefined
  /** How often due retries are moved back into the streams; default 200 ms. */
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
  pollInterval: Duration.millis(200)
} as const

/**
 * The consumer group that every worker reads through.
 *
 * @category constants
 */
export const group = "workers"

/**
 * A stream's max length under `options` (see `Options.maxLength`).
 *
 * @category utils
 */
export const maxLengthOf = (options: Pick<Options, "maxLength">): number =>
  Math.max(1, Math.floor(options.maxLength ?? defaults.maxLength))

const enqueueScript = Redis.script(
  (stream: string, maxLength: number, jobIds: ReadonlyArray<string>) => [stream, group, maxLength, ...jobIds],
  { numberOfKeys: 1, lua: `${Lua.load("enqueue")}\nreturn enqueueJobs(KEYS[1], ARGV[1], ARGV[2], ARGV, 3)` }
).withReturnType<number>()

const reclaimScript = Redis.script(
  (options: {
    readonly stream: string
    readonly consumer: string
    readonly minIdleMillis: number
    readonly count: number
    readonly cursor: string
  }) => [options.stream, group, options.consumer, options.minIdleMillis, options.count, options.cursor],
  { numberOfKeys: 1, lua: Lua.load("reclaim") }
).withReturnType<unknown>()

const retryScript = Redis.script(
  (options: {
    readonly stream: string
    readonly delayed: string
    readonly id: string
    readonly delayMillis: number
    readonly member: string
    readonly consumer: string
  }) => [options.stream, options.delayed, group, options.id, options.delayMillis, options.member, options.consumer],
  { numberOfKeys: 2, lua: Lua.load("retry") }
).withReturnType<number>()

// `ack` and `renew` take the same arguments: the entries this consumer holds, of one stream.
const heldScript = (name: "ack" | "renew") =>
  Redis.script((stream: string, consumer: string, ids: ReadonlyArray<string>) => [stream, group, consumer, ...ids], {
    numberOfKeys: 1,
    lua: Lua.load(name)
  }).withReturnType<number>()
const ackScript = heldScript("ack")
const renewScript = heldScript("renew")

const promoteScript = Redis.script(
  (delayed: string, stream: string, batch: number) => [delayed, stream, group, batch],
  { numberOfKeys: 2, lua: Lua.load("promote") }
).withReturnType<number>()

const deadLetterScript = Redis.script(
  (options: {
    readonly stream: string
    readonly dead: string
    readonly id: string
    readonly jobId: string
    readonly reason: string
    readonly at: string
    readonly deliveries: number
    readonly maxLength: number
    readonly consumer: string
  }) => [
    options.stream,
    options.dead,
    group,
    options.id,
    options.jobId,
    options.reason,
    options.at,
    options.deliveries,
    options.maxLength,
    options.consumer
  ],
  { numberOfKeys: 2, lua: Lua.load("deadLetter") }
).withReturnType<string>()

const releaseConsumerScript = Redis.script((stream: string, consumer: string) => [stream, group, consumer], {
  numberOfKeys: 1,
  lua: Lua.load("releaseConsumer")
}).withReturnType<number>()

const Entries = Schema.Array(Schema.Tuple([Schema.String, Schema.Array(Schema.String)]))

// `XINFO GROUPS`: one flat [name, value, …] list per group; values are strings, numbers or nil.
const GroupsInfo = Schema.Array(Schema.Array(Schema.Union([Schema.String, Schema.Number, Schema.Null])))

const groupFields = (flat: ReadonlyArray<string | number | null>): ReadonlyMap<string, string | number | null> => {
  const fields = new Map<string, string | number | null>()
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1] ?? null)
  return fields
}
const ReadReply = Schema.NullOr(Schema.Array(Schema.Tuple([Schema.String, Entries])))
const ReclaimReply = Schema.Tuple([
  Schema.String,
  Schema.Array(Schema.Tuple([Schema.String, Schema.String, Schema.Number]))
])

/** How many due retries one script call moves; the poller calls again while there are more. */
const promoteBatch = 100

const fieldsOf = (flat: ReadonlyArray<string>): ReadonlyMap<string, string> => {
  const fields = new Map<string, string>()
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!)
  return fields
}

const decodeJobId = Schema.decodeUnknownOption(Job.JobId)

// One delivery's acknowledgement (or renewal), batched with the others of its vendor made with it.
interface Held extends Request.Request<void, JobQueue.JobQueueError> {
  readonly vendor: string
  readonly id: string
}
const Held = Request.of<Held>()

/**
 * The queue over the connection in context; its poller runs until the scope closes.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const connection = yield* RedisConnection.RedisConnection
  const { prefix, redis, target } = connection
  const visibilityMillis = Math.max(
    1,
    Math.round(Duration.toMillis(Duration.fromInputUnsafe(options.visibilityTimeout ?? defaults.visibilityTimeout)))
  )
  const deliveryLimit = Math.max(1, Math.floor(options.deliveryLimit ?? defaults.deliveryLimit))
  const maxLength = maxLengthOf(options)
  const pollInterval = Duration.fromInputUnsafe(options.pollInterval ?? defaults.pollInterval)
  const commandTimeoutMillis = Duration.toMillis(connection.commandTimeout)
  // Unique per layer instance, so two instances in one process are two consumers, like two workers.
  const consumer = `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 8)}`

  /** Vendors this instance consumes: their delayed sets are polled and their consumers released at the end. */
  const vendors = new Set<string>()
  /** Where the next XAUTOCLAIM continues, so entries deep in a busy pending list get their turn. */
  const cursors = new Map<string, string>()
  /**
   * When a take next looks for entries to reclaim (ms on the monotonic clock, which a wall-clock
   * step cannot hold back). Looking at every take cost Redis more than reading the new entries.
   */
  const reclaimDue = new Map<string, number>()
  const reclaimEveryMillis = visibilityMillis / 10
  const monotonicMillis = Effect.map(Clock.monotonicTimeNanos, (nanos) => Number(nanos / 1_000_000n))

  const unavailable = (error: unknown) =>
    new JobQueue.JobQueueError({
      reason: "Unavailable",
      message: `Redis at ${target}: ${RedisConnection.causeMessage(error)}`
    })

  const decode = <A>(schema: Schema.ConstraintDecoder<A>, reply: unknown) =>
    Schema.decodeUnknownEffect(schema)(reply).pipe(
      Effect.mapError(
        (error) =>
          new JobQueue.JobQueueError({
            reason: "Unavailable",
            message: `unexpected reply from Redis at ${target}: ${error.message}`
          })
      )
    )

  const now = Clock.currentTimeMillis.pipe(Effect.map((millis) => new Date(millis).toISOString()))

  const ensureGroup = (stream: string) =>
    redis.send("XGROUP", "CREATE", stream, group, "0", "MKSTREAM").pipe(
      Effect.asVoid,
      Effect.catchIf(
        (error) => RedisConnection.causeMessage(error).includes("BUSYGROUP"),
        () => Effect.void
      )
    )

  /** Runs `effect`, recreating the group first if Redis lost it (a restart without persistence). */
  const withGroup = <A>(stream: string, effect: Effect.Effect<A, Redis.RedisError>) =>
    effect.pipe(
      Effect.catchIf(
        (error) => RedisConnection.causeMessage(error).includes("NOGROUP"),
        () => Effect.andThen(ensureGroup(stream), effect)
      )
    )

  const consume = (vendor: string) =>
    vendors.has(vendor)
      ? Effect.void
      : ensureGroup(RedisKeys.vendor(prefix, vendor).stream).pipe(
          Effect.tap(() => Effect.sync(() => vendors.add(vendor)))
        )

  const toDeliveries = (
    vendor: string,
    rows: ReadonlyArray<readonly [id: string, jobId: string | undefined, count: number]>
  ) =>
    Effect.forEach(rows, ([id, rawJobId, deliveryCount]) => {
      const jobId = decodeJobId(rawJobId)
      const exhausted = deliveryCount > deliveryLimit
      if (Option.isSome(jobId)) {
        return Effect.succeed(
          Option.some<JobQueue.Delivery>({
            id,
            vendor,
            jobId: jobId.value,
            deliveryCount,
            ...(exhausted ? { exhausted } : {})
          })
        )
      }
      // Not a job: left pending, so reclaiming counts its deliveries, until the limit dead-letters it.
      const { dead, stream } = RedisKeys.vendor(prefix, vendor)
      const given = exhausted
        ? Effect.flatMap(now, (at) =>
            redis.eval(deadLetterScript)({
              stream,
              dead,
              id,
              jobId: rawJobId ?? "",
              reason: "DeliveryLimit: not a job id",
              at,
              deliveries: deliveryCount - 1,
              maxLength,
              consumer
            })
          ).pipe(Effect.mapError(unavailable), Effect.asVoid)
        : Effect.logWarning(`skipping stream entry ${id} of ${vendor}: not a job id`)
      return Effect.as(given, Option.none())
    }).pipe(Effect.map((found) => found.flatMap((delivery) => (Option.isSome(delivery) ? [delivery.value] : []))))

  const read = (stream: string, count: number, blockMillis: number) => {
    const args = ["GROUP", group, consumer, "COUNT", String(count)]
    if (blockMillis <= 0) return redis.send<unknown>("XREADGROUP", ...args, "STREAMS", stream, ">")
    return Effect.scoped(
      redis.reserve.pipe(
        // With every dedicated connection busy, wait no longer than the caller was willing to block.
        Effect.timeoutOption(Duration.millis(blockMillis)),
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.succeed<unknown>(null),
            onSome: (reserved) =>
              reserved.send<unknown>("XREADGROUP", ...args, "BLOCK", String(blockMillis), "STREAMS", stream, ">").pipe(
                // A server that stops answering without closing the socket must not hold the read forever.
                Effect.timeoutOrElse({
                  duration: Duration.millis(blockMillis + commandTimeoutMillis),
                  orElse: () => Effect.fail(new Redis.RedisError({ cause: new Error("blocking read got no answer") }))
                })
              )
          })
        )
      )
    )
  }

  const take = Effect.fnUntraced(function* (
    vendor: string,
    takeOptions: {
      readonly max: number
      readonly block: Duration.Input
    }
  ) {
    const { stream } = RedisKeys.vendor(prefix, vendor)
    const count = Math.max(1, Math.floor(takeOptions.max))
    yield* consume(vendor).pipe(Effect.mapError(unavailable))

    // A look that found entries, or stopped partway through the pending list, goes on at the next
    // take; one that went to its end and found none waits a tenth of the timeout.
    const lookedAt = yield* monotonicMillis
    if (lookedAt >= (reclaimDue.get(vendor) ?? Number.NEGATIVE_INFINITY)) {
      const reclaimReply = yield* withGroup(
        stream,
        redis.eval(reclaimScript)({
          stream,
          consumer,
          minIdleMillis: visibilityMillis,
          count,
          cursor: cursors.get(vendor) ?? "0-0"
        })
      ).pipe(Effect.mapError(unavailable))
      const [cursor, reclaimed] = yield* decode(ReclaimReply, reclaimReply)
      cursors.set(vendor, cursor)
      if (reclaimed.length > 0) return yield* toDeliveries(vendor, reclaimed)
      if (cursor === "0-0") reclaimDue.set(vendor, lookedAt + reclaimEveryMillis)
    }

    const blockMillis = Math.max(0, Math.round(Duration.toMillis(Duration.fromInputUnsafe(takeOptions.block))))
    const reply = yield* withGroup(stream, read(stream, count, blockMillis)).pipe(Effect.mapError(unavailable))
    const streams = (yield* decode(ReadReply, reply)) ?? []
    return yield* toDeliveries(
      vendor,
      streams.flatMap(([, entries]) =>
        entries.map(([id, flat]) => {
          const fields = fieldsOf(flat)
          return [id, fields.get("jobId"), Number(fields.get("deliveries") ?? "0") + 1] as const
        })
      )
    )
  })

  const promote = (vendor: string): Effect.Effect<void, Redis.RedisError> =>
    Effect.gen(function* () {
      const { delayed, stream } = RedisKeys.vendor(prefix, vendor)
      const moved = yield* redis.eval(promoteScript)(delayed, stream, promoteBatch)
      if (moved >= promoteBatch) yield* promote(vendor)
    })

  // A Redis outage is logged once when it starts and once when it ends, not on every tick.
  let failing = false
  yield* Effect.suspend(() => Effect.forEach([...vendors], promote, { discard: true })).pipe(
    Effect.matchEffect({
      onFailure: (error) =>
        failing
          ? Effect.void
          : Effect.sync(() => {
              failing = true
            }).pipe(
              Effect.andThen(
                Effect.logWarning(
                  `moving due retries to their streams failed: ${RedisConnection.causeMessage(error)}; retrying`
                )
              )
            ),
      onSuccess: () =>
        failing
          ? Effect.sync(() => {
              failing = false
            }).pipe(Effect.andThen(Effect.logInfo("moving due retries to their streams works again")))
          : Effect.void
    }),
    Effect.repeat(Schedule.spaced(pollInterval)),
    Effect.forkScoped
  )

  yield* Effect.addFinalizer(() =>
    Effect.forEach(
      [...vendors],
      (vendor) =>
        redis.eval(releaseConsumerScript)(RedisKeys.vendor(prefix, vendor).stream, consumer).pipe(Effect.ignore),
      { discard: true }
    ).pipe(Effect.timeoutOption(connection.commandTimeout), Effect.ignore)
  )

  const enqueueMany = Effect.fnUntraced(function* (vendor: string, jobIds: ReadonlyArray<Job.JobId>) {
    if (jobIds.length === 0) return
    yield* redis
      .eval(enqueueScript)(RedisKeys.vendor(prefix, vendor).stream, maxLength, jobIds)
      .pipe(Effect.mapError(unavailable))
  })

  // The acknowledgements (or renewals) of one vendor's deliveries made together (those of one
  // take, which run in step) leave as one script: Effect's request batching collects them.
  const batched = (script: typeof ackScript) =>
    RequestResolver.makeGrouped<Held, string>({
      key: ({ request }) => request.vendor,
      resolver: (entries, vendor) =>
        redis
          .eval(script)(
            RedisKeys.vendor(prefix, vendor).stream,
            consumer,
            entries.map((entry) => entry.request.id)
          )
          .pipe(
            Effect.mapError(unavailable),
            Effect.map(() => entries.forEach((entry) => entry.completeUnsafe(Exit.void)))
          )
    })
  const acks = batched(ackScript)
  const renewals = batched(renewScript)

  return JobQueue.JobQueue.of({
    visibilityTimeout: Duration.millis(visibilityMillis),
    enqueue: (vendor, jobId) => enqueueMany(vendor, [jobId]),
    enqueueMany,
    take,
    renew: (delivery) => Effect.request(Held({ vendor: delivery.vendor, id: delivery.id }), renewals),
    ack: (delivery) => Effect.request(Held({ vendor: delivery.vendor, id: delivery.id }), acks),
    retryLater: Effect.fnUntraced(function* (delivery, delay) {
      const { delayed, stream } = RedisKeys.vendor(prefix, delivery.vendor)
      const delayMillis = Math.max(0, Math.round(Duration.toMillis(Duration.fromInputUnsafe(delay))))
      yield* consume(delivery.vendor).pipe(
        Effect.andThen(
          redis.eval(retryScript)({
            stream,
            delayed,
            id: delivery.id,
            delayMillis,
            member: `${delivery.deliveryCount}:${delivery.jobId}`,
            consumer
          })
        ),
        Effect.mapError(unavailable)
      )
    }),
    deadLetter: Effect.fnUntraced(function* (givenUp, reason) {
      const { dead, stream } = RedisKeys.vendor(prefix, givenUp.vendor)
      yield* redis
        .eval(deadLetterScript)({
          stream,
          dead,
          id: givenUp.id ?? "",
          jobId: givenUp.jobId,
          reason,
          at: yield* now,
          deliveries: givenUp.deliveryCount ?? 0,
          maxLength,
          consumer
        })
        .pipe(Effect.mapError(unavailable))
    }),
    depth: Effect.fnUntraced(function* (vendor) {
      const { stream, delayed } = RedisKeys.vendor(prefix, vendor)
      const [groups, waitingToRetry] = yield* Effect.all(
        [
          redis.send<unknown>("XINFO", "GROUPS", stream).pipe(
            // No stream yet: nothing was ever queued for this vendor.
            Effect.catchIf(
              (error) => RedisConnection.causeMessage(error).includes("no such key"),
              () => Effect.succeed([])
            )
          ),
          redis.send<number>("ZCARD", delayed)
        ],
        { concurrency: 2 }
      ).pipe(Effect.mapError(unavailable))
      const info = yield* decode(GroupsInfo, groups)
      const ours = info.map(groupFields).find((fields) => fields.get("name") === group)
      // `lag` (entries not yet delivered to the group) is unknown only after deletions inside the
      // undelivered range, which this queue never makes; count none then rather than guess.
      const lag = Number(ours?.get("lag") ?? 0)
      const pending = Number(ours?.get("pending") ?? 0)
      return (Number.isFinite(lag) ? lag : 0) + pending + waitingToRetry
    }),
    deadLetters: Effect.fnUntraced(function* (vendor) {
      const reply = yield* redis
        .send<unknown>("XRANGE", RedisKeys.vendor(prefix, vendor).dead, "-", "+")
        .pipe(Effect.mapError(unavailable))
      const entries = yield* decode(Entries, reply)
      return entries.flatMap(([, flat]): Array<JobQueue.DeadLetter> => {
        const fields = fieldsOf(flat)
        const jobId = decodeJobId(fields.get("jobId"))
        if (Option.isNone(jobId)) return []
        return [{ vendor, jobId: jobId.value, reason: fields.get("reason") ?? "", at: fields.get("at") ?? "" }]
      })
    })
  })
})

/**
 * The queue over a provided {@link RedisConnection.RedisConnection}.
 *
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<JobQueue.JobQueue, never, RedisConnection.RedisConnection> =>
  Layer.effect(JobQueue.JobQueue, make(options))

const atLeastOne = (name: string) =>
  Config.schema(Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1))), name)

/**
 * The settings read by {@link layerConfig}: `QUEUE_VISIBILITY_TIMEOUT` (a duration such as
 * `30 seconds`), `QUEUE_DELIVERY_LIMIT` and `QUEUE_MAXLEN`.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  visibilityTimeout: Config.Duration("QUEUE_VISIBILITY_TIMEOUT").pipe(Config.withDefault(defaults.visibilityTimeout)),
  deliveryLimit: atLeastOne("QUEUE_DELIVERY_LIMIT").pipe(Config.withDefault(defaults.deliveryLimit)),
  maxLength: atLeastOne("QUEUE_MAXLEN").pipe(Config.withDefault(defaults.maxLength))
})

/**
 * The queue configured from the environment, over {@link RedisConnection.layerConfig} (shared with
 * the other layers of this package that are built alongside it).
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<JobQueue.JobQueue, RedisConnection.RedisConnectionError | Config.ConfigError> =
  Layer.unwrap(Effect.map(config, layer)).pipe(Layer.provide(RedisConnection.layerConfig))

import { assert, describe, it } from "@effect/vitest"
import { Job, JobQueue } from "@vendorflow/core"
import { JobQueueSuite } from "@vendorflow/core/testing"
import { ConfigProvider, Context, Duration, Effect, Exit, Fiber, Layer, Redacted, Scope } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisJobQueue from "../src/RedisJobQueue.ts"
import * as RedisKeys from "../src/RedisKeys.ts"
import { RedisTest } from "../src/testing/index.ts"
import { eventually, redisServer, redisServerUnavailable, vendorName, ownServerTitle } from "./RedisFixtures.ts"

/** A queue instance of its own (its own connections and consumer name), like one worker process. */
const queueOn = (
  prefix: string,
  options: RedisJobQueue.Options = {},
  connection: Partial<RedisConnection.Options> = {}
) =>
  Layer.build(
    RedisJobQueue.layer(options).pipe(
      Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix, ...connection }))
    )
  ).pipe(Effect.map(Context.get(JobQueue.JobQueue)))

const nonEmpty = <A>(as: ReadonlyArray<A>) => as.length > 0

RedisTest.describeRedis("RedisJobQueue", ({ prefix: suitePrefix }) => {
  JobQueueSuite.suite(
    "redis",
    RedisJobQueue.layer().pipe(Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix: suitePrefix })))
  )

  describe("on Redis Streams", () => {
    it.live("a dead consumer's delivery is reclaimed after the visibility timeout, counting the delivery", () =>
      Effect.gen(function* () {
        const { prefix } = yield* RedisTest.scratch
        const dying = yield* queueOn(prefix)
        const survivor = yield* queueOn(prefix, { visibilityTimeout: "300 millis" })
        const vendor = vendorName()
        const id = Job.makeJobId()
        yield* dying.enqueue(vendor, id)
        const [first] = yield* dying.take(vendor, { max: 1, block: "1 second" })
        assert.deepStrictEqual([first?.jobId, first?.deliveryCount], [id, 1])

        // `dying` never acknowledges; `survivor` gets the entry once it sat idle for 300 ms.
        const [elapsed, [again]] = yield* eventually(survivor.take(vendor, { max: 1, block: "100 millis" }), nonEmpty, {
          within: "3 seconds",
          what: "reclaimed delivery"
        }).pipe(Effect.timed)
        assert.deepStrictEqual([again?.id, again?.jobId, again?.deliveryCount], [first?.id, id, 2])
        assert.isAtLeast(Duration.toMillis(elapsed), 250)
        yield* survivor.ack(again!)
        assert.deepStrictEqual(yield* survivor.take(vendor, { max: 1, block: "500 millis" }), [])
      })
    )

    it.live("a late acknowledgement of a delivery another consumer reclaimed leaves it with that consumer", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const stale = yield* queueOn(prefix, { visibilityTimeout: "200 millis" })
        const current = yield* queueOn(prefix, { visibilityTimeout: "200 millis" })
        const vendor = vendorName()
        const stream = RedisKeys.vendor(prefix, vendor).stream
        yield* stale.enqueue(vendor, Job.makeJobId())
        const [first] = yield* stale.take(vendor, { max: 1, block: "1 second" })
        const [reclaimed] = yield* eventually(current.take(vendor, { max: 1, block: "50 millis" }), nonEmpty, {
          within: "3 seconds",
          what: "reclaimed delivery"
        })
        assert.strictEqual(reclaimed?.id, first?.id)
        const pending = () =>
          redis.send<ReadonlyArray<unknown>>("XPENDING", stream, RedisJobQueue.group, "-", "+", "10")
        // The stale worker wakes up and lets go of everything it thinks it holds.
        yield* stale.ack(first!)
        yield* stale.retryLater(first!, "1 hour")
        yield* stale.deadLetter(first!, "Rejected: stale")
        assert.strictEqual((yield* pending()).length, 1, "still pending, with the consumer that reclaimed it")
        yield* current.ack(reclaimed!)
        assert.deepStrictEqual(yield* pending(), [])
      })
    )

    it.live("a delivery renewed within the visibility timeout is never reclaimed, nor its count raised", () =>
      Effect.gen(function* () {
        const { prefix } = yield* RedisTest.scratch
        const holder = yield* queueOn(prefix, { visibilityTimeout: "300 millis" })
        const other = yield* queueOn(prefix, { visibilityTimeout: "300 millis" })
        const vendor = vendorName()
        yield* holder.enqueue(vendor, Job.makeJobId())
        const [held] = yield* holder.take(vendor, { max: 1, block: "1 second" })
        // Renewed every 100 ms for 1.2 s, four visibility timeouts: the other consumer gets nothing.
        const renewing = yield* Effect.forkChild(
          holder.renew(held!).pipe(Effect.delay("100 millis"), Effect.repeat({ times: 11 }))
        )
        const taken = yield* Effect.forEach(Array.from({ length: 8 }), () =>
          other.take(vendor, { max: 1, block: "100 millis" })
        )
        assert.deepStrictEqual(taken.flat(), [])
        yield* Fiber.join(renewing)
        // Renewals stop (the worker died): another consumer reclaims it, as its second delivery.
        const [again] = yield* eventually(other.take(vendor, { max: 1, block: "50 millis" }), nonEmpty, {
          within: "3 seconds",
          what: "reclaimed delivery"
        })
        assert.deepStrictEqual([again?.id, again?.deliveryCount], [held?.id, 2])
        // The first holder's renewal now leaves it alone.
        yield* holder.renew(held!)
        yield* other.ack(again!)
      })
    )

    it.live.skipIf(redisServerUnavailable !== undefined)(
      ownServerTitle(
        "a busy consumer looks for entries to reclaim every tenth of the visibility timeout, not every take"
      ),
      () =>
        Effect.gen(function* () {
          const server = yield* redisServer
          yield* server.start
          const prefix = RedisTest.randomPrefix()
          const { redis } = yield* Layer.build(RedisConnection.layer({ url: server.url, prefix })).pipe(
            Effect.map(Context.get(RedisConnection.RedisConnection))
          )
          const dying = yield* queueOn(prefix, {}, { url: server.url })
          const busy = yield* queueOn(prefix, { visibilityTimeout: "1 second" }, { url: server.url })
          const vendor = vendorName()
          const abandoned = Job.makeJobId()
          yield* dying.enqueue(vendor, abandoned)
          yield* dying.take(vendor, { max: 1, block: "1 second" })
          yield* redis.send("CONFIG", "RESETSTAT")

          // The busy consumer takes new jobs one at a time, and lets each go, until the abandoned one
          // has sat a visibility timeout and it reclaims that.
          let takes = 0
          const [elapsed, reclaimed] = yield* eventually(
            Effect.gen(function* () {
              yield* busy.enqueue(vendor, Job.makeJobId())
              const taken = yield* busy.take(vendor, { max: 1, block: "1 second" })
              takes++
              for (const delivery of taken) if (delivery.jobId !== abandoned) yield* busy.ack(delivery)
              return taken.find((delivery) => delivery.jobId === abandoned)
            }),
            (found) => found !== undefined,
            { within: "5 seconds", what: "the abandoned delivery reclaimed" }
          ).pipe(Effect.timed)
          assert.strictEqual(reclaimed?.deliveryCount, 2)
          assert.isBelow(Duration.toMillis(elapsed), 2000, "taken over within about 1.1 visibility timeouts")

          const stats = yield* redis.send<string>("INFO", "commandstats")
          const looks = Number(/cmdstat_xautoclaim:calls=(\d+)/.exec(stats)?.[1] ?? "0")
          // The first take looks, and then one look every 100 ms, not one every take.
          assert.isAtMost(looks, Math.ceil(Duration.toMillis(elapsed) / 100) + 1, `${looks} looks in ${takes} takes`)
          assert.isAtLeast(looks, 5, `${looks} looks in ${takes} takes`)
          assert.isBelow(looks * 4, takes, `${looks} looks in ${takes} takes`)
          yield* busy.ack(reclaimed!)
        })
    )

    it.live("a look that stops partway through a long pending list goes on at the next take", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const live = yield* queueOn(prefix)
        const dying = yield* queueOn(prefix)
        // Looks over the whole list a tenth of a minute apart: reclaiming within seconds means that
        // each look went on from where the one before stopped.
        const reclaimer = yield* queueOn(prefix, { visibilityTimeout: "1 minute" })
        const vendor = vendorName()
        const { stream } = RedisKeys.vendor(prefix, vendor)
        // A live worker holds 40 entries; a take of one checks 10 pending entries a look.
        yield* live.enqueueMany(
          vendor,
          Array.from({ length: 40 }, () => Job.makeJobId())
        )
        assert.strictEqual((yield* live.take(vendor, { max: 40, block: "1 second" })).length, 40)
        const abandoned = Job.makeJobId()
        yield* dying.enqueue(vendor, abandoned)
        const [entry] = yield* dying.take(vendor, { max: 1, block: "1 second" })
        // Its worker died two minutes ago: the entry sat idle past the timeout, after the live ones.
        yield* redis.send(
          "XCLAIM",
          stream,
          RedisJobQueue.group,
          "dead-worker",
          "0",
          entry!.id,
          "IDLE",
          "120000",
          "JUSTID"
        )

        const [again] = yield* eventually(reclaimer.take(vendor, { max: 1, block: "50 millis" }), nonEmpty, {
          within: "3 seconds",
          what: "the abandoned delivery reclaimed"
        })
        assert.deepStrictEqual([again?.jobId, again?.deliveryCount], [abandoned, 2])
      })
    )

    it.live(
      "past the delivery limit a job comes out once more, marked exhausted; dead-lettered, it is not delivered again",
      () =>
        Effect.gen(function* () {
          const { prefix, redis } = yield* RedisTest.scratch
          const queue = yield* queueOn(prefix, { visibilityTimeout: "150 millis", deliveryLimit: 3 })
          const vendor = vendorName()
          const id = Job.makeJobId()
          yield* queue.enqueue(vendor, id)
          const seen: Array<JobQueue.Delivery> = []
          // Take without ever acknowledging, as a worker that crashes on this job would.
          const last = yield* eventually(
            queue.take(vendor, { max: 1, block: "50 millis" }).pipe(
              Effect.tap((taken) => Effect.sync(() => seen.push(...taken))),
              Effect.map((taken) => taken.find((delivery) => delivery.exhausted === true))
            ),
            (found) => found !== undefined,
            { within: "5 seconds", what: "an exhausted delivery" }
          )
          assert.deepStrictEqual(
            seen.map((d) => [d.deliveryCount, d.exhausted ?? false]),
            [
              [1, false],
              [2, false],
              [3, false],
              [4, true]
            ]
          )
          // The engine gives it up: a dead letter, and the entry acknowledged.
          yield* queue.deadLetter(last!, "DeliveryLimit: handed to workers 3 times without an outcome")
          const letters = yield* queue.deadLetters(vendor)
          assert.deepStrictEqual(
            letters.map((l) => l.jobId),
            [id]
          )
          assert.match(letters[0]!.reason, /^DeliveryLimit/)
          assert.deepStrictEqual(yield* queue.take(vendor, { max: 1, block: "400 millis" }), [])
          const [pending] = yield* redis.send<[number]>(
            "XPENDING",
            RedisKeys.vendor(prefix, vendor).stream,
            RedisJobQueue.group
          )
          assert.strictEqual(pending, 0)
        })
    )

    it.live("a retry that falls due past the delivery limit comes out marked exhausted", () =>
      Effect.gen(function* () {
        const { prefix } = yield* RedisTest.scratch
        const queue = yield* queueOn(prefix, { deliveryLimit: 2, pollInterval: "10 millis" })
        const vendor = vendorName()
        yield* queue.enqueue(vendor, Job.makeJobId())
        const counts: Array<readonly [number, boolean]> = []
        yield* eventually(
          queue.take(vendor, { max: 1, block: "100 millis" }).pipe(
            Effect.tap((taken) =>
              Effect.forEach(
                taken,
                (delivery) =>
                  Effect.sync(() => counts.push([delivery.deliveryCount, delivery.exhausted ?? false])).pipe(
                    Effect.andThen(
                      delivery.exhausted === true ? queue.ack(delivery) : queue.retryLater(delivery, "20 millis")
                    )
                  ),
                { discard: true }
              )
            ),
            Effect.map(() => counts.length)
          ),
          (n) => n >= 3,
          { within: "5 seconds", what: "three deliveries" }
        )
        assert.deepStrictEqual(counts, [
          [1, false],
          [2, false],
          [3, true]
        ])
      })
    )

    it.live(
      "delayed retries wait in the sorted set, survive their worker, and are moved exactly once by racing pollers",
      () =>
        Effect.gen(function* () {
          const { prefix, redis } = yield* RedisTest.scratch
          const vendor = vendorName()
          const { delayed, stream } = RedisKeys.vendor(prefix, vendor)
          const ids = Array.from({ length: 30 }, () => Job.makeJobId())

          const workerScope = yield* Scope.make()
          const worker = yield* queueOn(prefix).pipe(Scope.provide(workerScope))
          for (const id of ids) yield* worker.enqueue(vendor, id)
          const taken = yield* worker.take(vendor, { max: 100, block: "1 second" })
          assert.strictEqual(taken.length, ids.length)
          for (const delivery of taken) yield* worker.retryLater(delivery, "600 millis")
          // The worker goes away while its retries wait: they are in Redis, not in its memory.
          yield* Scope.close(workerScope, Exit.void)
          assert.strictEqual(yield* redis.send<number>("ZCARD", delayed), ids.length)
          const [pending] = yield* redis.send<[number]>("XPENDING", stream, RedisJobQueue.group)
          assert.strictEqual(pending, 0)

          // Two workers whose pollers tick every 5 ms race to move the retries once they fall due.
          const first = yield* queueOn(prefix, { pollInterval: "5 millis" })
          const second = yield* queueOn(prefix, { pollInterval: "5 millis" })
          const received: Array<JobQueue.Delivery> = []
          const takeAll = (queue: JobQueue.JobQueue["Service"]) =>
            queue.take(vendor, { max: 100, block: "100 millis" }).pipe(
              Effect.tap((deliveries) => Effect.sync(() => received.push(...deliveries))),
              Effect.tap((deliveries) => Effect.forEach(deliveries, queue.ack, { discard: true }))
            )
          yield* eventually(
            Effect.all([takeAll(first), takeAll(second)], { concurrency: 2 }).pipe(Effect.map(() => received.length)),
            (count) => count >= ids.length,
            { within: "5 seconds", what: "all retries delivered" }
          )
          yield* Effect.all([takeAll(first), takeAll(second)], { concurrency: 2 })

          assert.deepStrictEqual(received.map((d) => d.jobId).sort(), [...ids].sort())
          assert.isTrue(received.every((d) => d.deliveryCount === 2))
          assert.strictEqual(yield* redis.send<number>("ZCARD", delayed), 0)
          // Each original entry plus exactly one entry per retry.
          assert.strictEqual(yield* redis.send<number>("XLEN", stream), 2 * ids.length)
        })
    )

    it.live("trimming past the max length never drops an unacknowledged entry", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const queue = yield* queueOn(prefix, { maxLength: 20, visibilityTimeout: "200 millis" })
        const vendor = vendorName()
        const { stream } = RedisKeys.vendor(prefix, vendor)
        const ids = Array.from({ length: 300 }, () => Job.makeJobId())
        for (const id of ids) yield* queue.enqueue(vendor, id)

        // 200 delivered: all acknowledged but one, which stays pending; 100 never delivered.
        const delivered = yield* queue.take(vendor, { max: 200, block: "1 second" })
        assert.strictEqual(delivered.length, 200)
        const held = delivered[150]!
        for (const delivery of delivered) if (delivery !== held) yield* queue.ack(delivery)

        const late = Job.makeJobId()
        yield* queue.enqueue(vendor, late)
        const length = yield* redis.send<number>("XLEN", stream)
        assert.isBelow(length, 301, "acknowledged entries were trimmed")
        const kept = yield* redis.send<Array<[string, Array<string>]>>("XRANGE", stream, held.id, held.id)
        assert.strictEqual(kept.length, 1, "the pending entry is still in the stream")

        // Every job not acknowledged is still delivered: the 100 unread, the late one, and the pending one.
        const expected = [...ids.slice(200), late, held.jobId].sort()
        const received: Array<JobQueue.Delivery> = []
        yield* eventually(
          queue.take(vendor, { max: 200, block: "100 millis" }).pipe(
            Effect.tap((deliveries) => Effect.sync(() => received.push(...deliveries))),
            Effect.tap((deliveries) => Effect.forEach(deliveries, queue.ack, { discard: true })),
            Effect.map(() => received.length)
          ),
          (count) => count >= expected.length,
          { within: "5 seconds", what: "all unacknowledged jobs delivered" }
        )
        assert.deepStrictEqual(received.map((d) => d.jobId).sort(), expected)
        assert.deepStrictEqual(received.find((d) => d.jobId === held.jobId)?.deliveryCount, 2)
      })
    )

    it.live.skipIf(redisServerUnavailable !== undefined)(
      ownServerTitle("fails fast while Redis is down, and recovers by itself when it is back"),
      () =>
        Effect.gen(function* () {
          const server = yield* redisServer
          yield* server.start
          const queue = yield* queueOn(
            RedisTest.randomPrefix(),
            {},
            { url: server.url, reconnectMaxDelay: "200 millis" }
          )
          const vendor = vendorName()
          const before = Job.makeJobId()
          yield* queue.enqueue(vendor, before)
          const [delivery] = yield* queue.take(vendor, { max: 1, block: "1 second" })
          assert.strictEqual(delivery?.jobId, before)
          yield* queue.ack(delivery!)

          const waiting = yield* Effect.forkChild(queue.take(vendor, { max: 1, block: "10 seconds" }))
          yield* Effect.sleep("100 millis")
          yield* server.kill

          const failsFast = <A>(what: string, effect: Effect.Effect<A, JobQueue.JobQueueError>) =>
            Effect.gen(function* () {
              const [elapsed, error] = yield* Effect.timed(Effect.flip(effect))
              assert.strictEqual(error.reason, "Unavailable", what)
              assert.isBelow(Duration.toMillis(elapsed), 2000, `${what} took ${Duration.format(elapsed)}`)
            })
          yield* failsFast("the blocked take", Fiber.join(waiting))
          yield* failsFast("enqueue", queue.enqueue(vendor, Job.makeJobId()))
          yield* failsFast("take", queue.take(vendor, { max: 1, block: "5 seconds" }))
          yield* failsFast("deadLetters", queue.deadLetters(vendor))

          // Same port, empty memory: the stream and its consumer group are gone. The first take finds
          // no group for a vendor it already knew, and recreates it.
          yield* server.start
          const taken = yield* eventually(
            queue.take(vendor, { max: 1, block: "50 millis" }).pipe(Effect.result),
            (result) => result._tag === "Success",
            { within: "10 seconds", what: "take after Redis came back" }
          )
          assert.deepStrictEqual(taken._tag === "Success" ? taken.success : undefined, [])
          const after = Job.makeJobId()
          yield* queue.enqueue(vendor, after)
          const [again] = yield* queue.take(vendor, { max: 1, block: "1 second" })
          assert.deepStrictEqual([again?.jobId, again?.deliveryCount], [after, 1])
          yield* queue.ack(again!)
        })
    )

    it.live("an unreachable Redis fails the layer within seconds with one clear error, without the password", () =>
      Effect.gen(function* () {
        const [elapsed, error] = yield* Layer.build(
          RedisConnection.layer({ url: Redacted.make("redis://user:secret@127.0.0.1:1") })
        ).pipe(Effect.flip, Effect.timed)
        assert.strictEqual(error._tag, "RedisConnectionError")
        assert.strictEqual(error.reason, "Unreachable")
        assert.match(error.message, /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:1 within 3s: .*ECONNREFUSED/)
        assert.notInclude(error.message, "secret")
        assert.isBelow(Duration.toMillis(elapsed), 5000)

        const invalid = yield* Effect.flip(Layer.build(RedisConnection.layer({ url: "localhost:6379" })))
        assert.strictEqual(invalid.reason, "InvalidUrl")
      })
    )

    it.live("ping reports the round trip, for health checks", () =>
      Effect.gen(function* () {
        const connection = yield* Layer.build(RedisConnection.layer({ url: RedisTest.url })).pipe(
          Effect.map(Context.get(RedisConnection.RedisConnection))
        )
        assert.isBelow(Duration.toMillis(yield* connection.ping), 1000)
        assert.strictEqual(connection.prefix, RedisConnection.defaultPrefix)
      })
    )

    it.live("layerConfig reads REDIS_URL, REDIS_PREFIX and the QUEUE_ settings", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const env = (vars: Record<string, string>) =>
          ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: RedisTest.url, REDIS_PREFIX: prefix, ...vars }))
        const queue = yield* Layer.build(
          RedisJobQueue.layerConfig.pipe(
            Layer.provide(
              env({ QUEUE_VISIBILITY_TIMEOUT: "200 millis", QUEUE_DELIVERY_LIMIT: "1", QUEUE_MAXLEN: "1000" })
            )
          )
        ).pipe(Effect.map(Context.get(JobQueue.JobQueue)))
        const vendor = vendorName()
        const id = Job.makeJobId()
        yield* queue.enqueue(vendor, id)
        assert.strictEqual(yield* redis.send<number>("EXISTS", RedisKeys.vendor(prefix, vendor).stream), 1)
        yield* queue.take(vendor, { max: 1, block: "1 second" })
        // Limit 1 and 200 ms: the first reclaim hands it out exhausted.
        const reclaimed = yield* eventually(queue.take(vendor, { max: 1, block: "50 millis" }), nonEmpty, {
          within: "3 seconds",
          what: "reclaimed delivery"
        })
        assert.deepStrictEqual(
          reclaimed.map((d) => [d.jobId, d.deliveryCount, d.exhausted]),
          [[id, 2, true]]
        )

        const rejected = yield* Layer.build(
          RedisJobQueue.layerConfig.pipe(Layer.provide(env({ QUEUE_DELIVERY_LIMIT: "0" })))
        ).pipe(Effect.flip)
        assert.strictEqual(rejected._tag, "ConfigError")
      })
    )
  })
})

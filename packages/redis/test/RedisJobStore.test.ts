import { assert, describe, it } from "@effect/vitest"
import { Job, JobStore } from "@vendorflow/core"
import { JobStoreSuite } from "@vendorflow/core/testing"
import { Clock, ConfigProvider, Context, Duration, Effect, Layer, Option, Result } from "effect"
import type { Redis } from "effect/persistence"
import { TestClock } from "effect/testing"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisJobStore from "../src/RedisJobStore.ts"
import { RedisTest } from "../src/testing/index.ts"
import { eventually, redisServer, redisServerUnavailable, ownServerTitle } from "./RedisFixtures.ts"

/** A store with connections of its own, like one server or worker process. */
const storeOn = (
  prefix: string,
  options: RedisJobStore.Options = {},
  connection: Partial<RedisConnection.Options> = {}
) =>
  Layer.build(
    RedisJobStore.layer(options).pipe(
      Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix, ...connection }))
    )
  ).pipe(Effect.map(Context.get(JobStore.JobStore)))

const pending = (payload: Job.JsonObject = { query: "acme" }, now = new Date()) =>
  Job.makePending({ vendor: "sync", payload, now })

const someOrFail = <A, E, R>(effect: Effect.Effect<Option.Option<A>, E, R>) =>
  effect.pipe(Effect.map(Option.getOrThrow))

/** Whether each listing index of the job's status holds it under its current time. */
const indexed = (redis: Redis.Redis["Service"], prefix: string, job: Job.Job) =>
  Effect.forEach(
    RedisJobStore.keys(prefix)
      .indexes(job.status)
      .slice(0, job.owner === undefined ? 2 : 4),
    (index, i) => {
      const group = RedisJobStore.indexGroup([[], [job.vendor], [job.owner ?? ""], [job.owner ?? "", job.vendor]][i]!)
      return redis
        .send<string | null>("ZSCORE", index, `${group}${job.updatedAt}:${job.id}`)
        .pipe(Effect.map((score) => score !== null))
    }
  )

/**
 * A test clock for the store's calls only: the connections around them keep the live clock, whose
 * background fibers a test clock jumping years ahead would keep waking.
 */
const testClock = Effect.map(TestClock.make(), (clock) => ({
  clock,
  on: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Clock.Clock, clock)
}))

RedisTest.describeRedis("RedisJobStore", ({ prefix: suitePrefix }) => {
  JobStoreSuite.suite(
    "redis",
    RedisJobStore.layer().pipe(Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix: suitePrefix })))
  )
  // Spread over shards as on Redis Cluster: listings merge the shards' indexes.
  JobStoreSuite.suite(
    "redis, 5 shards",
    RedisJobStore.layer({ shards: 5 }).pipe(
      Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix: `${suitePrefix}sharded:` }))
    )
  )

  describe("on Redis hashes and sorted sets", () => {
    it.live("stores a fixed set of hash fields, none taken from the payload's keys", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const job = pending({ $where: "1", "a.b": { $set: 1 }, status: "complete", version: "9", "": null })
        yield* store.create(job)
        const key = RedisJobStore.keys(prefix).job(job.id)
        const fields = yield* redis.send<Array<string>>("HKEYS", key)
        assert.deepStrictEqual(
          [...fields].sort(),
          [
            "attempts",
            "createdAt",
            "id",
            "overdueAt",
            "payload",
            "run",
            "status",
            "updatedAt",
            "vendor",
            "version"
          ].sort()
        )
        assert.deepStrictEqual(yield* redis.send<Array<string>>("HMGET", key, "status", "version", "attempts"), [
          "pending",
          "0",
          "0"
        ])
        assert.deepStrictEqual(JSON.parse(yield* redis.send<string>("HGET", key, "payload")), job.payload)
        assert.deepStrictEqual(yield* store.get(job.id), Option.some(job))
        assert.deepStrictEqual(yield* indexed(redis, prefix, job), [true, true])
        // A hash written before runs were counted is in its first run.
        yield* redis.send("HDEL", key, "run")
        assert.deepStrictEqual(yield* store.get(job.id), Option.some(job))
      })
    )

    it.live("keeps a job in the indexes of its status: all, by vendor, and by owner and both when it has one", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const job = Job.makePending({ vendor: "v:1", owner: "alice:x", payload: {}, now: new Date() })
        yield* store.create(job)
        assert.deepStrictEqual(yield* indexed(redis, prefix, job), [true, true, true, true])
        const [all, byVendor, byOwner, byOwnerVendor] = RedisJobStore.keys(prefix).indexes("pending")
        const tail = `${job.updatedAt}:${job.id}`
        assert.deepStrictEqual(
          yield* Effect.forEach([all, byVendor, byOwner, byOwnerVendor], (index) =>
            redis.send<Array<string>>("ZRANGE", index, "0", "-1")
          ),
          [[tail], [`3:v:1:${tail}`], [`7:alice:x:${tail}`], [`7:alice:x:3:v:1:${tail}`]]
        )
        const started = yield* someOrFail(store.transition({ id: job.id, from: "pending", to: "processing" }))
        assert.deepStrictEqual(yield* indexed(redis, prefix, job), [false, false, false, false])
        assert.deepStrictEqual(yield* indexed(redis, prefix, started), [true, true, true, true])
      })
    )

    it.live("getMany and list read no payload: a payload that no longer parses does not stop them", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const job = Job.makePending({ vendor: "v", owner: "alice", payload: { a: 1 }, now: new Date() })
        yield* store.create(job)
        yield* redis.send("HSET", RedisJobStore.keys(prefix).job(job.id), "payload", "{not json")
        assert.strictEqual((yield* Effect.flip(store.get(job.id))).reason, "Rejected")
        assert.deepStrictEqual(yield* store.getMany([job.id]), [Option.some(Job.summaryOf(job))])
        assert.deepStrictEqual(yield* store.getMany([job.id, job.id]), [
          Option.some(Job.summaryOf(job)),
          Option.some(Job.summaryOf(job))
        ])
        const page = yield* store.list({ status: "pending", owner: "alice", limit: 10 })
        assert.deepStrictEqual(page.jobs, [Job.summaryOf(job)])
      })
    )

    it.live("a long run of members without a job ends a page early, with a cursor that goes on past them", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const job = Job.makePending({ vendor: "v", payload: {}, now: new Date(Date.now() - 60_000) })
        yield* store.create(job)
        // Members of jobs whose hashes expired, newer than the one job, as a group no job entered since leaves them.
        const byVendor = RedisJobStore.keys(prefix).indexes("pending")[1]
        const orphans = Array.from(
          { length: 3_000 },
          (_, i) => `1:v:${new Date(Date.now() - i).toISOString()}:${Job.makeJobId()}`
        )
        for (let at = 0; at < orphans.length; at += 500) {
          yield* redis.send("ZADD", byVendor, ...orphans.slice(at, at + 500).flatMap((member) => ["0", member]))
        }
        const first = yield* store.list({ status: "pending", vendor: "v", limit: 1 })
        assert.deepStrictEqual(first.jobs, [])
        assert.isDefined(first.next, "not the last page")
        let after: JobStore.Cursor | undefined = first.next
        const seen: Array<string> = []
        for (let page = 0; after !== undefined && page < 10; page++) {
          const next: JobStore.Page = yield* store.list({ status: "pending", vendor: "v", limit: 1, after })
          seen.push(...next.jobs.map((listed) => listed.id))
          after = next.next
        }
        assert.deepStrictEqual(seen, [job.id])
        assert.isUndefined(after)
      })
    )

    it.live(
      "agrees with core's applyTransition step by step, on the caller's clock, and moves the job between indexes",
      () =>
        Effect.gen(function* () {
          const { prefix, redis } = yield* RedisTest.scratch
          const store = yield* storeOn(prefix)
          const { clock, on } = yield* testClock
          const start = Date.parse("2030-01-01T00:00:00.000Z")
          yield* clock.setTime(start)
          const job = pending({ n: 1 }, new Date(start))
          yield* store.create(job)
          const steps: ReadonlyArray<JobStore.Transition> = [
            { id: job.id, from: "pending", to: "processing", expectedVersion: 0, set: { attempts: 1 } },
            { id: job.id, from: "processing", to: "processing", set: { awaitingCallback: true } },
            {
              id: job.id,
              from: "processing",
              to: "failed",
              set: { error: { reason: "Rejected", message: "no" }, result: null },
              unset: ["awaitingCallback"]
            },
            { id: job.id, from: "failed", to: "pending", unset: ["error", "result"], set: { attempts: 0 } },
            { id: job.id, from: "pending", to: "processing", set: { attempts: 1, result: { a: [1, "b"] } } },
            // Set and unset at once: unset wins, as in applyTransition.
            { id: job.id, from: "processing", to: "complete", set: { result: "done" }, unset: ["result"] }
          ]
          let current = job
          for (const step of steps) {
            yield* clock.adjust("1234 millis")
            const now = clock.currentTimeMillisUnsafe()
            const expected = JobStore.applyTransition(current, step, new Date(now))!
            const actual = yield* someOrFail(on(store.transition(step)))
            assert.deepStrictEqual(actual, expected)
            assert.deepStrictEqual(yield* store.get(job.id), Option.some(expected))
            assert.deepStrictEqual(yield* indexed(redis, prefix, actual), [true, true], "listed under its new time")
            assert.deepStrictEqual(yield* indexed(redis, prefix, current), [false, false], "not under the old one")
            current = actual
          }
          assert.strictEqual(current.version, steps.length)
          assert.isFalse("result" in current)
        })
    )

    it.live("of two processes racing on the same transitions exactly one wins each", () =>
      Effect.gen(function* () {
        const { prefix } = yield* RedisTest.scratch
        const first = yield* storeOn(prefix)
        const second = yield* storeOn(prefix)
        const jobs = Array.from({ length: 25 }, () => pending())
        yield* Effect.forEach(jobs, first.create, { concurrency: "unbounded", discard: true })
        yield* Effect.forEach(
          jobs,
          (job) =>
            Effect.gen(function* () {
              const claim = (store: JobStore.JobStore["Service"], attempts: number) =>
                store.transition({ id: job.id, from: "pending", to: "processing", set: { attempts } })
              const [a, b] = yield* Effect.all([claim(first, 1), claim(second, 2)], { concurrency: 2 })
              assert.strictEqual([a, b].filter(Option.isSome).length, 1, `job ${job.id}`)
              const winner = Option.isSome(a) ? a : b
              assert.deepStrictEqual(yield* second.get(job.id), winner)
              assert.strictEqual(Option.getOrThrow(winner).version, 1)
            }),
          { concurrency: "unbounded", discard: true }
        )
      })
    )

    it.live("with a TTL, a finished job expires, and stops expiring when it is sent round again", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const key = RedisJobStore.keys(prefix)
        const store = yield* storeOn(prefix, { finishedTtl: "1 minute" })
        const pttl = (job: Job.Job) => redis.send<number>("PTTL", key.job(job.id))
        const run = (job: Job.Job) =>
          store
            .create(job)
            .pipe(Effect.andThen(someOrFail(store.transition({ id: job.id, from: "pending", to: "processing" }))))

        const done = pending()
        yield* run(done)
        assert.strictEqual(yield* pttl(done), -1, "no TTL while processing")
        yield* store.transition({ id: done.id, from: "processing", to: "complete", set: { result: 1 } })
        const left = yield* pttl(done)
        assert.isTrue(left > 0 && left <= 60_000, `PTTL ${left}`)
        const completed = yield* someOrFail(store.get(done.id))
        assert.deepStrictEqual(yield* indexed(redis, prefix, completed), [true, true])

        const retried = pending()
        yield* run(retried)
        yield* store.transition({ id: retried.id, from: "processing", to: "failed" })
        assert.isTrue((yield* pttl(retried)) > 0)
        yield* someOrFail(store.transition({ id: retried.id, from: "failed", to: "pending" }))
        assert.strictEqual(yield* pttl(retried), -1, "an operator's retry removes the TTL")

        const keep = yield* storeOn(prefix)
        const kept = pending()
        yield* keep.create(kept)
        yield* keep.transition({ id: kept.id, from: "pending", to: "failed" })
        assert.strictEqual(yield* pttl(kept), -1, "no TTL unless configured")
      })
    )

    it.live("the overdue index follows overdueAt; an id whose hash is gone is dropped from it", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const key = RedisJobStore.keys(prefix)
        const score = (job: Job.Job) => redis.send<string | null>("ZSCORE", key.overdue, job.id)
        const [finished, gone, staying] = [pending(), pending(), pending()]
        yield* store.createMany([finished, gone, staying])
        assert.strictEqual(Number(yield* score(staying)), Date.parse(staying.overdueAt ?? ""))
        const leased = yield* someOrFail(
          store.transition({
            id: staying.id,
            from: "pending",
            to: "processing",
            set: { overdueAt: "2040-01-01T00:00:00.000Z" }
          })
        )
        assert.strictEqual(Number(yield* score(staying)), Date.parse("2040-01-01T00:00:00.000Z"))
        yield* store.transition({ id: finished.id, from: "pending", to: "failed" })
        assert.isNull(yield* score(finished), "a finished job leaves the index")
        // A hash deleted by hand (or lost) leaves its id behind: the listing removes it.
        yield* redis.send("DEL", key.job(gone.id))
        const later = new Date("2041-01-01T00:00:00.000Z")
        assert.deepStrictEqual(yield* store.listOverdue({ before: later, limit: 10 }), [leased])
        assert.isNull(yield* score(gone))
      })
    )

    it.live("each entry into a finished status trims its groups' members older than the TTL", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix, { finishedTtl: "1 minute" })
        const { clock, on } = yield* testClock
        yield* clock.setTime(Date.parse("2030-01-01T00:00:00.000Z"))
        const finish = (job: Job.Job) =>
          store
            .create(job)
            .pipe(Effect.andThen(someOrFail(on(store.transition({ id: job.id, from: "pending", to: "failed" })))))
        const owned = (owner: string) => Job.makePending({ vendor: "sync", owner, payload: {}, now: new Date() })
        const [early, earlyOfBob] = [yield* finish(owned("alice")), yield* finish(owned("bob"))]
        yield* clock.adjust("61 seconds")
        const late = yield* finish(owned("alice"))
        const [all, byVendor, byOwner, byOwnerVendor] = RedisJobStore.keys(prefix).indexes("failed")
        const members = (index: string) => redis.send<Array<string>>("ZRANGE", index, "0", "-1")
        const tail = (job: Job.Job) => `${job.updatedAt}:${job.id}`
        assert.deepStrictEqual(yield* members(all), [tail(late)])
        assert.deepStrictEqual(yield* members(byVendor), [`4:sync:${tail(late)}`])
        // Bob's group saw no entry since: his expired member stays until one comes.
        assert.deepStrictEqual(yield* members(byOwner), [`3:bob:${tail(earlyOfBob)}`, `5:alice:${tail(late)}`])
        assert.deepStrictEqual(yield* members(byOwnerVendor), [
          `3:bob:4:sync:${tail(earlyOfBob)}`,
          `5:alice:4:sync:${tail(late)}`
        ])
        assert.notInclude(yield* members(byOwner), `5:alice:${tail(early)}`)
      })
    )

    // Made in one turn, they go to Redis as one script (the bench's command counts show it).
    it.live("transitions made at once each keep their own outcome: applied, stale, or a damaged hash", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const key = RedisJobStore.keys(prefix)
        const [claimed, stale, damaged] = [pending(), pending(), pending()]
        yield* Effect.forEach([claimed, stale, damaged], (job) => store.create(job))
        yield* redis.send("HSET", key.job(damaged.id), "version", "x")
        const outcomes = yield* Effect.all(
          [
            store.transition({ id: claimed.id, from: "pending", to: "processing", expectedVersion: claimed.version }),
            store.transition({ id: stale.id, from: "pending", to: "processing", expectedVersion: stale.version + 1 }),
            store.transition({ id: damaged.id, from: "pending", to: "processing" })
          ].map((transition) => Effect.result(transition)),
          { concurrency: "unbounded" }
        )
        const [first, second, third] = outcomes
        assert.isTrue(Result.isSuccess(first!) && Option.isSome(first.success))
        assert.strictEqual(Result.isSuccess(first!) && Option.getOrUndefined(first.success)?.status, "processing")
        assert.isTrue(Result.isSuccess(second!) && Option.isNone(second.success), "a stale version moves nothing")
        assert.isTrue(Result.isFailure(third!) && third.failure.message.includes("no integer version"))
        assert.strictEqual(yield* redis.send<string>("HGET", key.job(stale.id), "status"), "pending")
        assert.strictEqual(yield* redis.send<string>("HGET", key.job(damaged.id), "status"), "pending")
      })
    )

    it.live("claims made at once each keep their own outcome: claimed, not applicable, or a damaged hash", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const key = RedisJobStore.keys(prefix)
        const [claimed, processing, damaged] = [pending(), pending(), pending()]
        yield* Effect.forEach([claimed, processing, damaged], (job) => store.create(job))
        yield* store.transition({ id: processing.id, from: "pending", to: "processing" })
        yield* redis.send("HSET", key.job(damaged.id), "attempts", "x")
        const claimOf = (job: Job.Job) => ({ id: job.id, vendor: job.vendor, maxAttempts: 3, overdueAt: job.createdAt })
        const [first, second, third] = yield* Effect.all(
          [claimed, processing, damaged].map((job) => Effect.result(store.claim(claimOf(job)))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(Result.isSuccess(first!) && Option.getOrUndefined(first.success)?.job.status, "processing")
        assert.isTrue(Result.isSuccess(second!) && Option.isNone(second.success), "a processing job is not claimed")
        assert.isTrue(Result.isFailure(third!) && third.failure.reason === "Rejected")
        assert.include(Result.isFailure(third!) ? third.failure.message : "", "no integer version or attempts")
        assert.strictEqual(yield* redis.send<string>("HGET", key.job(damaged.id), "status"), "pending")
        assert.strictEqual(yield* redis.send<number>("ZCARD", key.status("processing")), 2)
      })
    )

    it.live("a hash of the wrong shape is a typed Rejected error naming the key, not a crash", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const store = yield* storeOn(prefix)
        const key = RedisJobStore.keys(prefix)
        const id = Job.makeJobId()
        const updatedAt = new Date().toISOString()
        yield* redis.send(
          "HSET",
          key.job(id),
          ...["id", id, "vendor", "v", "status", "pending", "payload", "{not json", "version", "x"],
          ...["updatedAt", updatedAt]
        )
        yield* redis.send("ZADD", key.status("pending"), "0", `${updatedAt}:${id}`)

        const read = yield* Effect.flip(store.get(id))
        assert.strictEqual(read._tag, "JobStoreError")
        assert.strictEqual(read.reason, "Rejected")
        assert.include(read.message, key.job(id))
        yield* redis.send("ZADD", key.overdue, "1", id)
        const listed = yield* Effect.flip(store.listOverdue({ before: new Date(), limit: 10 }))
        assert.strictEqual(listed.reason, "Rejected")
        // The version is not an integer: the script refuses before writing anything.
        const moved = yield* Effect.flip(store.transition({ id, from: "pending", to: "processing" }))
        assert.strictEqual(moved.reason, "Rejected")
        assert.include(moved.message, "no integer version")
        assert.strictEqual(yield* redis.send<string>("HGET", key.job(id), "status"), "pending")
        assert.strictEqual(yield* redis.send<number>("ZCARD", key.status("processing")), 0)

        // Well-formed JSON and integers, but not a job: an unknown status, a list for a payload.
        const other = pending()
        yield* store.create(other)
        yield* redis.send("HSET", key.job(other.id), "status", "bogus", "payload", "[1]")
        const wrong = yield* Effect.flip(store.get(other.id))
        assert.strictEqual(wrong.reason, "Rejected")
        // Read in a batch, such a hash fails the batch the same way.
        const batch = yield* Effect.flip(store.getMany([pending().id, other.id]))
        assert.strictEqual(batch.reason, "Rejected")
        assert.include(batch.message, key.job(other.id))
        assert.include(wrong.message, key.job(other.id))
      })
    )

    it.live.skipIf(redisServerUnavailable !== undefined)(
      ownServerTitle(
        "fails fast with Unavailable while Redis is down, refuses forbidden transitions without I/O, recovers"
      ),
      () =>
        Effect.gen(function* () {
          const server = yield* redisServer
          yield* server.start
          const store = yield* storeOn(
            RedisTest.randomPrefix(),
            {},
            { url: server.url, reconnectMaxDelay: "200 millis" }
          )
          const job = pending()
          yield* store.create(job)
          yield* server.kill

          const failsFast = <A>(what: string, effect: Effect.Effect<A, JobStore.JobStoreError>) =>
            Effect.gen(function* () {
              const [elapsed, error] = yield* Effect.timed(Effect.flip(effect))
              assert.strictEqual(error.reason, "Unavailable", what)
              assert.include(error.message, server.url, what)
              assert.isBelow(Duration.toMillis(elapsed), 1000, `${what} took ${Duration.format(elapsed)}`)
            })
          yield* failsFast("create", store.create(pending()))
          yield* failsFast("get", store.get(job.id))
          yield* failsFast("transition", store.transition({ id: job.id, from: "pending", to: "processing" }))
          yield* failsFast("listOverdue", store.listOverdue({ before: new Date(), limit: 1 }))
          const refused = yield* Effect.flip(store.transition({ id: job.id, from: "failed", to: "complete" }))
          assert.strictEqual(refused.reason, "InvalidTransition")

          yield* server.start
          const again = pending()
          yield* eventually(store.create(again).pipe(Effect.result), (result) => result._tag === "Success", {
            within: "5 seconds",
            what: "create after Redis came back"
          })
          assert.deepStrictEqual(yield* store.get(again.id), Option.some(again))
        })
    )

    it.live("layerConfig reads REDIS_URL, REDIS_PREFIX and REDIS_JOB_TTL", () =>
      Effect.gen(function* () {
        const { prefix, redis } = yield* RedisTest.scratch
        const env = (vars: Record<string, string>) =>
          ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: RedisTest.url, REDIS_PREFIX: prefix, ...vars }))
        const store = yield* Layer.build(
          RedisJobStore.layerConfig.pipe(Layer.provide(env({ REDIS_JOB_TTL: "2 hours" })))
        ).pipe(Effect.map(Context.get(JobStore.JobStore)))
        const job = pending()
        yield* store.create(job)
        yield* store.transition({ id: job.id, from: "pending", to: "failed" })
        const left = yield* redis.send<number>("PTTL", RedisJobStore.keys(prefix).job(job.id))
        assert.isTrue(left > 60 * 60_000 && left <= 2 * 60 * 60_000, `PTTL ${left}`)

        const rejected = yield* Layer.build(
          RedisJobStore.layerConfig.pipe(Layer.provide(env({ REDIS_JOB_TTL: "soon" })))
        ).pipe(Effect.flip)
        assert.strictEqual(rejected._tag, "ConfigError")
      })
    )
  })
})

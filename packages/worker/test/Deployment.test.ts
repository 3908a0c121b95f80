/**
 * The split deployment, as operators run it: one API server, several worker processes and both
 * mock vendors, each its own process, sharing Redis (queue, rate limits and, with no MongoDB here,
 * the job store). These tests drive it over HTTP the way clients do and read the vendors' own
 * records of what arrived.
 */
import { assert, describe, it } from "@effect/vitest"
import { RedisCluster, RedisServer } from "@vendorflow/redis/testing"
import { Effect, Schedule } from "effect"
import { Client } from "@vendorflow/dev-stack"
import { redisUrl, start as startStack } from "./support/Stack.ts"

/** Where the stack keeps its state: the shared Redis, or a cluster of the test's own. */
interface On {
  readonly redisUrl: string
  readonly redisCluster?: boolean | undefined
}

const manyJobsTitle =
  "600 jobs across both vendors, 3 workers, sync limited to 20/s: all complete, limit held, no job twice"
const manyJobs = (redis: On) =>
  Effect.gen(function* () {
    const stack = yield* startStack({ workers: 3, ...redis, syncLimit: "20/1s", syncLatency: "0-50" })
    // The API sees the three workers' heartbeats through Redis.
    const health = yield* Effect.promise(() =>
      fetch(`${stack.api}/health`).then((r) => r.json() as Promise<{ workers: ReadonlyArray<{ vendors: unknown }> }>)
    )
    assert.strictEqual(health.workers.length, 3)
    assert.deepStrictEqual(health.workers[0]?.vendors, ["sync", "async"])
    const started = Date.now()
    const submitted = yield* Effect.forEach(
      Array.from({ length: 600 }, (_, i) => i),
      (i) => Client.submit(stack.api, { vendor: i % 2 === 0 ? "sync" : "async", n: i }),
      { concurrency: 50 }
    )
    assert.deepStrictEqual(
      submitted.filter((r) => r.status !== 200),
      []
    )
    const ids = submitted.map((r) => r.body.request_id ?? "")
    const finished = yield* Client.awaitAll(stack.api, ids, "90 seconds")
    const elapsed = (Date.now() - started) / 1000
    const statuses = [...finished.values()].map((job) => job.status)
    assert.strictEqual(statuses.filter((s) => s === "complete").length, 600)

    const syncArrivals = yield* Client.arrivals(stack.sync)
    const asyncArrivals = yield* Client.arrivals(stack.async)
    // Answered calls: one per job, never more than 20 in a second. Calls paced by three worker
    // processes reach the vendor through two event loops each, and on a two-core box their
    // jitter sometimes puts 21 arrivals in the vendor's sliding second: it refuses one (429,
    // retried after Retry-After). Up to 2% of calls tolerated, and
    // counted in the log line.
    const admitted = syncArrivals.filter((a) => a.status === 200)
    const refused = syncArrivals.length - admitted.length
    assert.strictEqual(admitted.length, 300)
    assert.deepStrictEqual(Client.repeated(admitted), [])
    assert.deepStrictEqual(Client.repeated(asyncArrivals), [])
    assert.isAtMost(refused, Math.ceil(admitted.length * 0.02))
    const worst = Client.worstWindow(admitted)
    assert.isAtMost(worst, 20)
    // The dashboard's figures: the API reads what the workers recorded, through Redis.
    yield* Effect.promise(() =>
      fetch(`${stack.api}/stats`).then(
        (r) =>
          r.json() as Promise<{
            vendors: ReadonlyArray<{ vendor: string; windows: ReadonlyArray<{ completed: number }> }>
          }>
      )
    ).pipe(
      Effect.map((stats) => stats.vendors.map((v) => [v.vendor, v.windows[0]?.completed])),
      Effect.repeat({
        schedule: Schedule.spaced("200 millis"),
        until: (completed) => completed.every(([, n]) => n === 300)
      }),
      Effect.timeout("10 seconds")
    )
    yield* Effect.log(
      `600 jobs in ${elapsed.toFixed(1)} s; sync: ${syncArrivals.length} calls (${refused} refused), worst 1 s window ${worst}, ` +
        `${(300 / elapsed).toFixed(1)} calls/s overall`
    )
  })

describe("split deployment on Redis", () => {
  it.live(manyJobsTitle, () => manyJobs({ redisUrl }), { timeout: 150_000 })

  it.live(
    "kill -9 of a worker holding in-flight jobs: every job still completes after the visibility timeout",
    () =>
      Effect.gen(function* () {
        const stack = yield* startStack({
          workers: 2,
          redisUrl,
          syncLimit: "1000/1s",
          syncLatency: "1000-1500",
          env: { QUEUE_VISIBILITY_TIMEOUT: "3 seconds" }
        })
        const submitted = yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) => Client.submit(stack.api, { vendor: "sync", n: i })
        )
        const ids = submitted.map((r) => r.body.request_id ?? "")
        // Wait until calls are in flight, then kill one worker outright.
        yield* Client.arrivals(stack.sync).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (a) => a.length >= 4 })
        )
        const victim = stack.workers[0]!
        assert.strictEqual(yield* victim.stop("SIGKILL"), null)
        const finished = yield* Client.awaitAll(stack.api, ids, "60 seconds")
        const jobs = [...finished.values()]
        assert.strictEqual(jobs.filter((job) => job.status === "complete").length, 30)
        const retried = jobs.filter((job) => job.attempts > 1).length
        assert.isAbove(retried, 0, "the killed worker's jobs were taken over")
        yield* Effect.log(`kill -9: 30/30 complete, ${retried} taken over from the killed worker`)
      }),
    { timeout: 120_000 }
  )

  it.live(
    "Redis stopped for 10 s mid-run: POST /jobs answers 503 meanwhile, everything recovers, no accepted job is lost",
    () =>
      Effect.gen(function* () {
        // A Redis of our own, with an append-only file as production Redis has, to stop and start.
        const redis = yield* RedisServer.make({ persist: true })
        yield* redis.start
        // Callbacks the vendor gave up on while Redis was down are recovered by the deadline sweep.
        const stack = yield* startStack({
          workers: 2,
          redisUrl: redis.url,
          syncLimit: "1000/1s",
          syncLatency: "20-100",
          env: { VENDOR_ASYNC_CALLBACK_DEADLINE: "3s", SWEEP_INTERVAL: "1 second" }
        })
        const accepted: Array<string> = []
        const before = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => Client.submit(stack.api, { vendor: i % 2 === 0 ? "sync" : "async", n: i })
        )
        accepted.push(...before.map((r) => r.body.request_id ?? ""))
        yield* redis.stop
        const whileDown = yield* Effect.forEach(Array.from({ length: 10 }), () =>
          Client.submit(stack.api, { vendor: "sync" }).pipe(Effect.delay("1 second"))
        )
        assert.deepStrictEqual(
          whileDown.map((r) => r.status),
          Array.from({ length: 10 }, () => 503)
        )
        const problem = whileDown[0]!.body as { type?: string; status?: number }
        assert.strictEqual(problem.status, 503)
        yield* redis.start
        // Back by itself: new jobs are accepted again within a few seconds.
        const after = yield* Client.submit(stack.api, { vendor: "sync", after: true }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: (r) => r.status === 200, times: 50 })
        )
        assert.strictEqual(after.status, 200)
        accepted.push(after.body.request_id ?? "")
        const finished = yield* Client.awaitAll(stack.api, accepted, "60 seconds")
        assert.strictEqual([...finished.values()].filter((job) => job.status === "complete").length, accepted.length)
        yield* Effect.log(
          `Redis down 10 s: ${accepted.length} accepted, all complete; 10/10 refused with 503 meanwhile`
        )
      }),
    { timeout: 120_000 }
  )
})

// The same deployment on Redis Cluster (`REDIS_CLUSTER=true`), on a cluster of its own; its
// failover under load is in the fault suite (`test/faults/Failover.test.ts`).
describe.skipIf(RedisCluster.unavailable !== undefined)("split deployment on a local Redis Cluster", () => {
  it.live(
    manyJobsTitle,
    () => Effect.flatMap(RedisCluster.make, (cluster) => manyJobs({ redisUrl: cluster.url, redisCluster: true })),
    { timeout: 150_000 }
  )
})

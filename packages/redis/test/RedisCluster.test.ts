/**
 * The conformance suites of the queue, the job store, the rate limiter and the workers' heartbeats
 * on a Redis Cluster of three primaries and three replicas started for this file, through the
 * cluster client (`cluster: true`), as a deployment with `REDIS_CLUSTER=true` runs them.
 */
import { assert, it } from "@effect/vitest"
import {
  JobQueueSuite,
  JobStoreSuite,
  RateLimiterSuite,
  RateLimitStoreSuite,
  WorkersSuite
} from "@vendorflow/core/testing"
import { JobService } from "@vendorflow/core"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisJobQueue from "../src/RedisJobQueue.ts"
import * as RedisJobStore from "../src/RedisJobStore.ts"
import * as RedisKeys from "../src/RedisKeys.ts"
import * as RedisRateLimiter from "../src/RedisRateLimiter.ts"
import * as RedisRateLimitStore from "../src/RedisRateLimitStore.ts"
import * as RedisWorkers from "../src/RedisWorkers.ts"
import { RedisCluster, RedisTest } from "../src/testing/index.ts"

RedisCluster.describeCluster("Redis Cluster", (cluster) => {
  const prefix = RedisTest.randomPrefix()
  // A cluster just formed, on a machine busy with the other test files, once took longer than the
  // default 3 s to answer a first connection in CI; the deadline here is for that, not the code.
  const connection = Layer.unwrap(
    Effect.map(cluster, ({ url }) =>
      RedisConnection.layer({ url, cluster: true, prefix, connectTimeout: "10 seconds" })
    )
  )
  JobQueueSuite.suite("redis cluster", RedisJobQueue.layer().pipe(Layer.provide(connection)))
  JobStoreSuite.suite("redis cluster", RedisJobStore.layer().pipe(Layer.provide(connection)))
  RateLimiterSuite.suite("redis cluster", RedisRateLimiter.layer.pipe(Layer.provide(connection)))
  RateLimitStoreSuite.suite("redis cluster", RedisRateLimitStore.layer.pipe(Layer.provide(connection)))
  WorkersSuite.suite("redis cluster", RedisWorkers.layer.pipe(Layer.provide(connection)))

  it.live("offers no one-script store and queue: the jobs' hashes and a vendor's stream lie in different slots", () =>
    Effect.gen(function* () {
      const provided = yield* JobService.StoreAndQueue.pipe(
        Effect.provide(
          RedisJobStore.layerStoreAndQueue().pipe(
            Layer.provide(Layer.merge(RedisJobStore.layer(), RedisJobQueue.layer())),
            Layer.provide(connection)
          )
        )
      )
      assert.isUndefined(provided)
    })
  )

  it.live("the job store spreads its shards over every primary; a vendor's keys share one slot", () =>
    Effect.gen(function* () {
      const shards = Array.from(
        { length: RedisKeys.jobShards.cluster },
        (_, shard) => RedisKeys.jobShardKeys("p:", shard).overdue
      )
      const { primaryOf } = yield* cluster
      const primaries = yield* Effect.forEach(shards, primaryOf)
      assert.strictEqual(new Set(primaries).size, 3)
      const { redis } = yield* Layer.build(connection).pipe(Effect.map(Context.get(RedisConnection.RedisConnection)))
      const vendor = RedisKeys.vendor("p:", "acme")
      const slots = yield* Effect.forEach(
        [vendor.stream, vendor.delayed, vendor.dead, vendor.rate("state"), vendor.rate("slots")],
        (key) => redis.send<number>("CLUSTER", "KEYSLOT", key)
      )
      assert.strictEqual(new Set(slots).size, 1)
    })
  )
})

it.live("unreachable cluster seeds fail the layer within seconds, naming every seed but no password", () =>
  Effect.gen(function* () {
    const [elapsed, error] = yield* Layer.build(
      RedisConnection.layer({
        url: Redacted.make("redis://user:secret@127.0.0.1:1, redis://127.0.0.1:2"),
        cluster: true
      })
    ).pipe(Effect.flip, Effect.timed)
    assert.strictEqual(error.reason, "Unreachable")
    assert.match(
      error.message,
      /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:1,redis:\/\/127\.0\.0\.1:2 within 3s/
    )
    assert.notInclude(error.message, "secret")
    assert.isBelow(Duration.toMillis(elapsed), 5000)

    const invalid = yield* Effect.flip(
      Layer.build(RedisConnection.layer({ url: "redis://127.0.0.1:1,localhost:2", cluster: true }))
    )
    assert.strictEqual(invalid.reason, "InvalidUrl")
  })
)

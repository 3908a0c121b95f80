/**
 * The Redis backend as core's `Backend`: the embedded engine runs on it, its job lands in Redis
 * under the backend's prefix, and another engine on the same Redis and prefix reads it back.
 */
import { assert, it } from "@effect/vitest"
import { Health, JobService, type Vendor, Vendorflow } from "@vendorflow/core"
import { Effect, Layer } from "effect"
import * as RedisBackend from "../src/RedisBackend.ts"
import * as RedisJobStore from "../src/RedisJobStore.ts"
import { RedisTest } from "../src/testing/index.ts"

const lookup: Vendor.Vendor = {
  name: "lookup",
  mode: "sync",
  concurrency: 1,
  call: ({ payload }) => Effect.succeed({ _tag: "Completed", result: { company: payload["company"] ?? null } })
}

RedisTest.describeRedis("RedisBackend", () => {
  it.live("runs the embedded engine: the job completes in Redis, and another engine on it reads it", () =>
    Effect.gen(function* () {
      const prefix = RedisTest.randomPrefix()
      yield* Layer.build(RedisTest.layerCleanup(prefix))
      const engine = () =>
        Vendorflow.layer({
          vendors: [Effect.succeed(lookup)],
          backend: RedisBackend.make({ url: RedisTest.url, prefix })
        })

      const done = yield* Effect.gen(function* () {
        const jobs = yield* JobService.JobService
        const job = yield* jobs.submit({ payload: { company: "Acme" } })
        return yield* jobs.awaitFinished(job.id)
      }).pipe(Effect.provide(engine()))
      assert.strictEqual(done.status, "complete")
      assert.deepStrictEqual(done.result, { company: "Acme" })

      const { redis } = yield* RedisTest.scratch
      assert.strictEqual(yield* redis.send<number>("EXISTS", RedisJobStore.keys(prefix).job(done.id)), 1)
      const read = yield* JobService.JobService.use((jobs) => jobs.get(done.id)).pipe(Effect.provide(engine()))
      assert.strictEqual(read.status, "complete")
    }).pipe(Effect.scoped)
  )

  it.live("checks Redis's health", () =>
    Effect.gen(function* () {
      const prefix = RedisTest.randomPrefix()
      yield* Layer.build(RedisTest.layerCleanup(prefix))
      const report = yield* Health.report.pipe(Effect.provide(RedisBackend.make({ url: RedisTest.url, prefix }).layer))
      assert.strictEqual(report.status, "ok")
      assert.deepStrictEqual(Object.keys(report.checks), ["redis"])
    }).pipe(Effect.scoped)
  )
})

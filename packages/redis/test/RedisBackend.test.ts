/**
 * The Redis backend as core's `Backend`: the embedded engine runs on it, its job lands in Redis
 * under the backend's prefix, and another engine on the same Redis and prefix reads it back; new
 * jobs are stored and queued by one script.
 */
import { assert, it } from "@effect/vitest"
import {
  Backend,
  Cleaner,
  Health,
  Job,
  JobService,
  JobStore,
  type Vendor,
  Vendorflow,
  VendorRegistry
} from "@vendorflow/core"
import { Context, Effect, Exit, Layer } from "effect"
import * as RedisBackend from "../src/RedisBackend.ts"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisJobStore from "../src/RedisJobStore.ts"
import * as RedisKeys from "../src/RedisKeys.ts"
import { RedisTest } from "../src/testing/index.ts"
import { ownServerTitle, redisServer, redisServerUnavailable } from "./RedisFixtures.ts"

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

  it.live("stores and queues new jobs in one script; a job that exists is neither written again nor queued", () =>
    Effect.gen(function* () {
      const prefix = RedisTest.randomPrefix()
      yield* Layer.build(RedisTest.layerCleanup(prefix))
      const context = yield* Layer.build(RedisBackend.make({ url: RedisTest.url, prefix }).layer)
      const { write, store } = yield* Effect.all({ write: JobService.StoreAndQueue, store: JobStore.JobStore }).pipe(
        Effect.provide(context)
      )
      assert.isDefined(write)
      const pending = (n: number) => Job.makePending({ vendor: "lookup", payload: { n }, now: new Date() })
      const first = pending(1)
      yield* store.create(first)
      const [again, second, third] = [{ ...first, payload: { n: -1 } }, pending(2), pending(3)]

      const exit = yield* Effect.exit(write!("lookup", [second, again, third]))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.findErrorOption(exit)
      assert.strictEqual(error._tag === "Some" && error.value.reason, "Duplicate")

      const { redis } = yield* RedisTest.scratch
      const entries = yield* redis.send<ReadonlyArray<[string, ReadonlyArray<string>]>>(
        "XRANGE",
        RedisKeys.vendor(prefix, "lookup").stream,
        "-",
        "+"
      )
      assert.deepStrictEqual(
        entries.map(([, fields]) => fields[1]),
        [second.id, third.id]
      )
      const stored = yield* Effect.forEach([first.id, second.id, third.id], store.get)
      assert.deepStrictEqual(
        stored.map((job) => (job._tag === "Some" ? job.value.payload : undefined)),
        [{ n: 1 }, { n: 2 }, { n: 3 }]
      )
    }).pipe(Effect.scoped)
  )

  it.live.skipIf(redisServerUnavailable !== undefined)(
    ownServerTitle("a lot of submissions costs Redis one script, which stores and queues them"),
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer
        yield* server.start
        const context = yield* Layer.build(
          JobService.layer.pipe(
            Layer.provide(Layer.mergeAll(VendorRegistry.layer([Effect.succeed(lookup)]), Cleaner.layer)),
            Layer.provide(Backend.layerServices(RedisBackend.make({ url: server.url })))
          )
        )
        const jobs = Context.get(context, JobService.JobService)
        const { redis } = yield* Layer.build(RedisConnection.layer({ url: server.url })).pipe(
          Effect.map(Context.get(RedisConnection.RedisConnection))
        )
        // Calls of each command since the server started; a script's own commands count too.
        const calls = Effect.map(
          redis.send<string>("INFO", "commandstats"),
          (info) => (command: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
        )
        // The first lot also loads the script.
        yield* jobs.submitMany([{ payload: { company: "Warm" } }])
        const before = yield* calls

        const submitted = yield* jobs.submitMany([1, 2, 3].map((n) => ({ payload: { company: `Acme ${n}` } })))
        const after = yield* calls
        assert.strictEqual(after("evalsha") - before("evalsha"), 1, "scripts run for the lot")
        assert.strictEqual(after("hset") - before("hset"), 3, "jobs stored")
        assert.strictEqual(after("xadd") - before("xadd"), 3, "stream entries added")
        const ids = submitted.map((outcome) => (outcome._tag === "Success" ? outcome.success.id : undefined))
        const entries = yield* redis.send<ReadonlyArray<[string, ReadonlyArray<string>]>>(
          "XRANGE",
          RedisKeys.vendor(RedisConnection.defaultPrefix, "lookup").stream,
          "-",
          "+"
        )
        assert.deepStrictEqual(
          entries.slice(1).map(([, fields]) => fields[1]),
          ids
        )
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

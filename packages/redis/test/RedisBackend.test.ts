/**
 * The Redis backend as core's `Backend`: the embedded engine runs on it, its job lands in Redis
 * under the backend's prefix, and another engine on the same Redis and prefix reads it back; new
 * jobs are stored and queued by one script.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, it } from "@effect/vitest"
import {
  Backend,
  Cleaner,
  Health,
  Job,
  JobQueue,
  JobService,
  JobStore,
  type Vendor,
  Vendorflow,
  VendorRegistry
} from "@vendorflow/core"
import { ConfigProvider, Context, Effect, Exit, Layer, Result } from "effect"
import * as RedisBackend from "../src/RedisBackend.ts"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisJobStore from "../src/RedisJobStore.ts"
import * as RedisKeys from "../src/RedisKeys.ts"
import { RedisServer, RedisTest } from "../src/testing/index.ts"
import { eventually, ownServerTitle, redisServer, redisServerUnavailable } from "./RedisFixtures.ts"

const lookup: Vendor.Vendor = {
  name: "lookup",
  mode: "sync",
  concurrency: 1,
  call: ({ payload }) => Effect.succeed({ _tag: "Completed", result: { company: payload["company"] ?? null } })
}

// The job ids in a vendor's stream, oldest first.
const queuedIds = (redis: RedisConnection.RedisConnection["Service"]["redis"], prefix: string, vendor: string) =>
  redis
    .send<ReadonlyArray<[string, ReadonlyArray<string>]>>("XRANGE", RedisKeys.vendor(prefix, vendor).stream, "-", "+")
    .pipe(Effect.map((entries) => entries.map(([, fields]) => fields[1])))

// A backend's one write and its store, once the layer is built; the write must be made for the
// backend's own store and queue, which the job service checks it applies to.
const oneWriteOf = <E>(layer: Layer.Layer<JobStore.JobStore | JobQueue.JobQueue, E>) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(layer)
    const { provided, store, queue } = yield* Effect.all({
      provided: JobService.StoreAndQueue,
      store: JobStore.JobStore,
      queue: JobQueue.JobQueue
    }).pipe(Effect.provideContext(context))
    assert.isTrue(provided?.store === store && provided.queue === queue)
    return { provided: provided!, store }
  })

// The job service alone (no engine) over `backend`, for the life of the scope.
const jobServiceOn = (backend: Backend.Backend) =>
  Layer.build(
    JobService.layer.pipe(
      Layer.provide(Layer.mergeAll(VendorRegistry.layer([Effect.succeed(lookup)]), Cleaner.layer)),
      Layer.provide(Backend.layerServices(backend))
    )
  ).pipe(Effect.map(Context.get(JobService.JobService)))

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

  it.live(
    "stores a lot and queues each vendor's jobs in one script; a job that exists is neither written again nor queued",
    () =>
      Effect.gen(function* () {
        const prefix = RedisTest.randomPrefix()
        yield* Layer.build(RedisTest.layerCleanup(prefix))
        const { provided, store } = yield* oneWriteOf(RedisBackend.make({ url: RedisTest.url, prefix }).layer)
        const pending = (vendor: string, n: number) => Job.makePending({ vendor, payload: { n }, now: new Date() })
        const first = pending("a", 1)
        yield* store.create(first)
        const [again, second, third] = [{ ...first, payload: { n: -1 } }, pending("a", 2), pending("b", 3)]

        const exit = yield* Effect.exit(
          provided.write([
            ["a", [again, second]],
            ["b", [third]]
          ])
        )
        const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : undefined
        assert.isTrue(
          error?._tag === "Some" && error.value.reason === "Duplicate" && error.value.message.includes(first.id)
        )

        const { redis } = yield* RedisTest.scratch
        assert.deepStrictEqual(yield* queuedIds(redis, prefix, "a"), [second.id])
        assert.deepStrictEqual(yield* queuedIds(redis, prefix, "b"), [third.id])
        const stored = yield* Effect.forEach([first.id, second.id, third.id], store.get)
        assert.deepStrictEqual(
          stored.map((job) => (job._tag === "Some" ? job.value.payload : undefined)),
          [{ n: 1 }, { n: 2 }, { n: 3 }]
        )
      }).pipe(Effect.scoped)
  )

  it.live("a stream that refuses the lot's entries: the jobs are accepted, stored and overdue for the sweeper", () =>
    Effect.gen(function* () {
      const prefix = RedisTest.randomPrefix()
      yield* Layer.build(RedisTest.layerCleanup(prefix))
      const jobs = yield* jobServiceOn(RedisBackend.make({ url: RedisTest.url, prefix }))
      yield* jobs.submitMany([{ payload: { company: "First" } }])
      // The stream's last id set to the largest there is: every XADD to it fails.
      const { redis } = yield* RedisTest.scratch
      const stream = RedisKeys.vendor(prefix, "lookup").stream
      yield* redis.send("XSETID", stream, "18446744073709551615-18446744073709551615")

      const before = Date.now()
      const submitted = yield* jobs.submitMany([1, 2].map((n) => ({ payload: { company: `Acme ${n}` } })))
      assert.isTrue(submitted.every(Result.isSuccess))
      for (const outcome of submitted) {
        const job = yield* jobs.get(Result.isSuccess(outcome) ? outcome.success.id : Job.makeJobId())
        assert.strictEqual(job.status, "pending")
        assert.isAtMost(Date.parse(job.overdueAt!), Date.now())
        assert.isAtLeast(Date.parse(job.overdueAt!), before)
      }
      assert.strictEqual(yield* redis.send<number>("XLEN", stream), 1)
    }).pipe(Effect.scoped)
  )

  it.live("from the environment too, the one write is made for the backend's own store and queue", () =>
    Effect.gen(function* () {
      const prefix = RedisTest.randomPrefix()
      yield* Layer.build(RedisTest.layerCleanup(prefix))
      yield* oneWriteOf(
        RedisBackend.fromEnv.layer.pipe(
          Layer.provide(
            ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: RedisTest.url, REDIS_PREFIX: prefix }))
          )
        )
      )
    }).pipe(Effect.scoped)
  )

  it.live("under a job store of its own, new jobs go to that store and to Redis's queue, not its one script", () =>
    Effect.gen(function* () {
      const prefix = RedisTest.randomPrefix()
      yield* Layer.build(RedisTest.layerCleanup(prefix))
      const backend = Backend.withJobStore(RedisBackend.make({ url: RedisTest.url, prefix }), {
        name: "memory",
        layer: Health.layerAdding(Effect.succeed({ name: "memory", check: Effect.void })).pipe(
          Layer.provideMerge(JobStore.layerMemory)
        )
      })
      const jobs = yield* jobServiceOn(backend)
      const submitted = yield* jobs.submitMany([1, 2].map((n) => ({ payload: { company: `Acme ${n}` } })))
      const ids = submitted.map((outcome) => (Result.isSuccess(outcome) ? outcome.success.id : undefined))

      const found = yield* Effect.forEach(ids, (id) => jobs.get(id!))
      assert.deepStrictEqual(
        found.map((job) => job.status),
        ["pending", "pending"]
      )
      const { redis } = yield* RedisTest.scratch
      for (const id of ids)
        assert.strictEqual(yield* redis.send<number>("EXISTS", RedisJobStore.keys(prefix).job(id!)), 0)
      assert.deepStrictEqual(yield* queuedIds(redis, prefix, "lookup"), ids)
    }).pipe(Effect.scoped)
  )

  it.live.skipIf(redisServerUnavailable !== undefined)(
    ownServerTitle("a lot of submissions costs Redis one script, which stores and queues them"),
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer
        yield* server.start
        const jobs = yield* jobServiceOn(RedisBackend.make({ url: server.url }))
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
        const ids = submitted.map((outcome) => (Result.isSuccess(outcome) ? outcome.success.id : undefined))
        const queued = yield* queuedIds(redis, RedisConnection.defaultPrefix, "lookup")
        assert.deepStrictEqual(queued.slice(1), ids)
      }).pipe(Effect.scoped)
  )

  it.live.skipIf(redisServerUnavailable !== undefined)(
    ownServerTitle("a server that refuses scripts over several hash slots: new jobs are stored, then queued"),
    () =>
      Effect.gen(function* () {
        // A one-node cluster that a plain client talks to, as through a proxy in front of a
        // sharded Redis: any command within one slot runs, a script over several answers CROSSSLOT.
        const dir = mkdtempSync(join(tmpdir(), "vendorflow-crossslot-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const server = yield* RedisServer.make({
          port: yield* RedisServer.freeClusterPort,
          args: ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf")]
        })
        yield* server.start
        const { redis } = yield* Layer.build(RedisConnection.layer({ url: server.url })).pipe(
          Effect.map(Context.get(RedisConnection.RedisConnection))
        )
        yield* redis.send("CLUSTER", "ADDSLOTS", ...Array.from({ length: 16384 }, (_, slot) => String(slot)))
        yield* eventually(redis.send<string>("CLUSTER", "INFO"), (info) => info.includes("cluster_state:ok"), {
          within: "10 seconds",
          what: "the one-node cluster's state"
        })

        const jobs = yield* jobServiceOn(RedisBackend.make({ url: server.url }))
        const ids: Array<Job.JobId> = []
        for (const lot of [1, 2]) {
          const submitted = yield* jobs.submitMany([1, 2].map((n) => ({ payload: { company: `Acme ${lot}.${n}` } })))
          for (const outcome of submitted) if (Result.isSuccess(outcome)) ids.push(outcome.success.id)
        }
        assert.strictEqual(ids.length, 4)
        for (const id of ids) assert.strictEqual((yield* jobs.get(id)).status, "pending")
        assert.deepStrictEqual(yield* queuedIds(redis, RedisConnection.defaultPrefix, "lookup"), ids)
        // The script was tried once; the second lot went straight to the two writes.
        const errors = yield* redis.send<string>("INFO", "errorstats")
        assert.match(errors, /errorstat_CROSSSLOT:count=1\b/)
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

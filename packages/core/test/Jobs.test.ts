/**
 * `Jobs.submitMany` and `Jobs.getMany`: plain submissions stored with one store write and queued
 * with one queue write per vendor, reads read with one store read; each outcome in its place.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Option, Result } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Jobs from "../src/Jobs.ts"
import * as JobStore from "../src/JobStore.ts"
import * as Job from "../src/Job.ts"
import type * as Vendor from "../src/Vendor.ts"
import { layerBackends } from "./support/Engine.ts"

const notCalled = () => Effect.die(new Error("no consumer runs here"))
const vendor = (name: string): Vendor.Vendor => ({ name, mode: "sync", concurrency: 1, call: notCalled })

// The memory backends, with the store's and the queue's batch calls counted.
const counted = Effect.gen(function* () {
  const writes = {
    stores: [] as Array<number>,
    queues: [] as Array<readonly [string, number]>,
    reads: [] as Array<number>
  }
  const context = yield* Layer.build(layerBackends([vendor("alpha"), vendor("beta")]))
  const store = Context.get(context, JobStore.JobStore)
  const queue = Context.get(context, JobQueue.JobQueue)
  const countingStore = JobStore.JobStore.of({
    ...store,
    createMany: (jobs) =>
      Effect.andThen(
        Effect.sync(() => writes.stores.push(jobs.length)),
        store.createMany(jobs)
      ),
    getMany: (ids) =>
      Effect.andThen(
        Effect.sync(() => writes.reads.push(ids.length)),
        store.getMany(ids)
      )
  })
  const countingQueue = JobQueue.JobQueue.of({
    ...queue,
    enqueueMany: (name, ids) =>
      Effect.andThen(
        Effect.sync(() => writes.queues.push([name, ids.length])),
        queue.enqueueMany(name, ids)
      )
  })
  const jobs = yield* Jobs.make.pipe(
    Effect.provideService(JobStore.JobStore, countingStore),
    Effect.provideService(JobQueue.JobQueue, countingQueue),
    Effect.provide(context)
  )
  return { jobs, store, queue, writes }
})

const payload = (vendorName: string, n: number) => ({ vendor: vendorName, n })

describe("Jobs.submitMany", () => {
  it.effect("stores the lot in one write and queues each vendor's share in one write, in order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { jobs, store, queue, writes } = yield* counted
        const outcomes = yield* jobs.submitMany([
          { payload: payload("alpha", 1) },
          { payload: payload("beta", 2), owner: "bob" },
          { payload: payload("nope", 3) },
          { payload: payload("alpha", 4) }
        ])
        assert.deepStrictEqual(writes.stores, [3])
        assert.deepStrictEqual(
          [...writes.queues].sort(([a], [b]) => a.localeCompare(b)),
          [
            ["alpha", 2],
            ["beta", 1]
          ]
        )
        const [first, second, unknown, fourth] = outcomes
        assert.isTrue(first !== undefined && Result.isSuccess(first) && first.success.vendor === "alpha")
        assert.isTrue(second !== undefined && Result.isSuccess(second) && second.success.owner === "bob")
        assert.isTrue(unknown !== undefined && Result.isFailure(unknown) && unknown.failure._tag === "UnknownVendor")
        assert.isTrue(fourth !== undefined && Result.isSuccess(fourth))
        for (const outcome of [first, second, fourth]) {
          if (outcome === undefined || Result.isFailure(outcome)) continue
          const stored = yield* store.get(outcome.success.id)
          assert.deepStrictEqual(
            Option.map(stored, (job) => job.payload),
            Option.some(outcome.success.payload)
          )
        }
        const taken = yield* queue.take("alpha", { max: 10, block: 0 })
        assert.deepStrictEqual(
          taken.map((delivery) => delivery.jobId),
          [first, fourth].map((outcome) =>
            outcome !== undefined && Result.isSuccess(outcome) ? outcome.success.id : ""
          )
        )
      })
    )
  )

  it.effect("refuses a backlogged vendor's share and takes the others'", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { jobs, queue } = yield* counted
        yield* jobs.submitMany([{ payload: payload("alpha", 1) }, { payload: payload("alpha", 2) }])
        const outcomes = yield* jobs.submitMany([{ payload: payload("alpha", 3) }, { payload: payload("beta", 4) }])
        assert.deepStrictEqual(
          outcomes.map((outcome) => (Result.isSuccess(outcome) ? "queued" : outcome.failure._tag)),
          ["Backlogged", "queued"]
        )
        assert.strictEqual(yield* queue.depth("alpha"), 2)
        assert.strictEqual(yield* queue.depth("beta"), 1)
      })
    ).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ MAX_BACKLOG: "2" }))))
  )

  it.effect("with nothing to submit, writes nothing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { jobs, writes } = yield* counted
        assert.deepStrictEqual(yield* jobs.submitMany([]), [])
        assert.deepStrictEqual(writes.stores, [])
        assert.deepStrictEqual(writes.queues, [])
      })
    )
  )
})

describe("Jobs.getMany", () => {
  it.effect("reads each job as Jobs.get would, with one store read", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { jobs, writes } = yield* counted
        const [alices, bobs] = yield* jobs.submitMany([
          { payload: payload("alpha", 1), owner: "alice" },
          { payload: payload("alpha", 2), owner: "bob" }
        ])
        const alice = Result.getOrThrow(alices!)
        const bob = Result.getOrThrow(bobs!)
        const outcomes = yield* jobs.getMany([
          { id: alice.id, owner: "alice" },
          { id: bob.id, owner: "alice" },
          { id: Job.makeJobId() },
          { id: bob.id }
        ])
        assert.deepStrictEqual(writes.reads, [4])
        assert.deepStrictEqual(
          outcomes.map((outcome) => (Result.isSuccess(outcome) ? outcome.success.id : outcome.failure._tag)),
          [alice.id, "JobNotFound", "JobNotFound", bob.id]
        )
      })
    )
  )
})

/**
 * `JobService.submitMany` and `JobService.getMany`: plain submissions stored with one store write and queued
 * with one queue write per vendor, reads read with one store read; each outcome in its place.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, ConfigProvider, Context, Effect, Layer, Option, Result } from "effect"
import { TestClock } from "effect/testing"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobService from "../src/JobService.ts"
import * as JobStore from "../src/JobStore.ts"
import * as Job from "../src/Job.ts"
import * as Sweeper from "../src/Sweeper.ts"
import type * as Vendor from "../src/Vendor.ts"
import { echoVendor, layerBackends, layerEngine } from "./support/Engine.ts"

const notCalled = () => Effect.die(new Error("no consumer runs here"))
const vendor = (name: string): Vendor.Vendor => ({ name, mode: "sync", concurrency: 1, call: notCalled })

// What a test's one write (`JobService.StoreAndQueue`) is given: the counted store and queue the
// service runs on, and the memory ones under them.
interface Under {
  readonly counted: { readonly store: JobStore.JobStore["Service"]; readonly queue: JobQueue.JobQueue["Service"] }
  readonly memory: { readonly store: JobStore.JobStore["Service"]; readonly queue: JobQueue.JobQueue["Service"] }
}

// The memory backends, with the store's and the queue's batch calls counted; with `oneWrite`, the
// `JobService.StoreAndQueue` it makes over them.
const countedWith = (oneWrite?: (under: Under) => JobService.StoreAndQueueWrite) =>
  Effect.gen(function* () {
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
    const under: Under = { counted: { store: countingStore, queue: countingQueue }, memory: { store, queue } }
    const jobs = yield* JobService.make.pipe(
      Effect.provideService(JobStore.JobStore, countingStore),
      Effect.provideService(JobQueue.JobQueue, countingQueue),
      Effect.provideService(JobService.StoreAndQueue, oneWrite?.(under)),
      Effect.provide(context)
    )
    return { jobs, store, queue, writes }
  })
const counted = countedWith()

const payload = (vendorName: string, n: number) => ({ vendor: vendorName, n })

describe("JobService.submitMany", () => {
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

describe("JobService.submitMany over a backend's one write (StoreAndQueue)", () => {
  const lots = [1, 2, 3].map((n) => ({ payload: payload(n === 2 ? "beta" : "alpha", n) }))
  // The lot's shape as the one write got it: each vendor and how many of its jobs.
  const shapes: Array<Array<readonly [string, number]>> = []
  const recorded = (lot: Parameters<JobService.StoreAndQueueWrite["write"]>[0]) =>
    Effect.sync(() => shapes.push(lot.map(([vendor, jobs]) => [vendor, jobs.length] as const)))

  it.effect("the lot goes to the one write, by vendor, and the store's and the queue's writes do not run", () =>
    Effect.scoped(
      Effect.gen(function* () {
        shapes.length = 0
        const { jobs, store, queue, writes } = yield* countedWith(({ counted, memory }) => ({
          ...counted,
          write: (lot) =>
            recorded(lot).pipe(
              Effect.andThen(memory.store.createMany(lot.flatMap(([, vendorJobs]) => vendorJobs))),
              Effect.andThen(
                Effect.forEach(lot, ([vendor, vendorJobs]) =>
                  memory.queue.enqueueMany(
                    vendor,
                    vendorJobs.map((job) => job.id)
                  )
                ).pipe(Effect.orDie)
              ),
              Effect.as([])
            )
        }))
        const outcomes = yield* jobs.submitMany(lots)
        assert.deepStrictEqual(shapes, [
          [
            ["alpha", 2],
            ["beta", 1]
          ]
        ])
        assert.deepStrictEqual([writes.stores, writes.queues], [[], []])
        for (const outcome of outcomes) {
          assert.isTrue(Result.isSuccess(outcome) && Option.isSome(yield* store.get(outcome.success.id)))
        }
        assert.deepStrictEqual([yield* queue.depth("alpha"), yield* queue.depth("beta")], [2, 1])
      })
    )
  )

  it.effect("a share the one write stored but could not queue: accepted, and made overdue for the sweeper", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { jobs, store, queue } = yield* countedWith(({ counted, memory }) => ({
          ...counted,
          write: (lot) =>
            Effect.gen(function* () {
              yield* memory.store.createMany(lot.flatMap(([, vendorJobs]) => vendorJobs))
              const [alpha, beta] = lot
              yield* Effect.orDie(
                memory.queue.enqueueMany(
                  "alpha",
                  alpha![1].map((job) => job.id)
                )
              )
              const refused = new JobQueue.JobQueueError({ reason: "Unavailable", message: "the stream refuses" })
              return [["beta", beta![1], refused] as const]
            })
        }))
        const before = yield* Clock.currentTimeMillis
        const outcomes = yield* jobs.submitMany(lots)
        assert.isTrue(outcomes.every(Result.isSuccess))
        const beta = outcomes[1]!
        const stored = Result.isSuccess(beta) ? yield* store.get(beta.success.id) : Option.none()
        assert.isTrue(Option.isSome(stored) && Date.parse(stored.value.overdueAt!) <= before)
        assert.deepStrictEqual([yield* queue.depth("alpha"), yield* queue.depth("beta")], [2, 0])
      })
    )
  )

  it.effect("a write that cannot here (undefined): the lot is stored, then queued", () =>
    Effect.scoped(
      Effect.gen(function* () {
        shapes.length = 0
        const { jobs, writes } = yield* countedWith(({ counted }) => ({
          ...counted,
          write: (lot) => Effect.as(recorded(lot), undefined)
        }))
        yield* jobs.submitMany(lots)
        assert.strictEqual(shapes.length, 1)
        assert.deepStrictEqual(writes.stores, [3])
        assert.strictEqual(writes.queues.length, 2)
      })
    )
  )

  it.effect("a write made for another store is not used", () =>
    Effect.scoped(
      Effect.gen(function* () {
        shapes.length = 0
        const { jobs, writes } = yield* countedWith(({ counted, memory }) => ({
          ...counted,
          store: memory.store,
          write: (lot) => Effect.as(recorded(lot), [])
        }))
        yield* jobs.submitMany(lots)
        assert.strictEqual(shapes.length, 0)
        assert.deepStrictEqual(writes.stores, [3])
      })
    )
  )

  it.effect("the write's Duplicate fails the lot with it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const duplicate = JobStore.duplicate([Job.makeJobId()])
        const { jobs } = yield* countedWith(({ counted }) => ({ ...counted, write: () => Effect.fail(duplicate) }))
        const error = yield* Effect.flip(jobs.submitMany(lots))
        assert.strictEqual(error, duplicate)
      })
    )
  )
})

describe("JobService.submit, many at once", () => {
  it.effect("plain submissions made together are stored in one write, each with its own outcome and trace", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { jobs, store, writes } = yield* counted
        const submit = (submission: { readonly payload: Job.JsonObject; readonly idempotencyKey?: string }) =>
          Effect.result(jobs.submit(submission)).pipe(Effect.withSpan("app.submit"))
        const outcomes = yield* Effect.all(
          [
            submit({ payload: payload("alpha", 1) }),
            submit({ payload: payload("nope", 2) }),
            submit({ payload: payload("beta", 3) }),
            submit({ payload: payload("alpha", 4), idempotencyKey: "k" })
          ],
          { concurrency: "unbounded" }
        )
        // The three plain ones in one store write, the unknown vendor refused in it (the keyed one
        // is created alone, with `create`).
        assert.deepStrictEqual(writes.stores, [2])
        const [first, unknown, third, keyed] = outcomes
        assert.isTrue(unknown !== undefined && Result.isFailure(unknown) && unknown.failure._tag === "UnknownVendor")
        const accepted = [first, third, keyed].map((outcome) => {
          assert.isTrue(outcome !== undefined && Result.isSuccess(outcome))
          return (outcome as Result.Success<Job.Job, never>).success
        })
        assert.deepStrictEqual(
          accepted.map((job) => [job.vendor, job.payload["n"]]),
          [
            ["alpha", 1],
            ["beta", 3],
            ["alpha", 4]
          ]
        )
        for (const job of accepted) assert.isTrue(Option.isSome(yield* store.get(job.id)))
        // Each submit's span is its job's parent: three traces, not the batch's one.
        assert.strictEqual(new Set(accepted.map((job) => job.traceparent?.split("-")[1])).size, 3)
      })
    )
  )
})

describe("JobService.getMany", () => {
  it.effect("reads each job as JobService.get would, with one store read", () =>
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

// The engine, the sweeper and the JobService on memory backends whose queue writes fail while
// `failing.writes` says so: "before" refuses them, "after" applies them and then fails (an answer
// lost after the write ran). The vendor counts its calls.
const failing: { writes: "no" | "before" | "after" } = { writes: "no" }
const withFailingQueue = Effect.gen(function* () {
  const counting = echoVendor("alpha")
  const context = yield* Layer.build(layerEngine([counting.vendor]))
  const queue = Context.get(context, JobQueue.JobQueue)
  const lost = new JobQueue.JobQueueError({ reason: "Unavailable", message: "connection reset" })
  const write = <A>(write: Effect.Effect<A, JobQueue.JobQueueError>) =>
    Effect.suspend(() => {
      if (failing.writes === "before") return Effect.fail(lost)
      if (failing.writes === "after") return Effect.andThen(write, Effect.fail(lost))
      return write
    })
  const flaky = JobQueue.JobQueue.of({
    ...queue,
    enqueue: (vendor, id) => write(queue.enqueue(vendor, id)),
    enqueueMany: (vendor, ids) => write(queue.enqueueMany(vendor, ids))
  })
  const jobs = yield* JobService.make.pipe(Effect.provideService(JobQueue.JobQueue, flaky), Effect.provide(context))
  const processor = Context.get(context, JobProcessor.JobProcessor)
  const store = Context.get(context, JobStore.JobStore)
  // What a worker and its sweeper do next: sweep, then work off every delivery.
  const sweepAndWork = Effect.gen(function* () {
    yield* Sweeper.sweepOnce().pipe(Effect.provide(context))
    const deliveries = yield* queue.take("alpha", { max: 100, block: 0 })
    yield* Effect.forEach(deliveries, processor.process, { discard: true })
    return deliveries.length
  })
  return { jobs, store, sweepAndWork, calls: counting.calls }
})

describe("JobService: the answer matches the job's fate", () => {
  it.effect.each(["before", "after"] as const)(
    "a queue write that fails %s it runs: every stored job is accepted, and runs once",
    (when) =>
      Effect.scoped(
        Effect.gen(function* () {
          const t = yield* withFailingQueue
          failing.writes = when
          const one = yield* t.jobs.submit({ payload: payload("alpha", 1) })
          const keyed = yield* t.jobs.submit({ payload: payload("alpha", 2), idempotencyKey: "k" })
          const many = yield* t.jobs.submitMany([{ payload: payload("alpha", 3) }, { payload: payload("alpha", 4) }])
          failing.writes = "no"
          const ids = [one.id, keyed.id, ...many.map((outcome) => Result.getOrThrow(outcome).id)]
          for (const id of ids) {
            const stored = Option.getOrThrow(yield* t.store.get(id))
            assert.strictEqual(stored.status, "pending")
            assert.isAtMost(Date.parse(stored.overdueAt ?? ""), 0, "overdue at once: the next sweep queues it")
          }
          yield* TestClock.adjust("1 second")
          yield* t.sweepAndWork
          for (const id of ids) assert.strictEqual(Option.getOrThrow(yield* t.store.get(id)).status, "complete")
          assert.strictEqual(t.calls(), 4, "one call per job")
        })
      )
  )
})

import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Option, Schedule, Scope } from "effect"
import * as Consumer from "../src/Consumer.ts"
import * as Job from "../src/Job.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobStore from "../src/JobStore.ts"
import type * as Vendor from "../src/Vendor.ts"
import { layerBackends } from "./support/Engine.ts"

// A vendor that answers after `millis`, and tells the test when a call has begun.
const slowVendor = (millis: number, started: Deferred.Deferred<void>): Vendor.Vendor => ({
  name: "slow",
  mode: "sync",
  concurrency: 2,
  call: (request) =>
    Deferred.succeed(started, undefined).pipe(
      Effect.andThen(Effect.sleep(millis)),
      Effect.as({ _tag: "Completed", result: request.payload } as const)
    )
})

// Backends outlive the consumer, as the queue and store of a real deployment outlive a worker.
const withBackends = (vendor: Vendor.Vendor) => layerBackends([vendor])

const submitted = Effect.gen(function* () {
  const store = yield* JobStore.JobStore
  const queue = yield* JobQueue.JobQueue
  const job = Job.makePending({ vendor: "slow", payload: { n: 1 }, now: new Date() })
  yield* store.create(job)
  yield* queue.enqueue("slow", job.id)
  return job
})

const read = (id: Job.JobId) => JobStore.JobStore.use((store) => store.get(id)).pipe(Effect.map(Option.getOrThrow))

describe("Consumer shutdown", () => {
  it.live("a call in flight finishes within the grace period, and nothing new is taken", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const vendor = slowVendor(300, started)
      yield* Effect.gen(function* () {
        const job = yield* submitted
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Consumer.layer({ grace: "5 seconds" }).pipe(
            Layer.provide(JobProcessor.layer({ webhookBaseUrl: "http://x" }))
          ),
          scope
        )
        yield* Deferred.await(started)
        yield* Scope.close(scope, Exit.void)
        const after = yield* read(job.id)
        assert.deepStrictEqual([after.status, after.attempts], ["complete", 1])
        const waiting = yield* submitted
        yield* Effect.sleep("100 millis")
        assert.strictEqual((yield* read(waiting.id)).status, "pending", "a stopped consumer takes nothing")
      }).pipe(Effect.provide(withBackends(vendor)))
    })
  )

  it.live("a call still running when the grace period ends is handed back to the queue", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const vendor = slowVendor(10_000, started)
      yield* Effect.gen(function* () {
        const job = yield* submitted
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Consumer.layer({ grace: "200 millis" }).pipe(
            Layer.provide(JobProcessor.layer({ webhookBaseUrl: "http://x" }))
          ),
          scope
        )
        yield* Deferred.await(started)
        yield* Scope.close(scope, Exit.void)
        // The call began (the vendor saw it), so its attempt stays spent.
        const after = yield* read(job.id)
        assert.deepStrictEqual([after.status, after.attempts], ["pending", 1])
        const again = yield* JobQueue.JobQueue.use((queue) => queue.take("slow", { max: 1, block: "2 seconds" }))
        assert.deepStrictEqual(
          again.map((d) => d.jobId),
          [job.id]
        )
      }).pipe(Effect.provide(withBackends(vendor)))
    })
  )
})

// A vendor that counts the calls running at once and answers after `millis`.
const countingVendor = (millis: number, concurrency: number) => {
  let running = 0
  const seen = { most: 0, calls: 0 }
  const vendor: Vendor.Vendor = {
    name: "slow",
    mode: "sync",
    concurrency,
    call: (request) =>
      Effect.sync(() => {
        running++
        seen.calls++
        seen.most = Math.max(seen.most, running)
      }).pipe(
        Effect.andThen(Effect.sleep(millis)),
        Effect.ensuring(Effect.sync(() => running--)),
        Effect.as({ _tag: "Completed", result: request.payload } as const)
      )
  }
  return { vendor, seen }
}

// The memory store, recording how many jobs each `getMany` read, and the jobs claimed.
const spiedStore = (reads: Array<number>, claims: Array<Job.JobId>) =>
  Layer.effect(
    JobStore.JobStore,
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      return JobStore.JobStore.of({
        ...store,
        getMany: (ids) =>
          Effect.andThen(
            Effect.sync(() => reads.push(ids.length)),
            store.getMany(ids)
          ),
        claim: (claim) =>
          Effect.andThen(
            Effect.sync(() => claims.push(claim.id)),
            store.claim(claim)
          )
      })
    })
  )

// The memory queue, recording how many deliveries each take asked for and got.
const spiedQueue = (takes: Array<readonly [asked: number, got: number]>) =>
  Layer.effect(
    JobQueue.JobQueue,
    Effect.gen(function* () {
      const queue = yield* JobQueue.JobQueue
      return JobQueue.JobQueue.of({
        ...queue,
        take: (vendor, options) =>
          Effect.tap(queue.take(vendor, options), (deliveries) =>
            Effect.sync(() => {
              takes.push([options.max, deliveries.length])
            })
          )
      })
    })
  )

describe("Consumer", () => {
  it.live(
    "takes as many deliveries at once as it has free slots, claims their pending jobs without reading them, and never runs more than that",
    () =>
      Effect.gen(function* () {
        const { seen, vendor } = countingVendor(100, 4)
        const takes: Array<readonly [number, number]> = []
        const reads: Array<number> = []
        const claims: Array<Job.JobId> = []
        yield* Effect.gen(function* () {
          const jobs = yield* Effect.forEach(Array.from({ length: 10 }), () => submitted)
          const scope = yield* Scope.make()
          yield* Layer.buildWithScope(
            Consumer.layer({ grace: "5 seconds" }).pipe(
              Layer.provide(
                JobProcessor.layer({ webhookBaseUrl: "http://x" }).pipe(Layer.provide(spiedStore(reads, claims)))
              ),
              Layer.provide(spiedQueue(takes))
            ),
            scope
          )
          yield* Effect.forEach(jobs, (job) =>
            read(job.id).pipe(
              Effect.repeat({ until: (now) => now.status === "complete", schedule: Schedule.spaced("20 millis") })
            )
          )
          yield* Scope.close(scope, Exit.void)
        }).pipe(Effect.provide(withBackends(vendor)))
        assert.strictEqual(seen.calls, 10)
        assert.strictEqual(seen.most, 4, "at most `concurrency` calls at once, and that many when there is work")
        assert.deepStrictEqual(takes[0], [4, 4], "the first take fills every slot")
        const taken = takes.reduce((sum, [, got]) => sum + got, 0)
        assert.strictEqual(taken, 10)
        assert.deepStrictEqual(reads, [], "a pending job is claimed at once, not read first")
        assert.strictEqual(new Set(claims).size, 10, "each job claimed once")
        assert.isTrue(
          takes.every(([asked]) => asked >= 1 && asked <= 4),
          `each take asks for the free slots: ${JSON.stringify(takes)}`
        )
      })
  )
})

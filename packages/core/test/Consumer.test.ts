import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Option, Scope } from "effect"
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
        const after = yield* read(job.id)
        assert.deepStrictEqual([after.status, after.attempts], ["pending", 0])
        const again = yield* JobQueue.JobQueue.use((queue) => queue.take("slow", { max: 1, block: "2 seconds" }))
        assert.deepStrictEqual(
          again.map((d) => d.jobId),
          [job.id]
        )
      }).pipe(Effect.provide(withBackends(vendor)))
    })
  )
})

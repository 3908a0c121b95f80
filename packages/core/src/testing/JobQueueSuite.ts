/**
 * The conformance suite every {@link JobQueue} implementation runs: memory in core's unit tests,
 * Redis Streams in `@vendorflow/redis`'s integration tests. Each test uses its own vendor name, so
 * one queue instance can serve the whole suite without the tests seeing each other's entries.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, type Layer } from "effect"
import * as Job from "../Job.ts"
import { JobQueue } from "../JobQueue.ts"

const vendorName = () => `suite-${crypto.randomUUID().slice(0, 8)}`

/**
 * Registers the suite under `name`, against the queue that `layer` builds.
 *
 * @category suites
 */
export const suite = <E>(name: string, layer: Layer.Layer<JobQueue, E>): void => {
  describe(`JobQueue conformance: ${name}`, () => {
    it.layer(layer, { timeout: 30_000, excludeTestServices: true })((it) => {
      it.effect("delivers what was enqueued, in order, once", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          const ids = [Job.makeJobId(), Job.makeJobId(), Job.makeJobId()]
          for (const id of ids) yield* queue.enqueue(vendor, id)
          const taken = yield* queue.take(vendor, { max: 10, block: "1 second" })
          assert.deepStrictEqual(
            taken.map((d) => d.jobId),
            ids
          )
          assert.isTrue(taken.every((d) => d.vendor === vendor && d.deliveryCount === 1))
          for (const delivery of taken) yield* queue.ack(delivery)
          assert.deepStrictEqual(yield* queue.take(vendor, { max: 10, block: "50 millis" }), [])
        })
      )

      it.effect("enqueueMany queues a batch in order, counted by depth; an empty batch queues nothing", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          yield* queue.enqueueMany(vendor, [])
          assert.strictEqual(yield* queue.depth(vendor), 0)
          const ids = Array.from({ length: 5 }, () => Job.makeJobId())
          yield* queue.enqueueMany(vendor, ids.slice(0, 4))
          yield* queue.enqueue(vendor, ids[4]!)
          assert.strictEqual(yield* queue.depth(vendor), 5)
          const taken = yield* queue.take(vendor, { max: 10, block: "1 second" })
          assert.deepStrictEqual(
            taken.map((d) => [d.jobId, d.deliveryCount]),
            ids.map((id) => [id, 1])
          )
          for (const delivery of taken) yield* queue.ack(delivery)
          assert.deepStrictEqual(yield* queue.take(vendor, { max: 10, block: "50 millis" }), [])
        })
      )

      it.effect("takes at most max, and keeps vendors apart", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const a = vendorName()
          const b = vendorName()
          for (let i = 0; i < 5; i++) yield* queue.enqueue(a, Job.makeJobId())
          const fromB = yield* queue.take(b, { max: 10, block: "50 millis" })
          assert.deepStrictEqual(fromB, [])
          const first = yield* queue.take(a, { max: 2, block: "1 second" })
          const rest = yield* queue.take(a, { max: 10, block: "1 second" })
          assert.strictEqual(first.length, 2)
          assert.strictEqual(rest.length, 3)
          for (const delivery of [...first, ...rest]) yield* queue.ack(delivery)
        })
      )

      it.effect("waits for work that arrives while it blocks", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          const id = Job.makeJobId()
          const taking = yield* Effect.forkChild(queue.take(vendor, { max: 1, block: "5 seconds" }))
          yield* Effect.sleep("100 millis")
          yield* queue.enqueue(vendor, id)
          const taken = yield* Fiber.join(taking)
          assert.deepStrictEqual(
            taken.map((d) => d.jobId),
            [id]
          )
          yield* queue.ack(taken[0]!)
        })
      )

      it.effect("retryLater delivers again after the delay, counting the delivery", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          const id = Job.makeJobId()
          yield* queue.enqueue(vendor, id)
          const [delivery] = yield* queue.take(vendor, { max: 1, block: "1 second" })
          yield* queue.retryLater(delivery!, "300 millis")
          assert.deepStrictEqual(yield* queue.take(vendor, { max: 1, block: "100 millis" }), [])
          const again = yield* queue.take(vendor, { max: 1, block: "3 seconds" })
          assert.deepStrictEqual(
            again.map((d) => [d.jobId, d.deliveryCount]),
            [[id, 2]]
          )
          yield* queue.ack(again[0]!)
        })
      )

      it.effect("depth counts what waits to be taken and what waits to be retried", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          assert.strictEqual(yield* queue.depth(vendor), 0)
          for (let i = 0; i < 3; i++) yield* queue.enqueue(vendor, Job.makeJobId())
          assert.strictEqual(yield* queue.depth(vendor), 3)
          const [first, second] = yield* queue.take(vendor, { max: 2, block: "1 second" })
          yield* queue.ack(first!)
          yield* queue.retryLater(second!, "10 seconds")
          assert.strictEqual(yield* queue.depth(vendor), 2, "one waiting, one waiting to be retried")
        })
      )

      it.effect("a held delivery renewed, then acknowledged, is not delivered again", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          yield* queue.enqueue(vendor, Job.makeJobId())
          const [delivery] = yield* queue.take(vendor, { max: 1, block: "1 second" })
          yield* queue.renew(delivery!)
          yield* queue.renew(delivery!)
          yield* queue.ack(delivery!)
          yield* queue.ack(delivery!)
          assert.deepStrictEqual(yield* queue.take(vendor, { max: 1, block: "100 millis" }), [])
          assert.strictEqual(yield* queue.depth(vendor), 0)
        })
      )

      it.effect("deadLetter records a job given up on outside any delivery", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          const id = Job.makeJobId()
          yield* queue.deadLetter({ vendor, jobId: id }, "callback_timeout: no callback")
          assert.deepStrictEqual(
            (yield* queue.deadLetters(vendor)).map((l) => [l.jobId, l.reason]),
            [[id, "callback_timeout: no callback"]]
          )
        })
      )

      it.effect("deadLetter records the job and its reason", () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue
          const vendor = vendorName()
          const id = Job.makeJobId()
          yield* queue.enqueue(vendor, id)
          const [delivery] = yield* queue.take(vendor, { max: 1, block: "1 second" })
          yield* queue.deadLetter(delivery!, "Rejected: vendor answered 400")
          const letters = yield* queue.deadLetters(vendor)
          assert.deepStrictEqual(
            letters.map((l) => [l.jobId, l.reason]),
            [[id, "Rejected: vendor answered 400"]]
          )
          assert.deepStrictEqual(yield* queue.take(vendor, { max: 1, block: "50 millis" }), [])
        })
      )
    })
  })
}

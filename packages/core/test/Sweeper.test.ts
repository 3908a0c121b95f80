import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../src/Job.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobStore from "../src/JobStore.ts"
import * as Sweeper from "../src/Sweeper.ts"
import type * as Vendor from "../src/Vendor.ts"
import { layerEngine } from "./support/Engine.ts"

// An adapter that answers at once with the payload it was sent.
const echo: Vendor.Vendor = {
  name: "echo",
  mode: "sync",
  concurrency: 1,
  call: (request) => Effect.succeed({ _tag: "Completed", result: request.payload })
}

// An async adapter whose callbacks may take an hour; nothing here calls it.
const patient: Vendor.Vendor = {
  name: "patient",
  mode: "async",
  concurrency: 1,
  callbackDeadline: Duration.hours(1),
  call: () => Effect.die(new Error("not called"))
}

const Engine = layerEngine([echo])

const stored = Effect.fnUntraced(function* (payload: Job.JsonObject = { n: 1 }, vendor = "echo") {
  const store = yield* JobStore.JobStore
  const job = Job.makePending({ vendor, payload, now: new Date(0) })
  yield* store.create(job)
  return job
})

// Takes what the sweeper queued and runs it through the engine, as a worker would.
const work = Effect.gen(function* () {
  const queue = yield* JobQueue.JobQueue
  const processor = yield* JobProcessor.JobProcessor
  const deliveries = yield* queue.take("echo", { max: 100, block: 0 })
  yield* Effect.forEach(deliveries, processor.process, { discard: true })
  return deliveries.length
})

// The memory queue, refusing every enqueue while `refusing.writes` is set.
const refusing = { writes: false }
const RefusingQueue = Layer.effect(
  JobQueue.JobQueue,
  Effect.gen(function* () {
    const queue = yield* JobQueue.JobQueue
    return JobQueue.JobQueue.of({
      ...queue,
      enqueue: (vendor, jobId) =>
        Effect.suspend(() =>
          refusing.writes
            ? Effect.fail(new JobQueue.JobQueueError({ reason: "Unavailable", message: "refused" }))
            : queue.enqueue(vendor, jobId)
        )
    })
  })
).pipe(Layer.provide(JobQueue.layerMemory))

// Joins `fiber`, moving the test clock on a second at a time while it sleeps.
const clockedJoin = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("1 second")
    return yield* Fiber.join(fiber)
  })

// What the engine stores for an accepted async call at `at`: awaiting the callback until the
// default deadline.
const accepted = (at: string) => ({
  attempts: 1,
  awaitingCallback: true,
  overdueAt: new Date(Date.parse(at) + Duration.toMillis(JobProcessor.defaultCallbackDeadline)).toISOString()
})

// A job whose async call was accepted and whose callback never came.
const awaitingCallback = Effect.gen(function* () {
  const store = yield* JobStore.JobStore
  const job = yield* stored()
  yield* store.transition({ id: job.id, from: "pending", to: "processing", set: accepted(job.createdAt) })
  return job
})

const read = (id: Job.JobId) => JobStore.JobStore.use((store) => store.get(id)).pipe(Effect.map(Option.getOrThrow))

describe("Sweeper", () => {
  it.effect("queues a job that was stored but never queued, once it is older than the threshold", () =>
    Effect.gen(function* () {
      const job = yield* stored()
      assert.strictEqual(yield* Sweeper.sweepOnce(), 0, "a fresh job is left alone")
      yield* TestClock.adjust("11 minutes")
      assert.strictEqual(yield* Sweeper.sweepOnce(), 1)
      assert.strictEqual(yield* work, 1)
      const done = yield* read(job.id)
      assert.deepStrictEqual([done.status, done.attempts, done.result], ["complete", 1, { n: 1 }])
    }).pipe(Effect.provide(Engine))
  )

  it.effect(
    "restarts a processing job once its worker stopped renewing its lease, fencing the abandoned attempt off",
    () =>
      Effect.gen(function* () {
        const store = yield* JobStore.JobStore
        const job = yield* stored({ n: 2 })
        // A worker claimed it (leased for 30 s, as the engine does) and died; its queue entry is gone.
        const abandoned = yield* store
          .transition({
            id: job.id,
            from: "pending",
            to: "processing",
            expectedVersion: job.version,
            set: { attempts: 1, overdueAt: new Date(30_000).toISOString() }
          })
          .pipe(Effect.map(Option.getOrThrow))
        yield* TestClock.adjust("29 seconds")
        assert.strictEqual(yield* Sweeper.sweepOnce(), 0, "inside its lease")
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* Sweeper.sweepOnce(), 1)
        assert.strictEqual(yield* work, 1)
        const done = yield* read(job.id)
        assert.deepStrictEqual([done.status, done.attempts], ["complete", 2])
        // The dead worker's late answer (at its attempt's version) changes nothing.
        const late = yield* store.transition({
          id: job.id,
          from: "processing",
          to: "complete",
          expectedVersion: abandoned.version,
          set: { result: "late" }
        })
        assert.isTrue(Option.isNone(late))
        assert.deepStrictEqual((yield* read(job.id)).result, { n: 2 })
      }).pipe(Effect.provide(Engine))
  )

  it.effect(
    "an async job past its callback deadline is sent round again; before it, and finished jobs, are left alone",
    () =>
      Effect.gen(function* () {
        const store = yield* JobStore.JobStore
        const waiting = yield* stored()
        yield* store.transition({ id: waiting.id, from: "pending", to: "processing", set: accepted(waiting.createdAt) })
        const finished = yield* stored()
        yield* store.transition({
          id: finished.id,
          from: "pending",
          to: "failed",
          set: { error: { reason: "x", message: "y" } }
        })
        yield* TestClock.adjust("4 minutes")
        assert.strictEqual(yield* Sweeper.sweepOnce(), 0, "within the default 5-minute deadline")
        yield* TestClock.adjust("2 minutes")
        assert.strictEqual(yield* Sweeper.sweepOnce(), 1)
        const resubmitted = yield* read(waiting.id)
        assert.deepStrictEqual([resubmitted.status, resubmitted.error?.reason], ["pending", "callback_timeout"])
        assert.strictEqual(yield* work, 1)
        const done = yield* read(waiting.id)
        assert.deepStrictEqual([done.status, done.attempts], ["complete", 2])
        assert.strictEqual((yield* read(finished.id)).status, "failed")
      }).pipe(Effect.provide(Engine))
  )

  it.effect("an overdue async job is resubmitted once the queue takes writes again, within the retries", () =>
    Effect.gen(function* () {
      const job = yield* awaitingCallback
      yield* TestClock.adjust("6 minutes")
      refusing.writes = true
      const sweep = yield* Effect.forkChild(Sweeper.sweepOnce())
      yield* TestClock.adjust("3 seconds")
      refusing.writes = false
      assert.strictEqual(yield* clockedJoin(sweep), 1)
      assert.strictEqual(yield* work, 1)
      const done = yield* read(job.id)
      assert.deepStrictEqual([done.status, done.attempts], ["complete", 2])
    }).pipe(Effect.provide(layerEngine([echo], {}, RefusingQueue)))
  )

  it.effect(
    "when the queue refuses writes past the retries, the job stays pending, overdue at once, and the next sweep queues it",
    () =>
      Effect.gen(function* () {
        const job = yield* awaitingCallback
        const other = yield* awaitingCallback
        yield* TestClock.adjust("6 minutes")
        refusing.writes = true
        const sweep = yield* Effect.forkChild(Sweeper.sweepOnce())
        assert.strictEqual(yield* clockedJoin(sweep), 2, "one job's failure does not stop the sweep")
        const now = yield* Clock.currentTimeMillis
        for (const id of [job.id, other.id]) {
          const waiting = yield* read(id)
          assert.strictEqual(waiting.status, "pending")
          assert.isAtMost(Date.parse(waiting.overdueAt ?? ""), now)
        }
        refusing.writes = false
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Sweeper.sweepOnce(), 2)
        assert.strictEqual(yield* work, 2)
        assert.strictEqual((yield* read(job.id)).status, "complete")
      }).pipe(Effect.provide(layerEngine([echo], {}, RefusingQueue)))
  )

  it.effect("no number of async jobs inside their callback deadline hides a stuck job from the sweep", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      // 600 async jobs accepted at once, their callbacks due within the hour.
      const waiting = yield* Effect.forEach(Array.from({ length: 600 }), () =>
        Effect.flatMap(stored({}, patient.name), (job) =>
          store.transition({
            id: job.id,
            from: "pending",
            to: "processing",
            set: { attempts: 1, awaitingCallback: true, overdueAt: new Date(3_600_000).toISOString() }
          })
        )
      )
      yield* TestClock.adjust("1 second")
      // Then a job whose worker died mid-attempt.
      const stuck = yield* stored({ n: 4 })
      yield* store.transition({
        id: stuck.id,
        from: "pending",
        to: "processing",
        set: { attempts: 1, overdueAt: new Date(31_000).toISOString() }
      })
      yield* TestClock.adjust("11 minutes")
      assert.strictEqual(yield* Sweeper.sweepOnce(), 1)
      assert.strictEqual(yield* work, 1)
      assert.deepStrictEqual((yield* read(stuck.id)).status, "complete")
      const untouched = yield* Effect.forEach(waiting, (job) => read(Option.getOrThrow(job).id))
      assert.isTrue(untouched.every((job) => job.status === "processing" && job.awaitingCallback === true))
    }).pipe(Effect.provide(layerEngine([echo, patient])))
  )

  it.effect("a job waiting for its retry is not overdue before its next_retry_at", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      const job = yield* stored()
      // Its first attempt was told to come back in an hour (Retry-After), as the engine parks it.
      const due = 3_600_000
      yield* store.transition({
        id: job.id,
        from: "pending",
        to: "pending",
        set: {
          attempts: 1,
          nextRetryAt: new Date(due).toISOString(),
          overdueAt: Job.pendingOverdueAt(due)
        }
      })
      yield* TestClock.adjust("11 minutes")
      assert.strictEqual(yield* Sweeper.sweepOnce(), 0, "its retry is not due yet")
      yield* TestClock.adjust("60 minutes")
      assert.strictEqual(yield* Sweeper.sweepOnce(), 1, "due, and not taken within SWEEP_PENDING_AFTER")
    }).pipe(Effect.provide(Engine))
  )

  it.effect("an async job failed for its missing callback is dead-lettered", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      const queue = yield* JobQueue.JobQueue
      const job = yield* stored()
      // Its last attempt (the fifth, the default limit) was accepted; no callback came.
      yield* store.transition({
        id: job.id,
        from: "pending",
        to: "processing",
        set: { ...accepted(job.createdAt), attempts: JobProcessor.defaultMaxAttempts }
      })
      yield* TestClock.adjust("6 minutes")
      assert.strictEqual(yield* Sweeper.sweepOnce(), 1)
      const failed = yield* read(job.id)
      assert.deepStrictEqual([failed.status, failed.error?.reason], ["failed", "callback_timeout"])
      assert.deepStrictEqual(
        (yield* queue.deadLetters("echo")).map((letter) => [letter.jobId, letter.reason.split(":")[0]]),
        [[job.id, "callback_timeout"]]
      )
    }).pipe(Effect.provide(Engine))
  )

  it.effect("when two sweepers race, a stuck job is queued once", () =>
    Effect.gen(function* () {
      yield* stored()
      yield* TestClock.adjust("11 minutes")
      const counts = yield* Effect.all([Sweeper.sweepOnce(), Sweeper.sweepOnce()], { concurrency: 2 })
      assert.strictEqual(counts[0] + counts[1], 1)
      assert.strictEqual(yield* work, 1)
    }).pipe(Effect.provide(Engine))
  )

  it.effect("a redelivered job that already finished is acknowledged and left as it is", () =>
    Effect.gen(function* () {
      const queue = yield* JobQueue.JobQueue
      const job = yield* stored({ n: 3 })
      yield* queue.enqueue("echo", job.id)
      yield* queue.enqueue("echo", job.id)
      assert.strictEqual(yield* work, 2)
      const done = yield* read(job.id)
      assert.deepStrictEqual([done.status, done.attempts], ["complete", 1])
    }).pipe(Effect.provide(Engine))
  )
})

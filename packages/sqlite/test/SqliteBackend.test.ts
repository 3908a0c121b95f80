/**
 * What the conformance suites cannot see: two instances on one file (as two processes are), a
 * lease that runs out, a late holder, the delivery limit, expiry and housekeeping, the replay guard.
 */
import { assert, describe, it } from "@effect/vitest"
import { Job, JobQueue, JobStore, WebhookSignature } from "@vendorflow/core"
import { Context, Duration, Effect, Layer, Option, type Scope } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { TestClock } from "effect/testing"
import { SqlClient } from "effect/sql"
import * as SqliteBackend from "../src/SqliteBackend.ts"
import * as SqliteCircuitBreaker from "../src/SqliteCircuitBreaker.ts"
import * as SqliteDatabase from "../src/SqliteDatabase.ts"
import * as SqliteJobQueue from "../src/SqliteJobQueue.ts"
import * as SqliteJobStore from "../src/SqliteJobStore.ts"
import * as SqliteReplayGuard from "../src/SqliteReplayGuard.ts"
import * as SqliteStats from "../src/SqliteStats.ts"
import { scratchFile } from "./SqliteFixtures.ts"

const path = scratchFile()
const vendorName = () => `v-${crypto.randomUUID().slice(0, 8)}`

/** A queue on its own connection to the file, as another process has. */
const queueOn = (options: SqliteJobQueue.Options = {}) =>
  Layer.build(SqliteJobQueue.layer(options).pipe(Layer.provide(SqliteDatabase.layer({ path })))).pipe(
    Effect.map(Context.get(JobQueue.JobQueue))
  )

describe("SqliteJobQueue on one file", () => {
  it.live("two takers at once never get the same delivery", () =>
    Effect.gen(function* () {
      const [a, b] = [yield* queueOn(), yield* queueOn()]
      const vendor = vendorName()
      const ids = Array.from({ length: 200 }, () => Job.makeJobId())
      yield* a.enqueueMany(vendor, ids)
      const takes = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take(vendor, { max: 10, block: "1 second" })),
        { concurrency: "unbounded" }
      )
      const taken = takes.flat().map((delivery) => delivery.jobId)
      assert.strictEqual(taken.length, 200)
      assert.strictEqual(new Set(taken).size, 200)
    })
  )

  it.live("a lease that ran out goes to another taker; the late holder's ack and renewal change nothing", () =>
    Effect.gen(function* () {
      const stale = yield* queueOn({ visibilityTimeout: "200 millis" })
      const current = yield* queueOn({ visibilityTimeout: "200 millis" })
      const vendor = vendorName()
      const id = Job.makeJobId()
      yield* stale.enqueue(vendor, id)
      const [first] = yield* stale.take(vendor, { max: 1, block: "1 second" })
      assert.deepStrictEqual(yield* current.take(vendor, { max: 1, block: "50 millis" }), [])
      yield* Effect.sleep("250 millis")
      const [again] = yield* current.take(vendor, { max: 1, block: "1 second" })
      assert.deepStrictEqual([again?.jobId, again?.deliveryCount], [id, 2])
      yield* stale.ack(first!)
      yield* stale.renew(first!)
      assert.strictEqual(yield* current.depth(vendor), 1, "still held by the current taker")
      // Renewed within its lease, twice: held past 200 ms from the take, never unrenewed for 200 ms.
      yield* Effect.sleep("120 millis")
      yield* current.renew(again!)
      yield* Effect.sleep("120 millis")
      assert.deepStrictEqual(yield* stale.take(vendor, { max: 1, block: "50 millis" }), [], "renewed: not reclaimed")
      yield* current.ack(again!)
      assert.strictEqual(yield* current.depth(vendor), 0)
    })
  )

  it.live("a delivery past the limit comes out exhausted", () =>
    Effect.gen(function* () {
      const queue = yield* queueOn({ deliveryLimit: 2 })
      const vendor = vendorName()
      yield* queue.enqueue(vendor, Job.makeJobId())
      const [first] = yield* queue.take(vendor, { max: 1, block: "1 second" })
      yield* queue.retryLater(first!, 0)
      const [second] = yield* queue.take(vendor, { max: 1, block: "1 second" })
      yield* queue.retryLater(second!, 0)
      const [third] = yield* queue.take(vendor, { max: 1, block: "1 second" })
      assert.deepStrictEqual(
        [first, second, third].map((delivery) => [delivery?.deliveryCount, delivery?.exhausted ?? false]),
        [
          [1, false],
          [2, false],
          [3, true]
        ]
      )
      yield* queue.deadLetter(third!, "DeliveryLimit")
      assert.strictEqual(yield* queue.depth(vendor), 0)
      assert.deepStrictEqual(
        (yield* queue.deadLetters(vendor)).map((letter) => letter.reason),
        ["DeliveryLimit"]
      )
    })
  )
})

describe("SqliteBackend's parts", () => {
  const backend = Layer.mergeAll(SqliteJobStore.layer({ finishedTtl: "1 hour" }), SqliteReplayGuard.layer).pipe(
    Layer.provideMerge(SqliteDatabase.layer({ path }))
  )

  it.effect("a finished job expires after the TTL, and housekeeping deletes its row", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      const job = Job.makePending({ vendor: "sync", payload: { n: 1 }, now: new Date(yield* TestClockNow) })
      yield* store.create(job)
      yield* store.transition({ id: job.id, from: "pending", to: "failed", set: { attempts: 0 } })
      assert.isTrue(Option.isSome(yield* store.get(job.id)))
      yield* TestClock.adjust("61 minutes")
      assert.isTrue(Option.isNone(yield* store.get(job.id)), "expired")
      yield* SqliteBackend.housekeep
      const sql = yield* SqlClient.SqlClient
      assert.deepStrictEqual(yield* sql`SELECT id FROM jobs WHERE id = ${job.id}`, [])
    }).pipe(Effect.provide(backend))
  )

  it.effect("the replay guard accepts a signature once until it expires", () =>
    Effect.gen(function* () {
      const guard = yield* WebhookSignature.ReplayGuard
      const key = crypto.randomUUID()
      assert.isFalse(yield* guard.seen(key))
      assert.isTrue(yield* guard.claim(key, 60))
      assert.isFalse(yield* guard.claim(key, 60))
      assert.isTrue(yield* guard.seen(key))
      yield* TestClock.adjust("61 seconds")
      assert.isTrue(yield* guard.claim(key, 60), "expired: claimable again")
    }).pipe(Effect.provide(backend))
  )
})

const TestClockNow = Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe()))

describe("SqliteStats", () => {
  it.live("what one process records, another reads, once flushed", () =>
    Effect.gen(function* () {
      const collectorOn = Effect.flatMap(Layer.build(SqliteDatabase.layer({ path })), (context) =>
        SqliteStats.make("50 millis").pipe(Effect.provide(context))
      )
      const [writer, reader] = [yield* collectorOn, yield* collectorOn]
      const vendor = vendorName()
      yield* writer.recordCall(vendor, "ok", 120)
      yield* writer.recordCall(vendor, "Unavailable", 80)
      yield* writer.recordCompleted(vendor, 300)
      yield* Effect.sleep("200 millis")
      const summary = yield* reader.summary(vendor, 5)
      assert.deepStrictEqual(
        [summary.calls, summary.callErrors, summary.completed, summary.failed],
        [2, { Unavailable: 1 }, 1, 0]
      )
    })
  )
})

describe("SqliteCircuitBreaker", () => {
  const storeOn = Effect.flatMap(Layer.build(SqliteDatabase.layer({ path })), (context) =>
    SqliteCircuitBreaker.make({ probeLease: "10 seconds" }).pipe(Effect.provide(context))
  )
  const policy = { _tag: "Consecutive", failures: 2 } as const
  const recorded = (
    store: CircuitBreaker.CircuitBreakerStore["Service"],
    key: string,
    admitted: CircuitBreaker.Admission,
    outcome: "Success" | "Failure"
  ) =>
    store.record({ key, generation: admitted.generation, outcome, tripPolicy: policy, openFor: Duration.millis(200) })
  const reason = (effect: Effect.Effect<unknown, CircuitBreaker.CircuitBreakerError, Scope.Scope>) =>
    Effect.map(Effect.flip(Effect.scoped(effect)), (error) => error.reason._tag)

  it.live("one circuit for the processes on the file: opened by one, half-open to another, one probe at a time", () =>
    Effect.gen(function* () {
      const [a, b] = [yield* storeOn, yield* storeOn]
      const key = `vendor:${vendorName()}`
      for (let i = 0; i < 2; i++) {
        yield* recorded(a, key, yield* Effect.scoped(a.admit(key)), "Failure")
      }
      assert.strictEqual((yield* b.state(key))._tag, "Open")
      assert.strictEqual(yield* reason(b.admit(key)), "CircuitOpen")
      yield* Effect.sleep("250 millis")
      const probe = yield* Effect.scoped(b.admit(key))
      assert.isTrue(probe.probe)
      assert.strictEqual(yield* reason(a.admit(key)), "CircuitHalfOpen")
      yield* recorded(b, key, probe, "Success")
      assert.strictEqual((yield* a.state(key))._tag, "Closed")
      assert.isFalse((yield* Effect.scoped(a.admit(key))).probe)
    })
  )
})

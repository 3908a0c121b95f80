import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../src/Job.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobStore from "../src/JobStore.ts"
import * as RateLimiter from "../src/RateLimiter.ts"
import * as Sweeper from "../src/Sweeper.ts"
import * as Vendor from "../src/Vendor.ts"
import { echoVendor, layerBackends, layerEngine } from "./support/Engine.ts"

type Answer = "ok" | "down" | "busy" | "refused" | "crash"

// A vendor whose next answers the test scripts; it counts its calls.
const scripted = Effect.gen(function* () {
  const answers = yield* Ref.make<ReadonlyArray<Answer>>([])
  const calls = yield* Ref.make(0)
  const vendor: Vendor.Vendor = {
    name: "scripted",
    mode: "sync",
    concurrency: 1,
    maxAttempts: 3,
    call: (request) =>
      Effect.gen(function* () {
        yield* Ref.update(calls, (n) => n + 1)
        const [next = "ok", ...rest] = yield* Ref.get(answers)
        yield* Ref.set(answers, rest)
        if (next === "ok") return { _tag: "Completed", result: request.payload } as const
        if (next === "crash") return yield* Effect.die(new TypeError("undefined is not a function"))
        if (next === "busy") {
          return yield* new Vendor.VendorError({
            vendor: "scripted",
            reason: "RateLimited",
            message: "429",
            retryAfterMillis: 30_000
          })
        }
        const reason = next === "down" ? "Unavailable" : "Rejected"
        return yield* new Vendor.VendorError({ vendor: "scripted", reason, message: next })
      })
  }
  return { vendor, answers, calls }
})

const setUp = Effect.gen(function* () {
  const { vendor, answers, calls } = yield* scripted
  const context = yield* Layer.build(layerEngine([vendor], { failures: 3, openFor: "10 seconds" }))
  const store = yield* Effect.succeed(Context.get(context, JobStore.JobStore))
  const queue = yield* Effect.succeed(Context.get(context, JobQueue.JobQueue))
  const processor = yield* Effect.succeed(Context.get(context, JobProcessor.JobProcessor))
  const submit = Effect.gen(function* () {
    const job = Job.makePending({ vendor: "scripted", payload: { n: 1 }, now: new Date(0) })
    yield* store.create(job)
    yield* queue.enqueue("scripted", job.id)
    return job.id
  })
  // Runs whatever is due now.
  const work = Effect.gen(function* () {
    const deliveries = yield* queue.take("scripted", { max: 100, block: 0 })
    yield* Effect.forEach(deliveries, processor.process, { discard: true })
    return deliveries.length
  })
  const read = (id: Job.JobId) => Effect.map(store.get(id), Option.getOrThrow)
  return { answers, calls, submit, work, read, queue }
})

describe("JobProcessor retries and circuit breaking", () => {
  it.effect("a transient error is retried after a backoff, with the error and next_retry_at shown meanwhile", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      yield* Ref.set(t.answers, ["down", "ok"])
      const id = yield* t.submit
      yield* t.work
      const waiting = yield* t.read(id)
      assert.deepStrictEqual([waiting.status, waiting.attempts, waiting.error?.reason], ["pending", 1, "Unavailable"])
      assert.isDefined(waiting.nextRetryAt)
      assert.isAtMost(Date.parse(waiting.nextRetryAt ?? "") - Date.parse(waiting.updatedAt), 1000)
      yield* TestClock.adjust("1 second")
      yield* t.work
      const done = yield* t.read(id)
      assert.deepStrictEqual(
        [done.status, done.attempts, done.error, done.nextRetryAt],
        ["complete", 2, undefined, undefined]
      )
    })
  )

  it.effect("Retry-After is honoured: no retry before it", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      yield* Ref.set(t.answers, ["busy"])
      const id = yield* t.submit
      yield* t.work
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual(yield* t.work, 0)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* t.work, 1)
      assert.strictEqual((yield* t.read(id)).status, "complete")
    })
  )

  it.effect("after the vendor's attempt limit the job fails with the last error and a dead letter", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      yield* Ref.set(t.answers, ["busy", "busy", "busy"])
      const id = yield* t.submit
      for (let i = 0; i < 3; i++) {
        yield* t.work
        yield* TestClock.adjust("30 seconds")
      }
      const failed = yield* t.read(id)
      assert.deepStrictEqual([failed.status, failed.attempts, failed.error?.reason], ["failed", 3, "RateLimited"])
      assert.strictEqual(yield* Ref.get(t.calls), 3)
      const letters = yield* t.queue.deadLetters("scripted")
      assert.deepStrictEqual(
        letters.map((l) => l.jobId),
        [id]
      )
    })
  )

  it.effect("a permanent error fails the job at once", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      yield* Ref.set(t.answers, ["refused"])
      const id = yield* t.submit
      yield* t.work
      const failed = yield* t.read(id)
      assert.deepStrictEqual([failed.status, failed.attempts, failed.error?.reason], ["failed", 1, "Rejected"])
    })
  )

  it.effect("an adapter that crashes fails its job, not the worker", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      yield* Ref.set(t.answers, ["crash"])
      const id = yield* t.submit
      yield* t.work
      const failed = yield* t.read(id)
      assert.deepStrictEqual([failed.status, failed.error?.reason], ["failed", "InvalidResponse"])
      assert.match(failed.error?.message ?? "", /adapter crashed: TypeError: undefined is not a function/)
    })
  )

  it.effect("an open circuit makes jobs wait without spending attempts, until a probe succeeds", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      // Three jobs fail with the vendor down: the circuit (3 consecutive failures) opens.
      yield* Ref.set(t.answers, ["down", "down", "down"])
      const first = yield* Effect.forEach([1, 2, 3], () => t.submit)
      yield* t.work
      const waiting = yield* t.submit
      yield* TestClock.adjust("1 second")
      yield* t.work
      const callsWhileOpen = yield* Ref.get(t.calls)
      const held = yield* t.read(waiting)
      assert.deepStrictEqual([held.status, held.attempts], ["pending", 0], "held back, no attempt spent")
      assert.strictEqual(callsWhileOpen, 3, "no call reaches a vendor whose circuit is open")
      // The vendor is back (the script answers ok from now on); after the open period a probe goes through.
      yield* TestClock.adjust("10 seconds")
      yield* t.work
      yield* TestClock.adjust("10 seconds")
      yield* t.work
      for (const id of [...first, waiting]) assert.strictEqual((yield* t.read(id)).status, "complete")
    })
  )
})

describe("JobProcessor and the queue's delivery limit", () => {
  it.effect(
    "a delivery past the limit fails the job's record and dead-letters it, without calling the vendor; a finished job's is let go",
    () =>
      Effect.gen(function* () {
        const { calls, vendor } = yield* scripted
        const context = yield* Layer.build(layerEngine([vendor]))
        const store = Context.get(context, JobStore.JobStore)
        const queue = Context.get(context, JobQueue.JobQueue)
        const processor = Context.get(context, JobProcessor.JobProcessor)
        const job = Job.makePending({ vendor: vendor.name, payload: {}, now: new Date() })
        yield* store.create(job)
        const finished = Job.makePending({ vendor: vendor.name, payload: {}, now: new Date() })
        yield* store.create(finished)
        yield* store.transition({ id: finished.id, from: "pending", to: "failed" })

        for (const id of [job.id, finished.id]) {
          yield* processor.process({
            id: `entry-${id}`,
            vendor: vendor.name,
            jobId: id,
            deliveryCount: 6,
            exhausted: true
          })
        }
        const failed = (yield* store.get(job.id)).pipe(Option.getOrThrow)
        assert.deepStrictEqual([failed.status, failed.error?.reason], ["failed", "DeliveryLimit"])
        const untouched = (yield* store.get(finished.id)).pipe(Option.getOrThrow)
        assert.deepStrictEqual([untouched.status, untouched.error], ["failed", undefined])
        const letters = yield* queue.deadLetters(vendor.name)
        assert.deepStrictEqual(
          letters.map((letter) => letter.jobId),
          [job.id]
        )
        assert.strictEqual(yield* Ref.get(calls), 0)
      }).pipe(Effect.scoped)
  )
})

// A vendor whose calls wait until the test answers them; it counts its calls.
const gated = (options: Partial<Pick<Vendor.Vendor, "rateLimit" | "maxAttempts">> = {}) =>
  Effect.gen(function* () {
    const calls = yield* Ref.make(0)
    const started = yield* Deferred.make<void>()
    const answer = yield* Deferred.make<Answer>()
    const vendor: Vendor.Vendor = {
      name: "gated",
      mode: "sync",
      concurrency: 10,
      maxAttempts: 3,
      ...options,
      call: (request) =>
        Effect.gen(function* () {
          yield* Ref.update(calls, (n) => n + 1)
          yield* Deferred.succeed(started, undefined)
          const given = yield* Deferred.await(answer)
          if (given === "ok") return { _tag: "Completed", result: request.payload } as const
          const reason = given === "down" ? "Unavailable" : "Rejected"
          return yield* new Vendor.VendorError({ vendor: "gated", reason, message: given })
        })
    }
    const context = yield* Layer.build(layerEngine([vendor]))
    const store = Context.get(context, JobStore.JobStore)
    const queue = Context.get(context, JobQueue.JobQueue)
    const processor = Context.get(context, JobProcessor.JobProcessor)
    const submit = Effect.gen(function* () {
      const job = Job.makePending({ vendor: "gated", payload: { n: 1 }, now: new Date(0) })
      yield* store.create(job)
      return job.id
    })
    // A delivery of the job, as the queue would make one: a new entry, first delivered.
    const deliver = (id: Job.JobId) =>
      processor.process({ id: crypto.randomUUID(), vendor: "gated", jobId: id, deliveryCount: 1 })
    const read = (id: Job.JobId) => Effect.map(store.get(id), Option.getOrThrow)
    // What another attempt's claim does to the record: the version moves on.
    const takeOver = (id: Job.JobId) =>
      Effect.flatMap(read(id), (job) =>
        store.transition({
          id,
          from: "processing",
          to: "processing",
          expectedVersion: job.version,
          set: { attempts: job.attempts + 1 }
        })
      )
    const sweep = Sweeper.sweepOnce().pipe(Effect.provide(context))
    return { calls, started, answer, store, queue, submit, deliver, read, takeOver, sweep }
  })

describe("JobProcessor: one live attempt per job", () => {
  it.effect("a second delivery while the first attempt runs starts no call, however long the call takes", () =>
    Effect.gen(function* () {
      const t = yield* gated()
      const id = yield* t.submit
      const first = yield* Effect.forkChild(t.deliver(id))
      yield* Deferred.await(t.started)
      yield* t.deliver(id)
      // Far past the visibility timeout (30 s in memory): the attempt renewed its lease all along.
      yield* TestClock.adjust("11 minutes")
      yield* t.deliver(id)
      assert.strictEqual(yield* t.sweep, 0, "nothing overdue while the attempt renews")
      yield* Deferred.succeed(t.answer, "ok")
      yield* Fiber.join(first)
      const done = yield* t.read(id)
      assert.deepStrictEqual([done.status, done.attempts, yield* Ref.get(t.calls)], ["complete", 1, 1])
    }).pipe(Effect.scoped)
  )

  it.effect("attempts started at different times are all kept, by the worker's one renewal loop", () =>
    Effect.gen(function* () {
      const t = yield* gated()
      const [a, b] = [yield* t.submit, yield* t.submit]
      const first = yield* Effect.forkChild(t.deliver(a))
      yield* Deferred.await(t.started)
      // The second attempt's renewals fall due 20 s after the first's.
      yield* TestClock.adjust("20 seconds")
      const second = yield* Effect.forkChild(t.deliver(b))
      yield* TestClock.adjust("11 minutes")
      yield* t.deliver(a)
      yield* t.deliver(b)
      assert.strictEqual(yield* t.sweep, 0, "nothing overdue while the attempts renew")
      yield* Deferred.succeed(t.answer, "ok")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      const done = [yield* t.read(a), yield* t.read(b)].map((job) => [job.status, job.attempts])
      assert.deepStrictEqual(done, [
        ["complete", 1],
        ["complete", 1]
      ])
      assert.strictEqual(yield* Ref.get(t.calls), 2)
    }).pipe(Effect.scoped)
  )

  it.effect("an attempt that lost its job while it waited for its rate-limit slot does not call", () =>
    Effect.gen(function* () {
      const t = yield* gated({ rateLimit: { limit: 1, window: "1 minute" } })
      yield* Deferred.succeed(t.answer, "ok")
      yield* t.deliver(yield* t.submit)
      const id = yield* t.submit
      const waiting = yield* Effect.forkChild(t.deliver(id))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* t.read(id)).status, "processing", "claimed, waiting for its slot")
      yield* t.takeOver(id)
      yield* TestClock.adjust("2 minutes")
      yield* Fiber.join(waiting)
      assert.strictEqual(yield* Ref.get(t.calls), 1, "only the first job was called")
      assert.deepStrictEqual((yield* t.read(id)).attempts, 2, "left as the other attempt made it")
    }).pipe(Effect.scoped)
  )

  it.effect("an attempt fenced off mid-call neither retries, nor dead-letters, nor counts a failure", () =>
    Effect.gen(function* () {
      for (const given of ["down", "refused", "ok"] as const) {
        const t = yield* gated()
        const id = yield* t.submit
        const fenced = yield* Effect.forkChild(t.deliver(id))
        yield* Deferred.await(t.started)
        const taken = Option.getOrThrow(yield* t.takeOver(id))
        yield* Deferred.succeed(t.answer, given)
        yield* Fiber.join(fenced)
        assert.deepStrictEqual(yield* t.read(id), taken, `${given}: the record is the other attempt's`)
        assert.strictEqual(yield* t.queue.depth("gated"), 0, `${given}: nothing queued again`)
        assert.deepStrictEqual(yield* t.queue.deadLetters("gated"), [], `${given}: no dead letter`)
      }
    }).pipe(Effect.scoped)
  )

  it.effect("a stopping worker hands its job back only while it still holds it, and a begun call stays spent", () =>
    Effect.gen(function* () {
      const t = yield* gated()
      const held = yield* t.submit
      const running = yield* Effect.forkChild(t.deliver(held))
      yield* Deferred.await(t.started)
      yield* Fiber.interrupt(running)
      const back = yield* t.read(held)
      assert.deepStrictEqual([back.status, back.attempts], ["pending", 1])
      assert.strictEqual(yield* t.queue.depth("gated"), 1, "queued again once")

      const lost = yield* t.submit
      const fenced = yield* Effect.forkChild(t.deliver(lost))
      yield* TestClock.adjust("1 millis")
      const taken = Option.getOrThrow(yield* t.takeOver(lost))
      yield* Fiber.interrupt(fenced)
      assert.deepStrictEqual(yield* t.read(lost), taken)
      assert.strictEqual(yield* t.queue.depth("gated"), 1, "the fenced attempt queued nothing")
    }).pipe(Effect.scoped)
  )

  it.effect("the attempt limit counts calls per job, whatever queue entries led to them", () =>
    Effect.gen(function* () {
      const t = yield* gated({ maxAttempts: 3 })
      const id = yield* t.submit
      // Three attempts each began a call and their workers died: their leases ran out.
      const job = yield* t.read(id)
      yield* t.store.transition({
        id,
        from: "pending",
        to: "processing",
        expectedVersion: job.version,
        set: { attempts: 3, overdueAt: new Date(0).toISOString() }
      })
      // A fresh entry (say, the sweeper's), first delivered.
      yield* t.deliver(id)
      const failed = yield* t.read(id)
      assert.deepStrictEqual([failed.status, failed.attempts, failed.error?.reason], ["failed", 3, "DeliveryLimit"])
      assert.strictEqual(yield* Ref.get(t.calls), 0)
      assert.deepStrictEqual(
        (yield* t.queue.deadLetters("gated")).map((letter) => letter.jobId),
        [id]
      )
    }).pipe(Effect.scoped)
  )
})

describe("JobProcessor: a call's outcome survives a store blip", () => {
  it.effect("the outcome's write is tried again while the store is away, so the vendor is not called again", () =>
    Effect.gen(function* () {
      const state = { down: false, calls: 0 }
      // The memory store, refusing transitions while `state.down` says so.
      const blinking = Layer.effect(
        JobStore.JobStore,
        Effect.map(JobStore.JobStore, (store) =>
          JobStore.JobStore.of({
            ...store,
            transition: (transition) =>
              Effect.suspend(() =>
                state.down
                  ? Effect.fail(new JobStore.JobStoreError({ reason: "Unavailable", message: "connection lost" }))
                  : store.transition(transition)
              )
          })
        )
      ).pipe(Layer.provide(JobStore.layerMemory))
      const vendor: Vendor.Vendor = {
        name: "blip",
        mode: "sync",
        concurrency: 1,
        // The store goes away while the vendor answers.
        call: (request) =>
          Effect.sync(() => {
            state.calls++
            state.down = true
            return { _tag: "Completed", result: request.payload } as const
          })
      }
      const context = yield* Layer.build(layerEngine([vendor], {}, JobQueue.layerMemory, blinking))
      const store = Context.get(context, JobStore.JobStore)
      const processor = Context.get(context, JobProcessor.JobProcessor)
      const job = Job.makePending({ vendor: "blip", payload: { n: 1 }, now: new Date(0) })
      yield* store.create(job)
      const running = yield* Effect.forkChild(
        processor.process({ id: "1-0", vendor: "blip", jobId: job.id, deliveryCount: 1 })
      )
      yield* TestClock.adjust("3 seconds")
      state.down = false
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(running)
      const done = Option.getOrThrow(yield* store.get(job.id))
      assert.deepStrictEqual([done.status, done.attempts, state.calls], ["complete", 1, 1])
    }).pipe(Effect.scoped)
  )
})

describe("JobProcessor: a call's outcome survives a shutdown", () => {
  it.effect("a worker stopped once its vendor answered stores the answer, and the vendor is not called again", () =>
    Effect.gen(function* () {
      const storing = yield* Deferred.make<void>()
      const stored = yield* Deferred.make<void>()
      let completions = 0
      // The memory store, whose write of a result waits until the test lets it through.
      const slow = Layer.effect(
        JobStore.JobStore,
        Effect.map(JobStore.JobStore, (store) =>
          JobStore.JobStore.of({
            ...store,
            transition: (transition) => {
              if (transition.to === "complete") completions++
              return transition.to === "complete"
                ? Deferred.succeed(storing, undefined).pipe(
                    Effect.andThen(Deferred.await(stored)),
                    Effect.andThen(store.transition(transition))
                  )
                : store.transition(transition)
            }
          })
        )
      ).pipe(Layer.provide(JobStore.layerMemory))
      const { vendor, calls } = echoVendor("answered")
      const context = yield* Layer.build(layerEngine([vendor], {}, JobQueue.layerMemory, slow))
      const store = Context.get(context, JobStore.JobStore)
      const queue = Context.get(context, JobQueue.JobQueue)
      const processor = Context.get(context, JobProcessor.JobProcessor)
      const job = Job.makePending({ vendor: "answered", payload: { n: 1 }, now: new Date(0) })
      yield* store.create(job)
      const running = yield* Effect.forkChild(
        processor.process({ id: "1-0", vendor: "answered", jobId: job.id, deliveryCount: 1 })
      )
      // The vendor has answered and the answer is being stored when the worker is told to stop.
      yield* Deferred.await(storing)
      running.interruptUnsafe()
      yield* Deferred.succeed(stored, undefined)
      yield* Fiber.await(running)
      const done = Option.getOrThrow(yield* store.get(job.id))
      assert.deepStrictEqual([done.status, done.attempts, calls()], ["complete", 1, 1])
      assert.strictEqual(yield* queue.depth("answered"), 0, "not queued again")
      assert.strictEqual(completions, 1, "the stop left the stored attempt alone: one write, not two")
    }).pipe(Effect.scoped)
  )
})

describe("JobProcessor: a worker stopped after its vendor answered", () => {
  // The engine over `vendor`, with one of the limiter's steps after the call (letting its
  // in-flight slot go, or hearing of a 429) held until the test lets it through; the worker is
  // told to stop while it is held. Returns the job as it ends up and the queue.
  const stoppedWhile = (vendor: Vendor.Vendor, held: "releasing its slot" | "reporting a 429") =>
    Effect.gen(function* () {
      const reached = yield* Deferred.make<void>()
      const go = yield* Deferred.make<void>()
      const hold = Deferred.succeed(reached, undefined).pipe(Effect.andThen(Deferred.await(go)))
      const backends = yield* Layer.build(layerBackends([vendor]))
      const limiter = Context.get(backends, RateLimiter.RateLimiter)
      const slow = RateLimiter.RateLimiter.of(
        held === "releasing its slot"
          ? { ...limiter, withSlot: (name, max, effect) => limiter.withSlot(name, max, Effect.ensuring(effect, hold)) }
          : { ...limiter, limited: (name, options) => Effect.andThen(hold, limiter.limited(name, options)) }
      )
      const processor = yield* JobProcessor.make({ webhookBaseUrl: "http://127.0.0.1" }).pipe(
        Effect.provide(Context.add(backends, RateLimiter.RateLimiter, slow))
      )
      const store = Context.get(backends, JobStore.JobStore)
      const job = Job.makePending({ vendor: vendor.name, payload: { n: 1 }, now: new Date(0) })
      yield* store.create(job)
      const running = yield* Effect.forkChild(
        processor.process({ id: "1-0", vendor: vendor.name, jobId: job.id, deliveryCount: 1 })
      )
      yield* Deferred.await(reached)
      running.interruptUnsafe()
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.await(running)
      return {
        job: Option.getOrThrow(yield* store.get(job.id)),
        queue: Context.get(backends, JobQueue.JobQueue)
      }
    })

  it.effect("an answer not yet stored is stored, and the vendor is not called again", () =>
    Effect.gen(function* () {
      const { vendor, calls } = echoVendor("capped")
      const { job, queue } = yield* stoppedWhile({ ...vendor, maxInFlight: 1 }, "releasing its slot")
      assert.deepStrictEqual([job.status, job.attempts, calls()], ["complete", 1, 1])
      assert.strictEqual(yield* queue.depth("capped"), 0, "not queued again")
    }).pipe(Effect.scoped)
  )

  it.effect("an error answer fails the job as it says, rather than handing the job back", () =>
    Effect.gen(function* () {
      const refusing: Vendor.Vendor = {
        name: "refusing",
        mode: "sync",
        concurrency: 1,
        maxInFlight: 1,
        call: () => Effect.fail(new Vendor.VendorError({ vendor: "refusing", reason: "Rejected", message: "no" }))
      }
      const { job, queue } = yield* stoppedWhile(refusing, "releasing its slot")
      assert.deepStrictEqual([job.status, job.error?.reason], ["failed", "Rejected"])
      assert.strictEqual(yield* queue.depth("refusing"), 0, "not queued again")
    }).pipe(Effect.scoped)
  )

  it.effect("a 429 retries the job after its Retry-After, rather than handing it back at once", () =>
    Effect.gen(function* () {
      const limited: Vendor.Vendor = {
        name: "limited",
        mode: "sync",
        concurrency: 1,
        rateLimit: { limit: 10, window: "1 second" },
        call: () =>
          Effect.fail(
            new Vendor.VendorError({
              vendor: "limited",
              reason: "RateLimited",
              message: "429",
              retryAfterMillis: 30_000
            })
          )
      }
      const { job } = yield* stoppedWhile(limited, "reporting a 429")
      assert.deepStrictEqual(
        [job.status, job.error?.reason, job.nextRetryAt],
        ["pending", "RateLimited", new Date(30_000).toISOString()]
      )
    }).pipe(Effect.scoped)
  )
})

describe("JobProcessor and a store that refuses a write for good", () => {
  // The memory store, refusing every transition into `refused` (and so every claim, when that is
  // `processing`) as a store refuses a result too large for a document, a validator's veto or
  // missing privileges.
  const refusingStore = (refused: Job.JobStatus) =>
    Layer.effect(
      JobStore.JobStore,
      Effect.map(JobStore.makeMemory, (store) => {
        const transition = (change: JobStore.Transition) =>
          change.to === refused
            ? Effect.fail(new JobStore.JobStoreError({ reason: "Rejected", message: `MongoDB: refusing ${change.to}` }))
            : store.transition(change)
        return JobStore.JobStore.of({
          ...store,
          transition,
          claim: JobStore.claimVia({ get: store.get, transition })
        })
      })
    )

  const cases = [
    ["its result", "complete", 1],
    ["its claim", "processing", 0]
  ] as const
  it.effect.each(cases)(
    "refusing %s: the job fails with the store's reason, is dead-lettered, and the vendor is not called again",
    ([_, refused, expectedCalls]) =>
      Effect.gen(function* () {
        const { calls, vendor } = yield* scripted
        const context = yield* Layer.build(
          JobProcessor.layer({ webhookBaseUrl: "http://127.0.0.1" }).pipe(
            Layer.provideMerge(Layer.merge(layerBackends([vendor]), refusingStore(refused)))
          )
        )
        const store = Context.get(context, JobStore.JobStore)
        const queue = Context.get(context, JobQueue.JobQueue)
        const processor = Context.get(context, JobProcessor.JobProcessor)
        const job = Job.makePending({ vendor: vendor.name, payload: {}, now: new Date() })
        yield* store.create(job)
        // Delivered twice, as a redelivery or a sweep would: the second run finds the job failed.
        for (let round = 0; round < 2; round++) {
          yield* queue.enqueue(vendor.name, job.id)
          const deliveries = yield* queue.take(vendor.name, { max: 10, block: 0 })
          yield* Effect.forEach(deliveries, processor.process, { discard: true })
        }
        const failed = (yield* store.get(job.id)).pipe(Option.getOrThrow)
        assert.deepStrictEqual([failed.status, failed.error?.reason], ["failed", "StoreRejected"])
        assert.include(failed.error?.message, `refusing ${refused}`)
        assert.deepStrictEqual(
          (yield* queue.deadLetters(vendor.name)).map((letter) => letter.jobId),
          [job.id]
        )
        assert.strictEqual(yield* Ref.get(calls), expectedCalls)
      }).pipe(Effect.scoped)
  )
})

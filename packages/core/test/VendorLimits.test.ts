/**
 * The engine keeps a vendor's limits across workers: three job processors ("workers"), each with
 * its own limiter, over one store, queue and rate-limit store. Real clock; guarantees, not speeds
 * (those are in `npm run bench`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Layer } from "effect"
import * as Cleaner from "../src/Cleaner.ts"
import * as Job from "../src/Job.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobStore from "../src/JobStore.ts"
import * as RateLimiter from "../src/RateLimiter.ts"
import * as RateLimitStore from "../src/RateLimitStore.ts"
import * as Vendor from "../src/Vendor.ts"
import * as VendorCircuit from "../src/VendorCircuit.ts"
import * as VendorRegistry from "../src/VendorRegistry.ts"

// Three workers sharing one backend; `run` submits `jobs` jobs and has the workers process them
// all, each worker taking what it can and running its deliveries at once.
const workers = (vendor: Vendor.Vendor) =>
  Effect.gen(function* () {
    const shared = yield* Layer.build(
      Layer.mergeAll(JobStore.layerMemory, JobQueue.layerMemory, RateLimitStore.layerMemory)
    )
    const worker = Layer.build(
      JobProcessor.layer({ webhookBaseUrl: "http://127.0.0.1" }).pipe(
        Layer.provide(
          Layer.mergeAll(
            RateLimiter.layer,
            Cleaner.layer,
            VendorCircuit.layerMemory({ failures: 1000 }),
            Layer.effect(VendorRegistry.VendorRegistry, VendorRegistry.make([vendor]))
          )
        ),
        Layer.provide(Layer.succeedContext(shared))
      )
    ).pipe(Effect.map(Context.get(JobProcessor.JobProcessor)))
    const processors = [yield* worker, yield* worker, yield* worker]
    const store = Context.get(shared, JobStore.JobStore)
    const queue = Context.get(shared, JobQueue.JobQueue)
    const run = (jobs: number) =>
      Effect.gen(function* () {
        for (let n = 0; n < jobs; n++) {
          const job = Job.makePending({ vendor: vendor.name, payload: { n }, now: new Date() })
          yield* store.create(job)
          yield* queue.enqueue(vendor.name, job.id)
        }
        const taken = yield* Effect.forEach(processors, () =>
          queue.take(vendor.name, { max: Math.ceil(jobs / 3), block: 0 })
        )
        yield* Effect.forEach(
          taken.flatMap((deliveries, i) => deliveries.map((delivery) => [processors[i]!, delivery] as const)),
          ([processor, delivery]) => processor.process(delivery),
          { concurrency: "unbounded", discard: true }
        )
      })
    return { run }
  })

const ok = (request: Vendor.VendorRequest): Vendor.VendorOutcome => ({ _tag: "Completed", result: request.payload })

describe("vendor limits across workers", () => {
  it.live("never more calls in flight than the vendor's cap, whatever the workers' concurrency", () =>
    Effect.gen(function* () {
      let running = 0
      let most = 0
      let calls = 0
      const vendor: Vendor.Vendor = {
        name: "capped",
        mode: "sync",
        concurrency: 20,
        maxInFlight: 3,
        call: (request) =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              calls++
              most = Math.max(most, ++running)
            }),
            () => Effect.as(Effect.sleep("10 millis"), ok(request)),
            () => Effect.sync(() => running--)
          )
      }
      yield* (yield* workers(vendor)).run(30)
      assert.strictEqual(calls, 30)
      assert.isAtMost(most, 3)
    })
  )

  it.live("a 429 pauses the vendor for every worker until its Retry-After", () =>
    Effect.gen(function* () {
      const calledAt: Array<number> = []
      const vendor: Vendor.Vendor = {
        name: "pausing",
        mode: "sync",
        concurrency: 5,
        rateLimit: { limit: 1000, window: "1 second" },
        maxAttempts: 1,
        call: (request) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            calledAt.push(now)
            return calledAt.length === 1
              ? Effect.fail(
                  new Vendor.VendorError({
                    vendor: "pausing",
                    reason: "RateLimited",
                    message: "429",
                    retryAfterMillis: 400
                  })
                )
              : Effect.succeed(ok(request))
          })
      }
      const { run } = yield* workers(vendor)
      yield* run(1)
      yield* run(6)
      const [refused = 0, ...later] = calledAt
      assert.strictEqual(later.length, 6)
      for (const at of later) assert.isAtLeast(at - refused, 400 - 5)
    })
  )

  it.live("a learned limit never passes its configured ceiling, whatever the vendor advertises", () =>
    Effect.gen(function* () {
      const calledAt: Array<number> = []
      const vendor: Vendor.Vendor = {
        name: "advertising",
        mode: "sync",
        concurrency: 20,
        rateLimit: { limit: 10, window: "1 second", learn: true },
        call: (request) =>
          Effect.gen(function* () {
            calledAt.push(yield* Clock.currentTimeMillis)
            // What `sendJson` does with every answer's headers: this vendor says 1000 a second.
            const hear = yield* Vendor.AnswerHeaders
            hear?.({ "ratelimit-policy": `"default";q=1000;w=1` })
            return ok(request)
          })
      }
      yield* (yield* workers(vendor)).run(24)
      const at = calledAt.sort((a, b) => a - b)
      const busiest = Math.max(...at.map((start) => at.filter((t) => t >= start && t < start + 1000).length))
      assert.strictEqual(at.length, 24)
      assert.isAtMost(busiest, 10)
    })
  )
})

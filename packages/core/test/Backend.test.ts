import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Backend from "../src/Backend.ts"
import * as Health from "../src/Health.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobStore from "../src/JobStore.ts"

// A rest whose health has one check, so that the order of the checks shows.
const rest = Backend.make(
  "rest",
  Layer.merge(Backend.memory.layer, Health.layer([{ name: "rest", check: Effect.void }]))
)

describe("Backend", () => {
  it.effect("withJobStore: the store's jobs, the rest's queue, and both health checks, the store's first", () =>
    Effect.gen(function* () {
      let builds = 0
      const created: Array<string> = []
      // A memory store that says which jobs went to it, built once however many services it backs.
      const store = Layer.effect(
        JobStore.JobStore,
        Effect.map(JobStore.makeMemory, (memory) => {
          builds++
          return JobStore.JobStore.of({
            ...memory,
            create: (job) =>
              Effect.andThen(
                Effect.sync(() => created.push(job.id)),
                memory.create(job)
              )
          })
        })
      )
      const backend = Backend.withJobStore(rest, {
        name: "store",
        layer: Health.layerAdding(Effect.succeed({ name: "store", check: Effect.void })).pipe(Layer.provideMerge(store))
      })
      assert.strictEqual(backend.name, "store+rest")
      const job = Job.makePending({ vendor: "v", payload: {}, now: new Date(0) })
      const seen = yield* Effect.gen(function* () {
        yield* (yield* JobStore.JobStore).create(job)
        const stored = yield* (yield* JobStore.JobStore).get(job.id)
        const depth = yield* (yield* JobQueue.JobQueue).depth("v")
        const report = yield* Health.report
        return { stored: stored._tag, depth, checks: Object.keys(report.checks) }
      }).pipe(Effect.provide(backend.layer))
      assert.deepStrictEqual(seen, { stored: "Some", depth: 0, checks: ["store", "rest"] })
      assert.deepStrictEqual(created, [job.id])
      assert.strictEqual(builds, 1)
    })
  )
})

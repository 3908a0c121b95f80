/**
 * A job's trace: the worker's spans for it, and a webhook's completion of it, are children of the
 * span that submitted it, through the job record's `traceparent`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Tracer } from "effect"
import * as Api from "../src/Api.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobService from "../src/JobService.ts"
import type * as Vendor from "../src/Vendor.ts"
import { layerEngine } from "./support/Engine.ts"

const echo: Vendor.Vendor = {
  name: "echo",
  mode: "sync",
  concurrency: 1,
  call: (request) =>
    Effect.succeed<Vendor.VendorOutcome>({ _tag: "Completed", result: request.payload }).pipe(
      Effect.withSpan("echo.call")
    )
}

const recorded: Array<Tracer.NativeSpan> = []
const Recording = Layer.succeed(
  Tracer.Tracer,
  Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      recorded.push(span)
      return span
    }
  })
)

const named = (name: string) => {
  const span = recorded.find((candidate) => candidate.name === name)
  assert.isDefined(span, `a ${name} span`)
  return span!
}

describe("tracing", () => {
  it.effect("the worker's spans for a job join the trace of the span that submitted it", () =>
    Effect.gen(function* () {
      const jobs = yield* JobService.JobService
      const queue = yield* JobQueue.JobQueue
      const processor = yield* JobProcessor.JobProcessor
      const job = yield* jobs.submit({ payload: { n: 1 }, vendor: "echo" })
      const submitted = named("JobService.submit")
      assert.strictEqual(job.traceparent, `00-${submitted.traceId}-${submitted.spanId}-01`)
      assert.strictEqual(Api.toJobView(job).trace_id, submitted.traceId)

      // The worker runs in a trace of its own (the consumer's); the job's trace wins.
      const [delivery] = yield* queue.take("echo", { max: 1, block: 0 })
      const consumers = Tracer.externalSpan({ traceId: "f".repeat(32), spanId: "e".repeat(16) })
      yield* processor.process(delivery!).pipe(Effect.withParentSpan(consumers))
      const processed = named("JobProcessor.process")
      assert.strictEqual(processed.traceId, submitted.traceId)
      assert.strictEqual(Option.getOrUndefined(processed.parent)?.spanId, submitted.spanId)
      assert.strictEqual(named("echo.call").traceId, submitted.traceId)
    }).pipe(Effect.provide(JobService.layer.pipe(Layer.provideMerge(layerEngine([echo])))), Effect.provide(Recording))
  )
})

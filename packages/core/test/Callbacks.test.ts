/**
 * An async vendor's callbacks against the engine: a correctly signed callback for the job's current
 * run is applied whenever the job still waits for the vendor, pending or processing, and a success
 * means the job holds its data; its signature is spent only once it was applied; a callback from
 * before an operator's retry is refused.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Layer, Option, Ref, Schema } from "effect"
import * as Job from "../src/Job.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobService from "../src/JobService.ts"
import * as JobStore from "../src/JobStore.ts"
import type * as Vendor from "../src/Vendor.ts"
import * as VendorDefinition from "../src/VendorDefinition.ts"
import * as WebhookSignature from "../src/WebhookSignature.ts"
import { layerEngine } from "./support/Engine.ts"

const secret = "vendor-secret"

const Hook = Schema.Struct({ job_id: Schema.String, data: Schema.Json })

// An async vendor that accepts every call and remembers the webhook URL of each.
const acceptingVendor = Effect.gen(function* () {
  const calls = yield* Ref.make<ReadonlyArray<Vendor.VendorRequest>>([])
  const vendor: Vendor.Vendor = {
    name: "echo",
    mode: "async",
    concurrency: 1,
    maxAttempts: 3,
    call: (request) =>
      Effect.as(
        Ref.update(calls, (all) => [...all, { ...request, webhookUrl: request.webhookUrl }]),
        { _tag: "Accepted" } as const
      ),
    parseWebhook: VendorDefinition.webhookParser(
      { schema: Hook, jobId: (hook) => hook.job_id, result: (hook) => hook.data },
      { vendor: "echo", secret }
    )
  }
  return { vendor, calls }
})

const setUp = Effect.gen(function* () {
  const { vendor, calls } = yield* acceptingVendor
  const context = yield* Layer.build(layerEngine([vendor]))
  const store = Context.get(context, JobStore.JobStore)
  const queue = Context.get(context, JobQueue.JobQueue)
  const processor = Context.get(context, JobProcessor.JobProcessor)
  // The store as the webhook sees it: `down` makes its writes fail as an outage does.
  const down = yield* Ref.make(false)
  const flakyStore = JobStore.JobStore.of({
    ...store,
    transition: (transition) =>
      Effect.flatMap(Ref.get(down), (isDown) =>
        isDown
          ? Effect.fail(new JobStore.JobStoreError({ reason: "Unavailable", message: "store down" }))
          : store.transition(transition)
      )
  })
  const jobs = yield* JobService.make.pipe(
    Effect.provideService(JobStore.JobStore, flakyStore),
    Effect.provide(context)
  )
  const submit = Effect.map(jobs.submit({ payload: { q: 1 }, vendor: "echo" }), (job) => job.id)
  const work = Effect.gen(function* () {
    const deliveries = yield* queue.take("echo", { max: 100, block: 0 })
    yield* Effect.forEach(deliveries, processor.process, { discard: true })
    return deliveries.length
  })
  const read = (id: Job.JobId) => Effect.map(store.get(id), Option.getOrThrow)
  const callCount = Effect.map(Ref.get(calls), (all) => all.length)
  // The vendor's n-th call's callback (from 1), signed now, carrying `data`.
  const callback = Effect.fnUntraced(function* (n: number, data: Schema.Json) {
    const call = (yield* Ref.get(calls))[n - 1]
    if (call === undefined) return yield* Effect.die(new Error(`no call ${n}`))
    const body = JSON.stringify({ job_id: call.jobId, data })
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const request: Vendor.WebhookRequest = {
      headers: { [WebhookSignature.header]: WebhookSignature.sign({ secret, body, timestamp }) },
      body,
      callbackToken: WebhookSignature.callbackTokenOf(call.webhookUrl)
    }
    return request
  })
  const deliver = (request: Vendor.WebhookRequest) => jobs.receiveWebhook("echo", request)
  // The callback deadline has passed: the sweeper hands the job to `expire`, which resubmits it.
  const deadline = (id: Job.JobId) => Effect.flatMap(read(id), processor.expire)
  return { jobs, submit, work, read, callCount, callback, deliver, deadline, down }
})

describe("callbacks", () => {
  it.effect(
    "a callback that arrives while its job is queued to be sent again is applied; the queued delivery calls no one",
    () =>
      Effect.gen(function* () {
        const t = yield* setUp
        const id = yield* t.submit
        yield* t.work
        yield* t.deadline(id)
        assert.deepInclude(yield* t.read(id), { status: "pending", attempts: 1 }, "resubmitted, queued")
        const answered = yield* t.deliver(yield* t.callback(1, { answer: "first call" }))
        assert.deepInclude(answered, { status: "complete", result: { answer: "first call" } })
        assert.deepInclude(yield* t.read(id), { status: "complete", result: { answer: "first call" } })
        assert.strictEqual(yield* t.work, 1, "the queued delivery was taken")
        assert.strictEqual(yield* t.callCount, 1, "and called no vendor")
        assert.strictEqual((yield* t.read(id)).status, "complete")
      })
  )

  it.effect("a callback from an earlier call of the run completes the job while a later call waits", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const id = yield* t.submit
      yield* t.work
      yield* t.deadline(id)
      yield* t.work
      assert.deepInclude(yield* t.read(id), { status: "processing", attempts: 2, awaitingCallback: true })
      yield* t.deliver(yield* t.callback(1, { answer: "first call" }))
      assert.deepInclude(yield* t.read(id), { status: "complete", result: { answer: "first call" } })
      // The second call's callback comes too: the job is complete, so it is answered as it is.
      const second = yield* t.deliver(yield* t.callback(2, { answer: "second call" }))
      assert.deepInclude(second, { status: "complete", result: { answer: "first call" } })
      assert.strictEqual(yield* t.callCount, 2)
    })
  )

  it.effect("a callback that failed to store is applied when the vendor sends the same bytes again", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const id = yield* t.submit
      yield* t.work
      const request = yield* t.callback(1, { answer: 42 })
      yield* Ref.set(t.down, true)
      const outage = yield* Effect.exit(t.deliver(request))
      assert.isTrue(Exit.isFailure(outage), "not answered with success while the store is down")
      yield* Ref.set(t.down, false)
      assert.deepInclude(yield* t.deliver(request), { status: "complete", result: { answer: 42 } })
      // Applied: the same bytes once more are a replay.
      const replay = yield* Effect.flip(t.deliver(request))
      assert.deepInclude(replay, { _tag: "WebhookError", reason: "Replayed" })
      assert.deepInclude(yield* t.read(id), { status: "complete", result: { answer: 42 } })
    })
  )

  it.effect("a callback from before an operator's retry is refused; the retried run completes with its own", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const id = yield* t.submit
      // Three calls, no callback: past the attempt limit the job fails.
      for (let i = 0; i < 3; i++) {
        yield* t.work
        yield* t.deadline(id)
      }
      assert.deepInclude(yield* t.read(id), { status: "failed", attempts: 3, run: 1 })
      // The failed job is not waiting any more: a late callback is not thanked.
      const late = yield* t.callback(3, { answer: "run 1" })
      assert.deepInclude(yield* Effect.flip(t.deliver(late)), { _tag: "CallbackNotApplied" })
      yield* t.jobs.retry(id)
      assert.deepInclude(yield* t.read(id), { status: "pending", attempts: 0, run: 2 })
      yield* t.work
      assert.deepInclude(yield* t.read(id), { status: "processing", attempts: 1, run: 2 })
      // Run 1's callbacks, first call's and last's: its tokens are of a run that is over.
      for (const n of [1, 3]) {
        const refused = yield* Effect.flip(t.deliver(yield* t.callback(n, { answer: "run 1" })))
        assert.deepInclude(refused, { _tag: "CallbackNotApplied" })
      }
      assert.deepInclude(yield* t.read(id), { status: "processing", attempts: 1, run: 2 })
      yield* t.deliver(yield* t.callback(4, { answer: "run 2" }))
      assert.deepInclude(yield* t.read(id), { status: "complete", result: { answer: "run 2" } })
    })
  )
})

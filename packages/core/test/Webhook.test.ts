/**
 * Receiving a callback (`Webhook`), step by step: the vendor named in the URL, the adapter's parse,
 * the job, the URL's token, the data applied; a refusal at any step stores nothing and leaves the
 * signed bytes to be sent again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Cleaner from "../src/Cleaner.ts"
import * as Job from "../src/Job.ts"
import * as JobStore from "../src/JobStore.ts"
import type * as Vendor from "../src/Vendor.ts"
import * as VendorDefinition from "../src/VendorDefinition.ts"
import * as VendorRegistry from "../src/VendorRegistry.ts"
import * as Webhook from "../src/Webhook.ts"
import * as WebhookSignature from "../src/WebhookSignature.ts"

const secret = "vendor-secret"

const Hook = Schema.Struct({ job_id: Schema.String, data: Schema.Json })

// An async vendor of this name whose callbacks are signed with `secret`.
const asyncVendor = (name: string): Vendor.Vendor => ({
  name,
  mode: "async",
  concurrency: 1,
  call: () => Effect.succeed({ _tag: "Accepted" }),
  parseWebhook: VendorDefinition.webhookParser(
    { schema: Hook, jobId: (hook) => hook.job_id, result: (hook) => hook.data },
    { vendor: name, secret }
  )
})

const syncVendor: Vendor.Vendor = {
  name: "plain",
  mode: "sync",
  concurrency: 1,
  call: () => Effect.succeed({ _tag: "Completed", result: {} })
}

const setUp = Effect.gen(function* () {
  const context = yield* Layer.build(
    Layer.mergeAll(
      JobStore.layerMemory,
      Cleaner.layer,
      Layer.effect(
        VendorRegistry.VendorRegistry,
        VendorRegistry.make([asyncVendor("echo"), asyncVendor("other"), syncVendor])
      )
    )
  )
  const store = Context.get(context, JobStore.JobStore)
  const receive = yield* Effect.provide(Webhook.make, context)
  const callbackSecret = Redacted.value(yield* WebhookSignature.callbackSecret)
  // A job of `vendor` waiting for its callback (pending: queued to be sent again).
  const submit = (vendor: string) =>
    Effect.gen(function* () {
      const job = Job.makePending({ vendor, payload: { q: 1 }, now: new Date(yield* Clock.currentTimeMillis) })
      yield* store.create(job)
      return job
    })
  // The URL the worker hands the vendor for `job`, as the engine makes it.
  const urlFor = (job: Job.Job, base = "http://127.0.0.1:8000") =>
    Webhook.callbackUrl({ base, vendor: job.vendor, secret: callbackSecret, jobId: job.id, run: job.run })
  // The vendor's callback for `job` carrying `data`, signed now, posted to `url`.
  const callback = (job: Job.Job, data: Schema.Json, url: string = urlFor(job)) =>
    Effect.map(Clock.currentTimeMillis, (now): Vendor.WebhookRequest => {
      const body = JSON.stringify({ job_id: job.id, data })
      const timestamp = Math.floor(now / 1000)
      return {
        headers: { [WebhookSignature.header]: WebhookSignature.sign({ secret, body, timestamp }) },
        body,
        callbackToken: WebhookSignature.callbackTokenOf(url)
      }
    })
  const read = (job: Job.Job) => Effect.map(store.get(job.id), Option.getOrThrow)
  return { receive, submit, urlFor, callback, read }
})

describe("Webhook", () => {
  it.effect("the URL the worker hands out is the vendor's webhook with the token the receiver accepts", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const job = yield* t.submit("echo")
      const url = t.urlFor(job, "https://api.example.com/base")
      assert.match(url, /^https:\/\/api\.example\.com\/base\/vendor-webhook\/echo\?token=1\.[A-Za-z0-9_-]{43}$/)
      const settled = yield* t.receive("echo", yield* t.callback(job, { answer: 42 }, url))
      assert.deepInclude(settled, { status: "complete", result: { answer: 42 } })
      assert.deepInclude(yield* t.read(job), { status: "complete", result: { answer: 42 } })
    })
  )

  it.effect("a callback through another vendor's webhook is not found, and leaves its job waiting", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const job = yield* t.submit("echo")
      const refused = yield* Effect.flip(t.receive("other", yield* t.callback(job, { answer: 1 })))
      assert.deepInclude(refused, { _tag: "JobNotFound", id: job.id })
      assert.strictEqual((yield* t.read(job)).status, "pending")
    })
  )

  it.effect("a vendor that takes no webhooks is UnknownVendor, naming those that do", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const job = yield* t.submit("echo")
      const refused = yield* Effect.flip(t.receive("plain", yield* t.callback(job, { answer: 1 })))
      assert.deepInclude(refused, { _tag: "UnknownVendor", vendor: "plain" })
      assert.deepStrictEqual(refused._tag === "UnknownVendor" ? refused.known : [], ["echo", "other"])
    })
  )

  it.effect("a callback without its token is refused and spends no signature: with the token it is applied", () =>
    Effect.gen(function* () {
      const t = yield* setUp
      const job = yield* t.submit("echo")
      const signed = yield* t.callback(job, { answer: 7 })
      const { callbackToken: _, ...withoutToken } = signed
      const refused = yield* Effect.flip(t.receive("echo", withoutToken))
      assert.deepInclude(refused, { _tag: "WebhookError", reason: "BadSignature" })
      assert.strictEqual((yield* t.read(job)).status, "pending", "nothing stored")
      assert.deepInclude(yield* t.receive("echo", signed), { status: "complete", result: { answer: 7 } })
      // Applied: now the same bytes are a replay.
      assert.deepInclude(yield* Effect.flip(t.receive("echo", signed)), { _tag: "WebhookError", reason: "Replayed" })
    })
  )
})

/**
 * What a sync vendor may send back, as the engine sees it over real HTTP: an answer nested far
 * deeper than JSON should be, one far larger than any answer should be, an error page full of PII,
 * and an adapter whose mapping returns what cannot be stored. Each fails its job with a reason after
 * one call; none is delivered again (which would call the vendor again), none leaks PII.
 */
import { assert, describe, it } from "@effect/vitest"
import { createServer, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Agent } from "undici"
import { ConfigProvider, Context, Effect, Layer, Option, Schema } from "effect"
import * as Cleaner from "../src/Cleaner.ts"
import * as Job from "../src/Job.ts"
import * as JobProcessor from "../src/JobProcessor.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as JobStore from "../src/JobStore.ts"
import * as Vendor from "../src/Vendor.ts"
import * as VendorDefinition from "../src/VendorDefinition.ts"
import { layerEngine } from "./support/Engine.ts"

// A vendor at 127.0.0.1 that answers each call as `answer` says, counting the calls.
const vendorServer = (answer: (response: ServerResponse) => void) =>
  Effect.gen(function* () {
    let calls = 0
    const server = createServer((request, response) => {
      calls++
      request.resume()
      request.on("end", () => answer(response))
    })
    yield* Effect.acquireRelease(
      Effect.promise(() => new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))),
      () => Effect.promise(() => new Promise((closed) => server.close(closed)))
    )
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent()),
      (agent) => Effect.promise(() => agent.close())
    )
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: () => calls, agent }
  })

const definition = (result: (answer: Schema.Json) => Schema.Json) =>
  VendorDefinition.defineVendor({
    name: "hostile",
    mode: "sync",
    url: "http://hostile.test",
    request: (call) => ({ body: call.payload }),
    response: Schema.Json,
    result
  })

// The engine over a sync vendor defined against the server, with `env` for its settings; runs
// one job and returns it as it ends, the vendor's calls, and the queue.
const runOne = (options: {
  readonly answer: (response: ServerResponse) => void
  readonly result?: ((answer: Schema.Json) => Schema.Json) | undefined
  readonly env?: Record<string, string> | undefined
}) =>
  Effect.gen(function* () {
    const server = yield* vendorServer(options.answer)
    const vendor = yield* VendorDefinition.fromConfig(definition(options.result ?? ((answer) => answer)), {
      url: server.url
    }).pipe(
      Effect.provideService(Vendor.HttpDispatcher, server.agent),
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(options.env ?? {})))
    )
    const context = yield* Layer.build(layerEngine([vendor]))
    const store = Context.get(context, JobStore.JobStore)
    const queue = Context.get(context, JobQueue.JobQueue)
    const processor = Context.get(context, JobProcessor.JobProcessor)
    const job = Job.makePending({ vendor: "hostile", payload: { q: 1 }, now: new Date() })
    yield* store.create(job)
    yield* queue.enqueue("hostile", job.id)
    const work = Effect.flatMap(queue.take("hostile", { max: 10, block: 0 }), (deliveries) =>
      Effect.as(Effect.forEach(deliveries, processor.process, { discard: true }), deliveries.length)
    )
    assert.strictEqual(yield* work, 1)
    assert.strictEqual(yield* work, 0, "nothing delivered again")
    const ended = Option.getOrThrow(yield* store.get(job.id))
    return { job: ended, calls: server.calls(), letters: yield* queue.deadLetters("hostile") }
  })

const json =
  (body: string, headers: Record<string, string> = {}) =>
  (response: ServerResponse) => {
    response.writeHead(200, { "content-type": "application/json", ...headers })
    response.end(body)
  }

const expectFailed = (
  outcome: Effect.Success<ReturnType<typeof runOne>>,
  reason: Vendor.VendorErrorReason,
  message: RegExp
) => {
  assert.strictEqual(outcome.job.status, "failed")
  assert.strictEqual(outcome.job.error?.reason, reason)
  assert.match(outcome.job.error?.message ?? "", message)
  assert.strictEqual(outcome.calls, 1, "the vendor was called once")
  assert.deepStrictEqual(
    outcome.letters.map((letter) => letter.jobId),
    [outcome.job.id]
  )
}

describe("hostile vendor data", () => {
  it.live("an answer nested 20,000 deep fails the job InvalidResponse after one call", () =>
    Effect.gen(function* () {
      const deep = `${"[".repeat(20_000)}1${"]".repeat(20_000)}`
      expectFailed(yield* runOne({ answer: json(deep) }), "InvalidResponse", /nested deeper than 64 levels/)
    })
  )

  it.live("an answer over 5 MiB fails the job InvalidResponse, declared or chunked", () =>
    Effect.gen(function* () {
      const huge = JSON.stringify({ filler: "x".repeat(Vendor.defaultMaxResponseBytes) })
      expectFailed(yield* runOne({ answer: json(huge) }), "InvalidResponse", /more than 5242880 bytes/)
      const chunked = (response: ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" })
        for (let i = 0; i < 6; i++) response.write(`${i === 0 ? '{"a":"' : ""}${"x".repeat(1024 * 1024)}`)
        response.end('"}')
      }
      expectFailed(yield* runOne({ answer: chunked }), "InvalidResponse", /more than 5242880 bytes/)
    })
  )

  it.live("VENDOR_<NAME>_MAX_RESPONSE_BYTES sets the limit", () =>
    Effect.gen(function* () {
      const answer = json(JSON.stringify({ filler: "x".repeat(2000) }))
      const env = { VENDOR_HOSTILE_MAX_RESPONSE_BYTES: "1000" }
      expectFailed(yield* runOne({ answer, env }), "InvalidResponse", /more than 1000 bytes/)
      assert.strictEqual((yield* runOne({ answer })).job.status, "complete")
    })
  )

  it.live("an error page's PII is cleaned before the job and its dead letter keep it", () =>
    Effect.gen(function* () {
      const page = (response: ServerResponse) => {
        response.writeHead(400, { "content-type": "text/plain" })
        response.end("account of jane.doe@example.com (555-123-4567) is closed")
      }
      const outcome = yield* runOne({ answer: page })
      expectFailed(outcome, "Rejected", /account of \[REDACTED\] \(\[REDACTED\]\) is closed/)
      for (const letter of outcome.letters) {
        assert.notInclude(letter.reason, "jane.doe@example.com")
        assert.include(letter.reason, Cleaner.redacted)
      }
    })
  )

  it.live("a mapping that returns what cannot be stored fails the job with why, not a redelivery", () =>
    Effect.gen(function* () {
      const cyclic: Record<string, Schema.Json> = {}
      cyclic["self"] = cyclic
      const outcome = yield* runOne({ answer: json("{}"), result: () => cyclic })
      expectFailed(outcome, "InvalidResponse", /could not be cleaned and stored: .*contains itself/)
    })
  )
})

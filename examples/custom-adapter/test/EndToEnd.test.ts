/**
 * A job routed to Acme Credit completes end to end when vendorflow loads this package by name
 * (`VENDORFLOW_ADAPTERS=@vendorflow/example-custom-adapter`): first in one process (the API, the
 * engine and the runtime's `Adapters` layer on memory backends), then as an operator runs it (the
 * `vendorflow-server` and `vendorflow-worker` processes sharing Redis, under a key prefix of the
 * test's own). Acme is the test's simulator.
 */
import { fileURLToPath } from "node:url"
import { Backend, Consumer, JobProcessor, JobService } from "@vendorflow/core"
import { ChildProcess } from "@vendorflow/core/testing"
import { RedisTest } from "@vendorflow/redis/testing"
import { Adapters, Backends } from "@vendorflow/runtime"
import { Server } from "@vendorflow/server"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schedule } from "effect"
import { HttpServer } from "effect/http"
import * as AcmeCreditSimulator from "./AcmeCreditSimulator.ts"

interface JobView {
  readonly status: string
  readonly vendor: string
  readonly result?: unknown
  readonly error?: unknown
}

const submitAndAwait = (api: string, payload: object) =>
  Effect.gen(function* () {
    const submitted = yield* Effect.promise(() =>
      fetch(`${api}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload)
      }).then((response) => response.json() as Promise<{ request_id: string }>)
    )
    return yield* Effect.promise(() =>
      fetch(`${api}/jobs/${submitted.request_id}`).then((response) => response.json() as Promise<JobView>)
    ).pipe(
      Effect.repeat({
        schedule: Schedule.spaced("20 millis"),
        until: (job) => job.status === "complete" || job.status === "failed"
      }),
      Effect.timeoutOrElse({
        duration: "10 seconds",
        orElse: () => Effect.die("the job did not finish within 10 seconds")
      })
    )
  })

// What Acme answered, as the client reads it: trimmed, with the tax id and e-mail redacted.
const assertCompleted = (job: JobView) => {
  assert.strictEqual(job.status, "complete", JSON.stringify(job.error))
  assert.strictEqual(job.vendor, "acme-credit")
  assert.deepInclude(job.result, {
    band: "B",
    applicant: { name: "Acme Corp Treasurer", tax_id: "[REDACTED]", email: "[REDACTED]" }
  })
}

const adapterEnv = (acmeUrl: string) => ({
  VENDORFLOW_ADAPTERS: "@vendorflow/example-custom-adapter",
  VENDOR_ACME_CREDIT_URL: acmeUrl,
  VENDOR_ACME_CREDIT_API_KEY: AcmeCreditSimulator.apiKey
})

describe("Acme Credit end to end", () => {
  it.live("in one process: the runtime loads the package by name and a job completes", () =>
    Effect.gen(function* () {
      const acme = yield* AcmeCreditSimulator.make()
      const engine = Consumer.layer().pipe(Layer.provide(JobProcessor.layer({ webhookBaseUrl: "http://127.0.0.1:9" })))
      const api = Server.layerWith({ port: 0, host: "127.0.0.1", logAddress: false }).pipe(
        Layer.provideMerge(JobService.layer)
      )
      const stack = engine.pipe(
        Layer.provideMerge(api),
        Layer.provideMerge(Backends.layerWith(Backend.memory)),
        Layer.provideMerge(Adapters.layer),
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(adapterEnv(acme.url))))
      )
      const job = yield* Effect.flatMap(HttpServer.HttpServer, (server) =>
        submitAndAwait(HttpServer.formatAddress(server.address), { vendor: "acme-credit", company: "Acme Corp" })
      ).pipe(Effect.provide(stack))
      assertCompleted(job)
      const [call] = yield* acme.requests
      assert.strictEqual(call?.headers["x-acme-key"], AcmeCreditSimulator.apiKey)
    })
  )
})

RedisTest.describeRedis("Acme Credit end to end, as deployed", ({ url, prefix }) => {
  it.live(
    "vendorflow-server and vendorflow-worker load the package by name",
    () =>
      Effect.gen(function* () {
        const acme = yield* AcmeCreditSimulator.make()
        const bin = (path: string) => fileURLToPath(new URL(`../../../packages/${path}`, import.meta.url))
        const shared = { ...adapterEnv(acme.url), REDIS_URL: url, REDIS_PREFIX: prefix }
        const server = yield* ChildProcess.start(bin("server/src/bin.ts"), { ...shared, PORT: "0" })
        const [, api = ""] = yield* server.waitFor(/Listening on (http:\/\/[^\s"]+)/)
        const worker = yield* ChildProcess.start(bin("worker/src/bin.ts"), { ...shared, PUBLIC_URL: api })
        yield* worker.waitFor(/vendorflow-worker: consuming/)
        assertCompleted(yield* submitAndAwait(api, { vendor: "acme-credit", company: "Acme Corp" }))
        assert.strictEqual(yield* worker.stop("SIGTERM"), 0)
        assert.strictEqual(yield* server.stop("SIGTERM"), 0)
      }),
    // Two processes start while the rest of the suite runs; their start-up alone can take seconds.
    60_000
  )
})

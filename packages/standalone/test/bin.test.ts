import { assert, describe, it } from "@effect/vitest"
import { ChildProcess } from "@vendorflow/core/testing"
import { Effect, Schedule } from "effect"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

describe("the process", () => {
  it.live("vendorflow (npm start's all-in-one process) runs a sync job to completion and exits 0 on SIGTERM", () =>
    Effect.gen(function* () {
      const all = yield* ChildProcess.start(bin, {
        PORT: "0",
        MOCK_SYNC_PORT: "0",
        MOCK_ASYNC_PORT: "0",
        MOCK_SYNC_LATENCY_MS: "0-20"
      })
      const [, url] = yield* all.waitFor(/at (http:\/\/\S+): API docs/)
      const submitted = yield* Effect.promise(() =>
        fetch(`${url}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"vendor":"sync"}'
        }).then((r) => r.json() as Promise<{ request_id: string }>)
      )
      const read = Effect.promise(() =>
        fetch(`${url}/jobs/${submitted.request_id}`).then((r) => r.json() as Promise<{ status: string }>)
      )
      const job = yield* read.pipe(
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (j) => j.status === "complete", times: 250 })
      )
      assert.strictEqual(job.status, "complete")
      assert.strictEqual(yield* all.stop("SIGTERM"), 0)
    })
  )
})

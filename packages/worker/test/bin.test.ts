import { assert, describe, it } from "@effect/vitest"
import { ChildProcess } from "@vendorflow/core/testing"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

describe("vendorflow-worker", () => {
  it.live("starts consuming and exits 0 on SIGTERM", () =>
    Effect.gen(function* () {
      const worker = yield* ChildProcess.start(bin)
      yield* worker.waitFor(/vendorflow-worker: consuming/)
      assert.strictEqual(yield* worker.stop("SIGTERM"), 0)
    })
  )

  it.live("exits 0 on SIGINT", () =>
    Effect.gen(function* () {
      const worker = yield* ChildProcess.start(bin)
      yield* worker.waitFor(/vendorflow-worker: consuming/)
      assert.strictEqual(yield* worker.stop("SIGINT"), 0)
    })
  )
})

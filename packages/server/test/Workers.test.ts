/**
 * Workers in `/health` and `/ready`: the live workers are listed; with `READY_MIN_WORKERS`,
 * readiness waits for that many.
 */
import { assert, layer } from "@effect/vitest"
import { Workers } from "@vendorflow/core"
import { Effect } from "effect"
import { HttpServer } from "effect/http"
import * as TestServerLayer from "./support/TestServer.ts"

const alpha = TestServerLayer.syncVendor("alpha")
const live = { excludeTestServices: true }

const getJson = (path: string) =>
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.promise(async () => {
      const response = await fetch(`${HttpServer.formatAddress(server.address)}${path}`)
      return { status: response.status, body: (await response.json()) as Record<string, unknown> }
    })
  )

layer(TestServerLayer.layer([alpha], { readyMinWorkers: 1 }), live)("READY_MIN_WORKERS=1", (it) => {
  it.effect("/ready is 503 until a worker beats, then 200; /health lists the live workers", () =>
    Effect.gen(function* () {
      const before = yield* getJson("/ready")
      assert.strictEqual(before.status, 503)
      assert.match(String(before.body["detail"]), /workers down/)
      assert.strictEqual((yield* getJson("/health")).status, 200)

      const workers = yield* Workers.Workers
      yield* workers.beat({ id: "w-1", vendors: ["alpha"], started_at: new Date().toISOString() })
      const ready = yield* getJson("/ready")
      assert.strictEqual(ready.status, 200)
      const health = yield* getJson("/health")
      const listed = health.body["workers"] as ReadonlyArray<{
        readonly id: string
        readonly vendors: ReadonlyArray<string>
      }>
      assert.deepStrictEqual(
        listed.map((beat) => [beat.id, beat.vendors]),
        [["w-1", ["alpha"]]]
      )

      yield* workers.leave("w-1")
      assert.strictEqual((yield* getJson("/ready")).status, 503)
    })
  )
})

layer(TestServerLayer.layer([alpha]), live)("READY_MIN_WORKERS unset", (it) => {
  it.effect("readiness does not wait for workers: an API without them still takes jobs", () =>
    Effect.gen(function* () {
      const ready = yield* getJson("/ready")
      assert.strictEqual(ready.status, 200)
      assert.deepStrictEqual(ready.body["workers"], [])
    })
  )
})

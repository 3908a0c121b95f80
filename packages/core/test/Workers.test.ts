import { assert, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { WorkersSuite } from "../src/testing/index.ts"
import * as Workers from "../src/Workers.ts"

WorkersSuite.suite("memory", Workers.layerMemory)

it.effect("a worker's heartbeat beats at once and every interval, and leaves when it stops", () =>
  Effect.gen(function* () {
    const workers = yield* Workers.Workers
    const alive = Effect.map(workers.alive, (beats) => beats.map((beat) => beat.id))
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(Workers.heartbeat({ id: "w1", vendors: ["sync"], interval: "5 seconds" }), scope)
    yield* TestClock.adjust("1 millis")
    assert.deepStrictEqual(yield* alive, ["w1"])
    // Its beats keep it alive well past one TTL.
    yield* TestClock.adjust("40 seconds")
    assert.deepStrictEqual(yield* alive, ["w1"])
    yield* Scope.close(scope, Exit.void)
    assert.deepStrictEqual(yield* alive, [])
  }).pipe(Effect.provide(Workers.layerMemory))
)

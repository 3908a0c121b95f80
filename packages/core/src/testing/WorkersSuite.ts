/**
 * The conformance suite every {@link Workers} registry runs: memory in core's tests, Redis in
 * `@vendorflow/redis`'s. Each test uses its own worker ids; the registry's clock is the test clock.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, type Layer } from "effect"
import { TestClock } from "effect/testing"
import { Workers } from "../Workers.ts"

const workerId = () => `worker-${crypto.randomUUID().slice(0, 8)}`
const started = new Date(0).toISOString()

/**
 * Registers the suite under `name`, against the registry `layer` builds (with the default TTL).
 *
 * @category suites
 */
export const suite = <E>(name: string, layer: Layer.Layer<Workers, E>): void => {
  describe(`Workers conformance: ${name}`, () => {
    it.layer(layer, { timeout: 30_000 })((it) => {
      it.effect("a worker that beat is alive with its vendors; one that left is not", () =>
        Effect.gen(function* () {
          const workers = yield* Workers
          const [a, b] = [workerId(), workerId()]
          yield* workers.beat({ id: a, vendors: ["sync"], started_at: started })
          yield* workers.beat({ id: b, vendors: ["sync", "async"], started_at: started })
          const alive = yield* workers.alive
          const mine = alive.filter((beat) => beat.id === a || beat.id === b)
          assert.deepStrictEqual(mine.map((beat) => beat.id).sort(), [a, b].sort())
          assert.deepStrictEqual(mine.find((beat) => beat.id === b)?.vendors, ["sync", "async"])
          yield* workers.leave(a)
          assert.deepStrictEqual(
            (yield* workers.alive).filter((beat) => beat.id === a || beat.id === b).map((beat) => beat.id),
            [b]
          )
          yield* workers.leave(b)
        })
      )

      it.effect("a worker silent past the TTL is not alive; its next beat brings it back", () =>
        Effect.gen(function* () {
          const workers = yield* Workers
          const id = workerId()
          yield* workers.beat({ id, vendors: [], started_at: started })
          yield* TestClock.adjust("14 seconds")
          assert.isTrue(
            (yield* workers.alive).some((beat) => beat.id === id),
            "within 15 s"
          )
          yield* TestClock.adjust("2 seconds")
          assert.isFalse(
            (yield* workers.alive).some((beat) => beat.id === id),
            "16 s silent"
          )
          yield* workers.beat({ id, vendors: [], started_at: started })
          const back = (yield* workers.alive).find((beat) => beat.id === id)
          assert.strictEqual(back?.last_seen, new Date(yield* Clock.currentTimeMillis).toISOString())
          yield* workers.leave(id)
        })
      )
    })
  })
}

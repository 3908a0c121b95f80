/**
 * The process-local view of a shared circuit breaker store: what reaches the store, and when an
 * opening is seen, counted on a memory store standing in for Redis.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { TestClock } from "effect/testing"
import * as VendorCircuit from "../src/VendorCircuit.ts"

// The shared store, and a view of it for each of `processes`, with the store calls each view made.
const shared = (processes: number) =>
  Effect.gen(function* () {
    const store = yield* CircuitBreaker.CircuitBreakerStore
    return yield* Effect.forEach(Array.from({ length: processes }), () =>
      Effect.gen(function* () {
        const calls = { admit: 0, record: 0 }
        const counted: CircuitBreaker.CircuitBreakerStore["Service"] = {
          admit: (key) => Effect.suspend(() => (calls.admit++, store.admit(key))),
          record: (options) => Effect.suspend(() => (calls.record++, store.record(options))),
          state: store.state
        }
        const breaker = yield* CircuitBreaker.make({
          tripPolicy: CircuitBreaker.consecutive(3),
          openDuration: "5 seconds"
        }).pipe(Effect.provideService(CircuitBreaker.CircuitBreakerStore, VendorCircuit.withLocalView(counted)))
        const run = (outcome: "ok" | "down") =>
          breaker
            .execute(outcome === "ok" ? Effect.void : Effect.fail("down"), {
              key: "vendor:acme",
              classify: (exit) => (Exit.isSuccess(exit) ? CircuitBreaker.success : CircuitBreaker.failure())
            })
            .pipe(
              Effect.exit,
              Effect.map((exit) =>
                Exit.isSuccess(exit)
                  ? "ran"
                  : exit.cause.reasons.some((reason) => reason._tag === "Fail" && reason.error === "down")
                    ? "failed"
                    : "refused"
              )
            )
        return { calls, run }
      })
    )
  }).pipe(Effect.provide(CircuitBreaker.layerStoreMemory()))

describe("VendorCircuit.withLocalView", () => {
  it.effect("admits a closed circuit from its view and sends no success, asking the store again after a second", () =>
    Effect.gen(function* () {
      const [worker] = yield* shared(1)
      for (let i = 0; i < 10; i++) assert.strictEqual(yield* worker!.run("ok"), "ran")
      assert.deepStrictEqual(worker!.calls, { admit: 1, record: 0 })
      yield* TestClock.adjust(VendorCircuit.localViewMillis)
      yield* worker!.run("ok")
      assert.deepStrictEqual(worker!.calls, { admit: 2, record: 0 })
    })
  )

  it.effect("records every failure and the first success after one; its own streak opens the circuit at once", () =>
    Effect.gen(function* () {
      const [worker] = yield* shared(1)
      yield* worker!.run("down")
      yield* worker!.run("ok")
      yield* worker!.run("ok")
      assert.strictEqual(worker!.calls.record, 2, "the failure, then the success that ended its streak")
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* worker!.run("down"), "failed")
      assert.strictEqual(yield* worker!.run("ok"), "refused", "the third failure in a row opened it")
      assert.strictEqual(worker!.calls.admit, 2, "the opening sent the next call to the store")
    })
  )

  it.effect("sees a circuit another process opened once its view is a second old", () =>
    Effect.gen(function* () {
      const [one, other] = yield* shared(2)
      assert.strictEqual(yield* other!.run("ok"), "ran")
      for (let i = 0; i < 3; i++) yield* one!.run("down")
      assert.strictEqual(yield* one!.run("ok"), "refused")
      assert.strictEqual(yield* other!.run("ok"), "ran", "its view is still fresh")
      yield* TestClock.adjust(VendorCircuit.localViewMillis)
      assert.strictEqual(yield* other!.run("ok"), "refused")
    })
  )
})

/**
 * Choosing the backend from the environment: memory when nothing is set, and a backend package
 * that is asked for but not installed stops start-up with one line naming it.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as Backends from "../src/Backends.ts"

describe("Backends", () => {
  it.effect("runs on memory when neither REDIS_URL nor MONGODB_URI is set", () =>
    Effect.gen(function* () {
      const backend = yield* Backends.backendFor(yield* Backends.choice)
      assert.strictEqual(backend.name, "memory")
    }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: "" }))))
  )

  it.effect("names the package to install when a backend's is missing", () =>
    Effect.gen(function* () {
      const name = "@vendorflow-fixture/backend-nope"
      const error = yield* Effect.flip(Backends.importBackend(name, "NOPE_URL", () => import(name)))
      assert.strictEqual(error.message, `NOPE_URL is set, but ${name} is not installed (npm install ${name})`)
    })
  )

  it.effect("loads @vendorflow/redis when REDIS_URL is set", () =>
    Effect.gen(function* () {
      const backend = yield* Backends.backendFor({ redis: true, mongo: false })
      assert.strictEqual(backend.name, "redis")
    })
  )
})

/**
 * Choosing the backend from the environment: memory when nothing is set (SQLite for the
 * all-in-one), and a backend package that is asked for but not installed stops start-up with one
 * line naming it.
 */
import { assert, describe, it } from "@effect/vitest"
import { resolve } from "node:path"
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

  const chosen = (config: typeof Backends.choice, env: Record<string, string>) =>
    Effect.flatMap(config, (choice) => Effect.succeed(Backends.describe(choice))).pipe(
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
    )

  it.effect("server and worker: SQLite only when SQLITE_PATH names a file, and never beside Redis", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* chosen(Backends.choice, {}), "memory")
      assert.strictEqual(yield* chosen(Backends.choice, { SQLITE_PATH: "/var/lib/vf.db" }), "sqlite (/var/lib/vf.db)")
      assert.strictEqual(yield* chosen(Backends.choice, { SQLITE_PATH: ":memory:" }), "memory")
      assert.strictEqual(yield* chosen(Backends.choice, { SQLITE_PATH: "/x.db", REDIS_URL: "redis://h" }), "redis")
      assert.strictEqual(
        yield* chosen(Backends.choice, { SQLITE_PATH: "/x.db", MONGODB_URI: "mongodb://h" }),
        "mongodb+sqlite (/x.db)"
      )
    })
  )

  it.effect("the all-in-one: SQLite at ./.vendorflow/vendorflow.db unless told otherwise", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* chosen(Backends.allInOneChoice, {}), `sqlite (${resolve(".vendorflow/vendorflow.db")})`)
      assert.strictEqual(yield* chosen(Backends.allInOneChoice, { SQLITE_PATH: ":memory:" }), "memory")
      assert.strictEqual(yield* chosen(Backends.allInOneChoice, { REDIS_URL: "redis://h" }), "redis")
      assert.strictEqual(
        yield* chosen(Backends.allInOneChoice, { MONGODB_URI: "mongodb://h", SQLITE_PATH: ":memory:" }),
        "mongodb+memory"
      )
    })
  )

  it.effect("loads @vendorflow/sqlite when SQLITE_PATH is set", () =>
    Effect.gen(function* () {
      const backend = yield* Backends.backendFor({ redis: false, mongo: false, sqlite: "/tmp/never-opened.db" })
      assert.strictEqual(backend.name, "sqlite")
    })
  )
})

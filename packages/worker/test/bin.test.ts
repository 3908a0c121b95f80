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

  it.live("with NODE_ENV=production the development CALLBACK_TOKEN_SECRET stops it with one line naming it", () =>
    Effect.gen(function* () {
      const worker = yield* ChildProcess.start(bin, {
        NODE_ENV: "production",
        VENDORFLOW_ADAPTERS: "@vendorflow/adapter-mock-sync,@vendorflow/adapter-mock-async",
        WEBHOOK_SECRET: "ours"
      })
      assert.strictEqual(yield* worker.exited("20 seconds"), 1)
      const lines = worker
        .output()
        .split("\n")
        .filter((line) => line.startsWith("vendorflow-worker:"))
      assert.strictEqual(lines.length, 1, worker.output())
      assert.match(lines[0] ?? "", /^vendorflow-worker: CALLBACK_TOKEN_SECRET is the development default/)
    })
  )

  it.live("an unreachable or malformed backend URL: one clear line and exit 1 at start-up, not a hang", () =>
    Effect.gen(function* () {
      for (const [env, expected] of [
        [
          { REDIS_URL: "redis://127.0.0.1:1" },
          /^vendorflow-worker: cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/m
        ],
        [{ REDIS_URL: "not a url" }, /^vendorflow-worker: the Redis URL is not a URL/m],
        [
          { MONGODB_URI: "mongodb://127.0.0.1:1", MONGODB_TIMEOUT: "1 second" },
          /^vendorflow-worker: MongoDB: connecting for database "vendorflow" failed/m
        ],
        [
          { MONGODB_URI: "mongodb://127.0.0.1:1", MONGODB_FINISHED_TTL: "0 seconds" },
          /^vendorflow-worker: .*MONGODB_FINISHED_TTL is 0: it must be at least 1 second, or unset$/m
        ]
      ] as const) {
        const worker = yield* ChildProcess.start(bin, env)
        const code = yield* worker.exited("20 seconds")
        assert.strictEqual(code, 1)
        assert.match(worker.output(), expected)
        assert.strictEqual(
          worker
            .output()
            .split("\n")
            .filter((line) => line.startsWith("vendorflow-worker:")).length,
          1
        )
      }
    })
  )

  it.live("in production with no adapter named: one line saying how to name them, and exit 1", () =>
    Effect.gen(function* () {
      const worker = yield* ChildProcess.start(bin, { NODE_ENV: "production", VENDORFLOW_ADAPTERS: "" })
      assert.strictEqual(yield* worker.exited(), 1)
      assert.strictEqual(
        worker.output().trim(),
        `vendorflow-worker: no adapter is named (VENDORFLOW_ADAPTERS, package names comma-separated, or "adapters" in vendorflow.config.json); production loads no mock vendor`
      )
    })
  )
})

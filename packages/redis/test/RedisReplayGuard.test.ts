import { assert, it } from "@effect/vitest"
import { WebhookSignature } from "@vendorflow/core"
import { Context, Effect, Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisReplayGuard from "../src/RedisReplayGuard.ts"
import { RedisTest } from "../src/testing/index.ts"
import { redisServer, redisServerUnavailable, ownServerTitle } from "./RedisFixtures.ts"

const guardOn = (options: RedisConnection.Options) =>
  Layer.build(RedisReplayGuard.layer.pipe(Layer.provide(RedisConnection.layer(options)))).pipe(
    Effect.map(Context.get(WebhookSignature.ReplayGuard))
  )

RedisTest.describeRedis("RedisReplayGuard", () => {
  it.live("two API processes accept a signed delivery once between them, until its window has passed", () =>
    Effect.gen(function* () {
      const { prefix } = yield* RedisTest.scratch
      const [first, second] = [
        yield* guardOn({ url: RedisTest.url, prefix }),
        yield* guardOn({ url: RedisTest.url, prefix })
      ]
      const signature = `sig-${crypto.randomUUID()}`
      assert.isFalse(yield* second.seen(signature))
      assert.isFalse(yield* first.seen(signature), "looking claims nothing")
      assert.isTrue(yield* first.claim(signature, 1))
      assert.isTrue(yield* second.seen(signature), "the other process sees the claim")
      assert.isFalse(yield* second.claim(signature, 1), "the other process sees the replay")
      assert.isFalse(yield* first.claim(signature, 1))
      yield* Effect.sleep("1100 millis")
      assert.isTrue(yield* second.claim(signature, 1), "remembered only for its window")
    })
  )

  it.live.skipIf(redisServerUnavailable !== undefined)(
    ownServerTitle("while Redis is down, the process's own memory decides"),
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer
        yield* server.start
        const guard = yield* guardOn({
          url: server.url,
          prefix: RedisTest.randomPrefix(),
          reconnectMaxDelay: "200 millis"
        })
        yield* server.kill
        const signature = `sig-${crypto.randomUUID()}`
        assert.isFalse(yield* guard.seen(signature))
        assert.isTrue(yield* guard.claim(signature, 60))
        assert.isTrue(yield* guard.seen(signature))
        assert.isFalse(yield* guard.claim(signature, 60), "a replay is still refused by this process")
      })
  )
})

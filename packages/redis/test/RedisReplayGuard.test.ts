import { assert, describe, it } from "@effect/vitest"
import { WebhookSignature } from "@vendorflow/core"
import { Context, Effect, Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisReplayGuard from "../src/RedisReplayGuard.ts"
import {
  randomPrefix,
  redisServer,
  redisServerUnavailable,
  redisUnavailable,
  redisUrl,
  scratch,
  ownServerTitle
} from "./RedisFixtures.ts"

const guardOn = (options: RedisConnection.Options) =>
  Layer.build(RedisReplayGuard.layer.pipe(Layer.provide(RedisConnection.layer(options)))).pipe(
    Effect.map(Context.get(WebhookSignature.ReplayGuard))
  )

// Skipped, with the reason in its title, when there is no Redis to test against.
describe.skipIf(redisUnavailable !== undefined)(
  `RedisReplayGuard${redisUnavailable === undefined ? "" : ` (${redisUnavailable})`}`,
  () => {
    it.live("two API processes accept a signed delivery once between them, until its window has passed", () =>
      Effect.gen(function* () {
        const { prefix } = yield* scratch
        const [first, second] = [yield* guardOn({ url: redisUrl, prefix }), yield* guardOn({ url: redisUrl, prefix })]
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
          const guard = yield* guardOn({ url: server.url, prefix: randomPrefix(), reconnectMaxDelay: "200 millis" })
          yield* server.kill
          const signature = `sig-${crypto.randomUUID()}`
          assert.isFalse(yield* guard.seen(signature))
          assert.isTrue(yield* guard.claim(signature, 60))
          assert.isTrue(yield* guard.seen(signature))
          assert.isFalse(yield* guard.claim(signature, 60), "a replay is still refused by this process")
        })
    )
  }
)

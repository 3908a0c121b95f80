import { assert, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import { RedisTest } from "../src/testing/index.ts"
import { redisServer, redisServerUnavailable, ownServerTitle } from "./RedisFixtures.ts"

const connect = (url: string) =>
  Effect.map(Layer.build(RedisConnection.layer({ url })), (context) =>
    RedisConnection.RedisConnection.pipe(Effect.provideContext(context))
  ).pipe(Effect.flatten)

RedisTest.describeRedis("RedisConnection", () => {
  it.live("commands sent together leave together and each gets its own reply, in order", () =>
    Effect.gen(function* () {
      const { redis } = yield* connect(RedisTest.url)
      const words = Array.from({ length: 500 }, (_, i) => `word-${i}`)
      const replies = yield* Effect.forEach(words, (word) => redis.send<string>("ECHO", word), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(replies, words)
      // And one after the other, each turn of the event loop sending one.
      for (const word of words.slice(0, 20)) assert.strictEqual(yield* redis.send<string>("ECHO", word), word)
    })
  )

  it.live("a command sent alone is not held back", () =>
    Effect.gen(function* () {
      const { redis } = yield* connect(RedisTest.url)
      yield* redis.send("PING")
      const [elapsed] = yield* Effect.timed(redis.send("PING"))
      assert.isBelow(Duration.toMillis(elapsed), 250, `PING took ${Duration.format(elapsed)}`)
    })
  )

  it.live.skipIf(redisServerUnavailable !== undefined)(
    ownServerTitle("commands sent in one turn reach Redis in a few reads, not one each"),
    () =>
      Effect.gen(function* () {
        const server = yield* redisServer
        yield* server.start
        const { redis } = yield* connect(server.url)
        const reads = Effect.map(redis.send<string>("INFO", "stats"), (info) =>
          Number(/total_reads_processed:(\d+)/.exec(info)?.[1])
        )
        const before = yield* reads
        yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => redis.send("SET", `key-${i}`, "x".repeat(200)),
          { concurrency: "unbounded" }
        )
        const after = yield* reads
        // The INFO call itself is one read; 200 writes of their own would be far more.
        assert.isAtMost(after - before, 6, `${after - before} reads`)
      })
  )
})

import { describe } from "@effect/vitest"
import { WorkersSuite } from "@vendorflow/core/testing"
import { Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisWorkers from "../src/RedisWorkers.ts"
import { layerCleanup, randomPrefix, redisUnavailable, redisUrl } from "./RedisFixtures.ts"

// Skipped, with the reason in its title, when there is no Redis to test against.
describe.skipIf(redisUnavailable !== undefined)(
  `RedisWorkers${redisUnavailable === undefined ? "" : ` (${redisUnavailable})`}`,
  () => {
    const prefix = randomPrefix()
    WorkersSuite.suite(
      "redis",
      RedisWorkers.layer.pipe(
        Layer.provide(RedisConnection.layer({ url: redisUrl, prefix })),
        Layer.provide(layerCleanup(prefix))
      )
    )
  }
)

import { WorkersSuite } from "@vendorflow/core/testing"
import { Layer } from "effect"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisWorkers from "../src/RedisWorkers.ts"
import { RedisTest } from "../src/testing/index.ts"

RedisTest.describeRedis("RedisWorkers", ({ prefix }) => {
  WorkersSuite.suite(
    "redis",
    RedisWorkers.layer.pipe(Layer.provide(RedisConnection.layer({ url: RedisTest.url, prefix })))
  )
})

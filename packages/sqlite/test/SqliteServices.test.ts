import { RateLimiter } from "@vendorflow/core"
import { RateLimiterSuite, RateLimitStoreSuite, WorkersSuite } from "@vendorflow/core/testing"
import { Layer } from "effect"
import * as SqliteDatabase from "../src/SqliteDatabase.ts"
import * as SqliteRateLimitStore from "../src/SqliteRateLimitStore.ts"
import * as SqliteWorkers from "../src/SqliteWorkers.ts"
import { scratchFile } from "./SqliteFixtures.ts"

const path = scratchFile()

// Each limiter opens the file on its own connection, as a second process would.
RateLimiterSuite.suite(
  "sqlite",
  RateLimiter.layer.pipe(Layer.provide(SqliteRateLimitStore.layer), Layer.provide(SqliteDatabase.layer({ path })))
)
RateLimitStoreSuite.suite("sqlite", SqliteRateLimitStore.layer.pipe(Layer.provide(SqliteDatabase.layer({ path }))))
WorkersSuite.suite("sqlite", SqliteWorkers.layer.pipe(Layer.provide(SqliteDatabase.layer({ path }))))

import { RateLimiter } from "@vendorflow/core"
import { RateLimiterSuite, WorkersSuite } from "@vendorflow/core/testing"
import { Layer } from "effect"
import * as SqliteDatabase from "../src/SqliteDatabase.ts"
import * as SqliteRateLimiter from "../src/SqliteRateLimiter.ts"
import * as SqliteWorkers from "../src/SqliteWorkers.ts"
import { scratchFile } from "./SqliteFixtures.ts"

const path = scratchFile()

// Each limiter opens the file on its own connection, as a second process would.
RateLimiterSuite.suite(
  "sqlite",
  RateLimiter.layer.pipe(Layer.provide(SqliteRateLimiter.layerStore), Layer.provide(SqliteDatabase.layer({ path })))
)
WorkersSuite.suite("sqlite", SqliteWorkers.layer.pipe(Layer.provide(SqliteDatabase.layer({ path }))))

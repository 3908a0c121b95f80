import { JobStoreSuite } from "@vendorflow/core/testing"
import { Layer } from "effect"
import * as SqliteDatabase from "../src/SqliteDatabase.ts"
import * as SqliteJobStore from "../src/SqliteJobStore.ts"
import { scratchFile } from "./SqliteFixtures.ts"

JobStoreSuite.suite(
  "sqlite file",
  SqliteJobStore.layer().pipe(Layer.provide(SqliteDatabase.layer({ path: scratchFile() })))
)

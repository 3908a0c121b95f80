import { JobQueueSuite } from "@vendorflow/core/testing"
import { Layer } from "effect"
import * as SqliteDatabase from "../src/SqliteDatabase.ts"
import * as SqliteJobQueue from "../src/SqliteJobQueue.ts"
import { scratchFile } from "./SqliteFixtures.ts"

JobQueueSuite.suite("sqlite", SqliteJobQueue.layer().pipe(Layer.provide(SqliteDatabase.layer({ path: scratchFile() }))))

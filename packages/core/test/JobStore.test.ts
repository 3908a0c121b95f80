import * as JobStore from "../src/JobStore.ts"
import * as JobStoreSuite from "../src/testing/JobStoreSuite.ts"

JobStoreSuite.suite("memory", JobStore.layerMemory)

import * as JobQueue from "../src/JobQueue.ts"
import * as JobQueueSuite from "../src/testing/JobQueueSuite.ts"

JobQueueSuite.suite("memory", JobQueue.layerMemory)

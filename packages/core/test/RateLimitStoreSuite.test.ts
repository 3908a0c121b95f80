import { Effect, Layer } from "effect"
import * as RateLimitStore from "../src/RateLimitStore.ts"
import * as RateLimitStoreSuite from "../src/testing/RateLimitStoreSuite.ts"

// The memory store lives in its layer: built once and provided to every build, as one process
// with several workers would share it.
const store = Effect.runSync(Effect.scoped(Layer.build(RateLimitStore.layerMemory)))

RateLimitStoreSuite.suite("memory", Layer.succeedContext(store))

import { Effect, Layer } from "effect"
import * as RateLimiter from "../src/RateLimiter.ts"
import * as RateLimitStore from "../src/RateLimitStore.ts"
import * as RateLimiterSuite from "../src/testing/RateLimiterSuite.ts"

// The memory store lives in its layer, so every build of `RateLimiter.layerMemory` has its own
// budget. Building the store once and providing it to every build of the limiter is what one
// process with several limiters looks like, and what the suite's "shared budget" test needs.
const store = Effect.runSync(Effect.scoped(Layer.build(RateLimitStore.layerMemory)))

RateLimiterSuite.suite("memory", RateLimiter.layer.pipe(Layer.provide(Layer.succeedContext(store))))

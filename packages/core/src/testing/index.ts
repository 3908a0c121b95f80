/**
 * `@vendorflow/core/testing`: the conformance suites that every store and queue implementation runs.
 * Needs `@effect/vitest` (an optional peer dependency).
 *
 * @since 0.1.0
 */
export * as ChildProcess from "./ChildProcess.ts"
export * as JobQueueSuite from "./JobQueueSuite.ts"
export * as JobStoreSuite from "./JobStoreSuite.ts"
export * as RateLimiterSuite from "./RateLimiterSuite.ts"
export * as RateLimitStoreSuite from "./RateLimitStoreSuite.ts"
export * as WorkersSuite from "./WorkersSuite.ts"

/**
 * Every service a deployment shares on one SQLite file: durable on one machine, with nothing else
 * to run. `SqliteBackend` is core's `Backend` over it.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as SqliteCircuitBreaker from "./SqliteCircuitBreaker.ts"

/** @since 0.1.0 */
export * as SqliteDatabase from "./SqliteDatabase.ts"

/** @since 0.1.0 */
export * as SqliteJobQueue from "./SqliteJobQueue.ts"

/** @since 0.1.0 */
export * as SqliteJobStore from "./SqliteJobStore.ts"

/** @since 0.1.0 */
export * as SqliteBackend from "./SqliteBackend.ts"

/** @since 0.1.0 */
export * as SqliteRateLimiter from "./SqliteRateLimiter.ts"

/** @since 0.1.0 */
export * as SqliteRateLimitStore from "./SqliteRateLimitStore.ts"

/** @since 0.1.0 */
export * as SqliteReplayGuard from "./SqliteReplayGuard.ts"

/** @since 0.1.0 */
export * as SqliteStats from "./SqliteStats.ts"

/** @since 0.1.0 */
export * as SqliteWorkers from "./SqliteWorkers.ts"

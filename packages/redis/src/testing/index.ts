/**
 * `@vendorflow/redis/testing`: what tests of a Redis deployment need: `RedisTest` (a block of tests
 * on the shared Redis under a random key prefix, skipped with its reason where none answers),
 * `redis-server` of a test's own to stop and start (`RedisServer`), and a local Redis Cluster with
 * replicas whose primaries a test can kill (`RedisCluster`). Needs `@effect/vitest` (an
 * optional peer dependency).
 *
 * @since 0.1.0
 */
export * as RedisCluster from "./RedisCluster.ts"
export * as RedisServer from "./RedisServer.ts"
export * as RedisTest from "./RedisTest.ts"

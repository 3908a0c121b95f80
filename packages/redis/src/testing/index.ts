/**
 * `@vendorflow/redis/testing`: what tests of a Redis deployment need, such as a `redis-server` of
 * their own to stop and start.
 *
 * @since 0.1.0
 */
export * as RedisServer from "./RedisServer.ts"

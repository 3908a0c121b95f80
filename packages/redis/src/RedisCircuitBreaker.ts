/**
 * Circuit breaker state shared through Redis, so every worker sees one circuit per vendor:
 * `effect/persistence`'s own Redis store over the process's {@link RedisConnection.RedisConnection},
 * seen through the process's view of its closed circuits (`VendorCircuit.withLocalView`), so that a
 * healthy vendor's calls make no round trip for the breaker.
 *
 * Keys: `<REDIS_PREFIX>circuit:<key>`, one per circuit (each script touches one key, so no hash tag
 * is needed on Redis Cluster).
 *
 * @since 0.1.0
 */
import { VendorCircuit } from "@vendorflow/core"
import { Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"
import * as RedisConnection from "./RedisConnection.ts"
import * as RedisKeys from "./RedisKeys.ts"

/**
 * The store over a provided connection, under the connection's key prefix.
 *
 * @category layers
 */
export const layerStore: Layer.Layer<CircuitBreaker.CircuitBreakerStore, never, RedisConnection.RedisConnection> =
  Layer.effect(
    CircuitBreaker.CircuitBreakerStore,
    CircuitBreaker.CircuitBreakerStore.useSync((store) => VendorCircuit.withLocalView(store))
  ).pipe(
    Layer.provide(
      Layer.unwrap(
        RedisConnection.RedisConnection.useSync((connection) =>
          CircuitBreaker.layerStoreRedis({ prefix: RedisKeys.circuitPrefix(connection.prefix) })
        )
      ).pipe(Layer.provide(RedisConnection.layerRedis))
    )
  )

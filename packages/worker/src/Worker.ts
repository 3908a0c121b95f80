/**
 * The worker: the consumer loops and the job engine, over whichever backends are provided.
 *
 * @since 0.1.0
 */
import {
  type Cleaner,
  Consumer,
  JobProcessor,
  type JobQueue,
  type JobStore,
  type RateLimiter,
  Sweeper,
  type VendorRegistry
} from "@vendorflow/core"
import { type Config, Layer } from "effect"
import type { CircuitBreaker } from "effect/persistence"

/**
 * The consumer loops running the engine, and the recovery sweeper; the engine's webhook base URL
 * comes from `PUBLIC_URL`.
 *
 * @category layers
 */
export const layer: Layer.Layer<
  never,
  Config.ConfigError,
  | JobStore.JobStore
  | JobQueue.JobQueue
  | VendorRegistry.VendorRegistry
  | RateLimiter.RateLimiter
  | CircuitBreaker.CircuitBreaker
  | Cleaner.Cleaner
> = Layer.mergeAll(Consumer.layerConfig, Sweeper.layerConfig).pipe(Layer.provide(JobProcessor.layerConfig))

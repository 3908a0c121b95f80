/**
 * The worker: the consumer loops and the job engine, over whichever backends are provided.
 *
 * @since 0.1.0
 */
import { Consumer, JobProcessor } from "@vendorflow/core"
import { Layer } from "effect"

/**
 * The consumer loops running the engine; needs a `JobStore`, `JobQueue`, `VendorRegistry`,
 * `RateLimiter` and `Cleaner`. The engine's webhook base URL comes from `PUBLIC_URL`.
 *
 * @category layers
 */
export const layer = Consumer.layer.pipe(Layer.provide(JobProcessor.layerConfig))

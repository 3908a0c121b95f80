/**
 * The consumer: the loops that take deliveries from the queue and run them through the
 * {@link JobProcessor}, `vendor.concurrency` at a time for each loaded vendor.
 *
 * A layer with no service: while it is alive, jobs are worked off; when its scope closes, the loops
 * are interrupted. The reference worker runs it; so does an app that embeds vendorflow.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { JobProcessor } from "./JobProcessor.ts"
import { JobQueue } from "./JobQueue.ts"
import { VendorRegistry } from "./VendorRegistry.ts"

/**
 * How long one `take` waits for work before it asks again.
 *
 * @category constants
 */
export const pollBlock = Duration.seconds(1)

/**
 * Runs the consumer loops until interrupted. A store or queue outage is logged and the loop
 * backs off (up to 5 s) instead of dying.
 *
 * @category constructors
 */
export const run = Effect.gen(function* () {
  const queue = yield* JobQueue
  const processor = yield* JobProcessor
  const registry = yield* VendorRegistry
  const backoff = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")])

  const loop = (vendor: string) =>
    queue.take(vendor, { max: 1, block: pollBlock }).pipe(
      Effect.flatMap((deliveries) => Effect.forEach(deliveries, processor.process, { discard: true })),
      Effect.tapError((error) => Effect.logWarning(`consumer for ${vendor}: ${error.message}`)),
      Effect.retry(backoff),
      Effect.forever
    )

  return yield* Effect.forEach(
    registry.vendors.flatMap((vendor) => Array.from({ length: vendor.concurrency }, () => vendor.name)),
    loop,
    { concurrency: "unbounded", discard: true }
  )
})

/**
 * The consumer loops, forked into the layer's scope.
 *
 * @category layers
 */
export const layer = Layer.effectDiscard(Effect.forkScoped(run))

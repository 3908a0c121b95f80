/**
 * The consumer: the loops that take deliveries from the queue and run them through the
 * {@link JobProcessor}, `vendor.concurrency` at a time for each loaded vendor.
 *
 * A layer with no service: while it is alive, jobs are worked off. When its scope closes (SIGTERM),
 * it shuts down gracefully: the loops stop taking, the calls in flight get `grace` to finish, and
 * whatever is still running then is interrupted, which hands its job back to the queue.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Fiber, Layer, Schedule } from "effect"
import { JobProcessor } from "./JobProcessor.ts"
import { type Delivery, JobQueue } from "./JobQueue.ts"
import { VendorRegistry } from "./VendorRegistry.ts"

/**
 * How long one `take` waits for work before it asks again (and so notices a shutdown).
 *
 * @category constants
 */
export const pollBlock = Duration.seconds(1)

/**
 * How the consumer shuts down.
 *
 * @category models
 */
export interface Options {
  /** How long calls in flight may take to finish once shutdown begins; default 10 seconds. */
  readonly grace?: Duration.Input | undefined
}

/**
 * Starts the consumer loops in the current scope; closing the scope drains them as described in
 * the module docs. A store or queue outage is logged and a loop backs off (up to 5 s) instead of dying.
 *
 * @category constructors
 */
export const start = (options: Options = {}) =>
  Effect.gen(function* () {
    const queue = yield* JobQueue
    const processor = yield* JobProcessor
    const registry = yield* VendorRegistry
    let stopping = false
    const backoff = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")])

    // A defect in one delivery is logged and leaves it unacknowledged (it comes back after the
    // visibility timeout, up to the delivery limit); it never stops the loop.
    const processOne = (delivery: Delivery) =>
      processor
        .process(delivery)
        .pipe(Effect.catchDefect((defect) => Effect.logError(`consumer: job ${delivery.jobId} hit a bug`, defect)))

    const round = (vendor: string) =>
      queue.take(vendor, { max: 1, block: pollBlock }).pipe(
        // Taken, then asked to stop: the delivery is still run (or handed back if grace runs out).
        Effect.flatMap((deliveries) => Effect.forEach(deliveries, processOne, { discard: true })),
        Effect.tapError((error) => Effect.logWarning(`consumer for ${vendor}: ${error.message}`)),
        Effect.retry(backoff)
      )

    const loop = (vendor: string) =>
      Effect.whileLoop({ while: () => !stopping, body: () => round(vendor), step: () => {} })

    const loops = yield* Effect.forkScoped(
      Effect.forEach(
        registry.vendors.flatMap((vendor) => Array.from({ length: vendor.concurrency }, () => vendor.name)),
        loop,
        { concurrency: "unbounded", discard: true }
      )
    )

    // Added after the fork, so it runs before the scope interrupts the loops.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stopping = true
      }).pipe(
        Effect.andThen(Fiber.await(loops)),
        Effect.timeoutOption(options.grace ?? Duration.seconds(10)),
        Effect.andThen(Fiber.interrupt(loops))
      )
    )
  })

/**
 * The grace period from `SHUTDOWN_GRACE` (default 10 seconds).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  grace: Config.Duration("SHUTDOWN_GRACE").pipe(Config.withDefault(Duration.seconds(10)))
})

/**
 * The consumer loops for the life of the layer.
 *
 * @category layers
 */
export const layer = (options: Options = {}) => Layer.effectDiscard(start(options))

/**
 * The consumer loops, with the grace period from the environment.
 *
 * @category layers
 */
export const layerConfig = Layer.unwrap(Effect.map(config, layer))

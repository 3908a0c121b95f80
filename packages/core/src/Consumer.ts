/**
 * The consumer: for each loaded vendor, one loop that takes deliveries from the queue and runs them
 * through the {@link JobProcessor}, `vendor.concurrency` at a time.
 *
 * The loop takes as many deliveries at once as there are free slots, so under load one `take` (on
 * Redis: one reclaim script and one `XREADGROUP`) feeds many jobs instead of one each, and only one
 * blocking read per vendor is ever waiting. Each delivery runs in a fiber of its own; a slot frees
 * when it ends.
 *
 * A layer with no service: while it is alive, jobs are worked off. When its scope closes (SIGTERM),
 * it shuts down gracefully: the loops stop taking, the calls in flight get `grace` to finish, and
 * whatever is still running then is interrupted, which hands its job back to the queue.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Fiber, FiberSet, Layer, Schedule, Semaphore } from "effect"
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

    // One vendor's loop: wait for a free slot, take up to as many deliveries as there are free slots,
    // run each in a fiber that frees its slot when done. Taken, then asked to stop: what was taken
    // is still run (or handed back if grace runs out), and the loop ends once all of it has.
    const loop = (vendor: string, concurrency: number) =>
      Effect.gen(function* () {
        const slots = yield* Semaphore.make(concurrency)
        const running = yield* FiberSet.make<void>()
        let busy = 0
        // Runs that failed in a row: a store or queue outage, after which the loop backs off.
        let failing = 0
        // Such a run's delivery stays unacknowledged and comes back later.
        const run = (delivery: Delivery) =>
          processOne(delivery).pipe(
            Effect.matchEffect({
              onSuccess: () => Effect.sync(() => (failing = 0)),
              onFailure: (error) =>
                Effect.logWarning(`consumer for ${vendor}: ${error.message}`).pipe(
                  Effect.andThen(Effect.sync(() => failing++))
                )
            }),
            Effect.ensuring(
              Effect.suspend(() => {
                busy--
                return Semaphore.release(slots, 1)
              })
            )
          )
        const round = Effect.gen(function* () {
          if (failing > 0) yield* Effect.sleep(Math.min(5000, 100 * 2 ** Math.min(failing, 6)))
          yield* Semaphore.take(slots, 1)
          // Only this loop takes slots, so the others free now can be had without waiting.
          const wanted = concurrency - busy
          if (wanted > 1) yield* Semaphore.take(slots, wanted - 1)
          const deliveries = yield* queue.take(vendor, { max: wanted, block: pollBlock }).pipe(
            Effect.tapError((error) => Effect.logWarning(`consumer for ${vendor}: ${error.message}`)),
            Effect.retry(backoff)
          )
          busy += deliveries.length
          if (deliveries.length < wanted) yield* Semaphore.release(slots, wanted - deliveries.length)
          for (const delivery of deliveries) yield* FiberSet.run(running, run(delivery))
        })
        yield* Effect.whileLoop({ while: () => !stopping, body: () => round, step: () => {} })
        yield* FiberSet.awaitEmpty(running)
      }).pipe(Effect.scoped)

    const loops = yield* Effect.forkScoped(
      Effect.forEach(registry.vendors, (vendor) => loop(vendor.name, Math.max(1, vendor.concurrency)), {
        concurrency: "unbounded",
        discard: true
      })
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

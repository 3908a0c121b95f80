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
    const consumer: Consumer = { queue: yield* JobQueue, processor: yield* JobProcessor, stopping: false }
    const registry = yield* VendorRegistry
    const loops = yield* Effect.forkScoped(
      Effect.forEach(registry.vendors, (vendor) => loop(consumer, vendor.name, Math.max(1, vendor.concurrency)), {
        concurrency: "unbounded",
        discard: true
      })
    )

    // Added after the fork, so it runs before the scope interrupts the loops.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        consumer.stopping = true
      }).pipe(
        Effect.andThen(Fiber.await(loops)),
        Effect.timeoutOption(options.grace ?? Duration.seconds(10)),
        Effect.andThen(Fiber.interrupt(loops))
      )
    )
  })

// What the loops share: the services, and whether shutdown has begun (the loops then stop taking).
interface Consumer {
  readonly queue: JobQueue["Service"]
  readonly processor: JobProcessor["Service"]
  stopping: boolean
}

// One loop's state: its deliveries running now, and the runs that failed in a row (a store or
// queue outage, after which the loop backs off).
interface Lane {
  readonly vendor: string
  readonly concurrency: number
  readonly slots: Semaphore.Semaphore
  readonly running: FiberSet.FiberSet<void>
  busy: number
  failing: number
}

// How a loop whose `take` fails tries again.
const takeRetry = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")])

// One vendor's loop: wait for a free slot, take up to as many deliveries as there are free slots,
// run each in a fiber that frees its slot when done. Taken, then asked to stop: what was taken
// is still run (or handed back if grace runs out), and the loop ends once all of it has.
const loop = (consumer: Consumer, vendor: string, concurrency: number) =>
  Effect.gen(function* () {
    const lane: Lane = {
      vendor,
      concurrency,
      slots: yield* Semaphore.make(concurrency),
      running: yield* FiberSet.make<void>(),
      busy: 0,
      failing: 0
    }
    const round = takeRound(consumer, lane)
    yield* Effect.whileLoop({ while: () => !consumer.stopping, body: () => round, step: () => {} })
    yield* FiberSet.awaitEmpty(lane.running)
  }).pipe(Effect.scoped)

// Takes as many deliveries as the lane has free slots and starts each in its own fiber.
const takeRound = (consumer: Consumer, lane: Lane) =>
  Effect.gen(function* () {
    const { vendor, concurrency, slots } = lane
    if (lane.failing > 0) yield* Effect.sleep(Math.min(5000, 100 * 2 ** Math.min(lane.failing, 6)))
    yield* Semaphore.take(slots, 1)
    // Only this loop takes slots, so the others free now can be had without waiting.
    const wanted = concurrency - lane.busy
    if (wanted > 1) yield* Semaphore.take(slots, wanted - 1)
    const deliveries = yield* consumer.queue.take(vendor, { max: wanted, block: pollBlock }).pipe(
      Effect.tapError((error) => Effect.logWarning(`consumer for ${vendor}: ${error.message}`)),
      Effect.retry(takeRetry)
    )
    lane.busy += deliveries.length
    if (deliveries.length < wanted) yield* Semaphore.release(slots, wanted - deliveries.length)
    for (const delivery of deliveries) yield* FiberSet.run(lane.running, run(consumer, lane, delivery))
  })

// Runs one delivery and frees its slot. A run that failed leaves its delivery unacknowledged (it
// comes back later); a defect is logged likewise and never stops the loop (it comes back after the
// visibility timeout, up to the delivery limit).
const run = (consumer: Consumer, lane: Lane, delivery: Delivery) =>
  consumer.processor.process(delivery).pipe(
    Effect.catchDefect((defect) => Effect.logError(`consumer: job ${delivery.jobId} hit a bug`, defect)),
    Effect.matchEffect({
      onSuccess: () => Effect.sync(() => (lane.failing = 0)),
      onFailure: (error) =>
        Effect.logWarning(`consumer for ${lane.vendor}: ${error.message}`).pipe(
          Effect.andThen(Effect.sync(() => lane.failing++))
        )
    }),
    Effect.ensuring(
      Effect.suspend(() => {
        lane.busy--
        return Semaphore.release(lane.slots, 1)
      })
    )
  )

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

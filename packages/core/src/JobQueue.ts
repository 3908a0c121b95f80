/**
 * The job queue: at-least-once delivery of job ids, one logical queue per vendor so a slow or
 * rate-limited vendor never holds up the others.
 *
 * A taken delivery stays in flight until it is acknowledged, retried later or dead-lettered. It
 * stays with its taker while the taker renews it (within `visibilityTimeout`); one that is not
 * renewed may be handed to another taker, and then the first one's acknowledgement is ignored.
 * Offers {@link layerMemory}; `@vendorflow/redis` offers Redis Streams with consumer groups.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Queue, Schema, type Scope } from "effect"
import type { JobId } from "./Job.ts"

/**
 * A queue failure; `Unavailable` (the backend is down) is worth retrying.
 *
 * @category errors
 */
export class JobQueueError extends Schema.TaggedError<JobQueueError>()("JobQueueError", {
  reason: Schema.Literals(["Unavailable"]),
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return true
  }
}

/**
 * One delivery of a job id to a worker.
 *
 * @category models
 */
export interface Delivery {
  /** The backend's id for this entry (a stream entry id in Redis). */
  readonly id: string
  readonly vendor: string
  readonly jobId: JobId
  /** 1 on first delivery; more when the entry was redelivered after a crash. */
  readonly deliveryCount: number
  /**
   * The queue's delivery limit is used up: the job must not be run again. The engine fails its
   * record (`DeliveryLimit`) and dead-letters the delivery, so the record never says `pending`
   * while the queue has given up on it.
   */
  readonly exhausted?: boolean | undefined
}

/**
 * What a dead letter names: the job, and the delivery it came in (absent for a job given up on
 * outside any delivery, such as one whose callback never came).
 *
 * @category models
 */
export interface GivenUp {
  readonly vendor: string
  readonly jobId: JobId
  /** The delivery's entry, acknowledged with the dead letter when its taker still holds it. */
  readonly id?: string | undefined
  readonly deliveryCount?: number | undefined
}

/**
 * A delivery given up on, with the reason.
 *
 * @category models
 */
export interface DeadLetter {
  readonly vendor: string
  readonly jobId: JobId
  readonly reason: string
  readonly at: string
}

/**
 * The job queue service.
 *
 * @category services
 */
export class JobQueue extends Context.Service<
  JobQueue,
  {
    /**
     * How long a taken delivery stays with its taker without being renewed; past it, the queue may
     * hand it to another taker. The engine leases the job in the store for as long.
     */
    readonly visibilityTimeout: Duration.Duration
    readonly enqueue: (vendor: string, jobId: JobId) => Effect.Effect<void, JobQueueError>
    /** Queues several jobs for one vendor, in order, in one round trip where the queue can. */
    readonly enqueueMany: (vendor: string, jobIds: ReadonlyArray<JobId>) => Effect.Effect<void, JobQueueError>
    /** Up to `max` deliveries, waiting at most `block` for the first; empty when none came. */
    readonly take: (
      vendor: string,
      options: {
        readonly max: number
        readonly block: Duration.Input
      }
    ) => Effect.Effect<ReadonlyArray<Delivery>, JobQueueError>
    /**
     * Keeps a delivery with its taker for another `visibilityTimeout`, if the taker still holds it
     * (a delivery not renewed in time may have gone to another taker: that one keeps it).
     */
    readonly renew: (delivery: Delivery) => Effect.Effect<void, JobQueueError>
    /**
     * Done with a delivery: call only after the job's new state is stored. Acknowledges it only
     * while its taker still holds it; one that went to another taker stays with that one.
     */
    readonly ack: (delivery: Delivery) => Effect.Effect<void, JobQueueError>
    /** Acknowledges the delivery (as `ack` does) and delivers the job again after `delay`. */
    readonly retryLater: (delivery: Delivery, delay: Duration.Input) => Effect.Effect<void, JobQueueError>
    /** Records a dead letter for the job, acknowledging its delivery (as `ack` does) when it names one. */
    readonly deadLetter: (givenUp: GivenUp, reason: string) => Effect.Effect<void, JobQueueError>
    readonly deadLetters: (vendor: string) => Effect.Effect<ReadonlyArray<DeadLetter>, JobQueueError>
    /** The vendor's backlog: deliveries waiting to be taken, in flight, and waiting to be retried. */
    readonly depth: (vendor: string) => Effect.Effect<number, JobQueueError>
  }
>()("@vendorflow/core/JobQueue") {}

/**
 * The visibility timeout of the in-memory queue: it never hands a delivery to another taker, but
 * the engine leases jobs in the store for this long.
 *
 * @category constants
 */
export const memoryVisibilityTimeout = Duration.seconds(30)

/**
 * An in-memory queue for one process. Delayed retries are fibers in the layer's scope, so they end
 * with it; nothing survives a restart, which is what the embedded mode promises.
 *
 * @category constructors
 */
export const makeMemory: Effect.Effect<JobQueue["Service"], never, Scope.Scope> = Effect.gen(function* () {
  const scope = yield* Effect.scope
  const queues = new Map<string, Queue.Queue<Delivery>>()
  const deadLetters: Array<DeadLetter> = []
  const delayed = new Map<string, number>()
  const countDelayed = (vendor: string, by: number) => delayed.set(vendor, (delayed.get(vendor) ?? 0) + by)
  let sequence = 0

  const queueFor = (vendor: string) =>
    Effect.gen(function* () {
      const existing = queues.get(vendor)
      if (existing !== undefined) return existing
      const created = yield* Queue.unbounded<Delivery>()
      queues.set(vendor, created)
      return created
    })

  const offer = (vendor: string, jobIds: ReadonlyArray<JobId>, deliveryCount: number) =>
    Effect.flatMap(queueFor(vendor), (queue) =>
      Queue.offerAll(
        queue,
        jobIds.map((jobId) => ({ id: `${++sequence}`, vendor, jobId, deliveryCount }))
      )
    ).pipe(Effect.asVoid)

  return JobQueue.of({
    visibilityTimeout: memoryVisibilityTimeout,
    enqueue: (vendor, jobId) => offer(vendor, [jobId], 1),
    enqueueMany: (vendor, jobIds) => offer(vendor, jobIds, 1),
    take: (vendor, options) =>
      queueFor(vendor).pipe(
        Effect.flatMap((queue) => Queue.takeBetween(queue, 1, options.max)),
        Effect.timeoutOption(options.block),
        Effect.map((taken) => (taken._tag === "Some" ? taken.value : []))
      ),
    renew: () => Effect.void,
    ack: () => Effect.void,
    retryLater: (delivery, delay) =>
      Effect.sync(() => countDelayed(delivery.vendor, 1)).pipe(
        Effect.andThen(
          offer(delivery.vendor, [delivery.jobId], delivery.deliveryCount + 1).pipe(
            Effect.delay(Duration.fromInputUnsafe(delay)),
            Effect.ensuring(Effect.sync(() => countDelayed(delivery.vendor, -1))),
            Effect.forkIn(scope)
          )
        ),
        Effect.asVoid
      ),
    deadLetter: (givenUp, reason) =>
      Effect.sync(() => {
        deadLetters.push({ vendor: givenUp.vendor, jobId: givenUp.jobId, reason, at: new Date().toISOString() })
      }),
    deadLetters: (vendor) => Effect.sync(() => deadLetters.filter((letter) => letter.vendor === vendor)),
    depth: (vendor) => Effect.map(queueFor(vendor), (queue) => Queue.sizeUnsafe(queue) + (delayed.get(vendor) ?? 0))
  })
})

/**
 * The in-memory job queue.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<JobQueue> = Layer.effect(JobQueue, makeMemory)

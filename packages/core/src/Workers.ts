/**
 * Worker heartbeats: each worker says every few seconds that it is alive and which vendors it
 * serves; the server's `/health` and `/ready` report the workers seen within the heartbeat TTL.
 *
 * Offers {@link layerMemory} (one process: the all-in-one) and {@link heartbeat}, the worker's
 * side; `@vendorflow/redis` offers the shared registry of a split deployment.
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Duration, Effect, Layer, Schema } from "effect"
import { VendorRegistry } from "./VendorRegistry.ts"

/**
 * A worker as its last heartbeat described it.
 *
 * @category models
 */
export const WorkerBeat = Schema.Struct({
  id: Schema.String,
  vendors: Schema.Array(Schema.String),
  /** When the worker started (ISO 8601). */
  started_at: Schema.String,
  /** Its last heartbeat (ISO 8601). */
  last_seen: Schema.String
}).annotate({ identifier: "WorkerBeat" })

/** @category models */
export type WorkerBeat = typeof WorkerBeat.Type

/**
 * The registry could not be read or written (its backend is unreachable).
 *
 * @category errors
 */
export class WorkersError extends Schema.TaggedError<WorkersError>()("WorkersError", {
  message: Schema.String
}) {}

/**
 * How long a heartbeat counts: a worker silent for longer is not alive. Default 15 seconds, three
 * beats of {@link defaultInterval}.
 *
 * @category constants
 */
export const defaultTtl = Duration.seconds(15)

/**
 * How often a worker beats by default.
 *
 * @category constants
 */
export const defaultInterval = Duration.seconds(5)

/**
 * The registry of workers.
 *
 * @category services
 */
export class Workers extends Context.Service<
  Workers,
  {
    /** Records a heartbeat (the beat's `last_seen` is the registry's now). */
    readonly beat: (beat: Omit<WorkerBeat, "last_seen">) => Effect.Effect<void, WorkersError>
    /** A worker stopping: it is not alive from now on. */
    readonly leave: (id: string) => Effect.Effect<void, WorkersError>
    /** The workers seen within the TTL, most recent first. */
    readonly alive: Effect.Effect<ReadonlyArray<WorkerBeat>, WorkersError>
  }
>()("@vendorflow/core/Workers") {}

/**
 * The in-memory registry: the workers of this process.
 *
 * @category constructors
 */
export const makeMemory = (ttl: Duration.Input = defaultTtl) =>
  Effect.sync(() => {
    const beats = new Map<string, WorkerBeat>()
    const ttlMillis = Duration.toMillis(Duration.fromInputUnsafe(ttl))
    return Workers.of({
      beat: (beat) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          beats.set(beat.id, { ...beat, last_seen: new Date(now).toISOString() })
        }),
      leave: (id) => Effect.sync(() => beats.delete(id)),
      alive: Effect.map(Clock.currentTimeMillis, (now) =>
        [...beats.values()]
          .filter((beat) => now - Date.parse(beat.last_seen) <= ttlMillis)
          .sort((a, b) => b.last_seen.localeCompare(a.last_seen))
      )
    })
  })

/**
 * The in-memory registry.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<Workers> = Layer.effect(Workers, makeMemory())

/**
 * The worker's side: beats as the layer is built, then every `interval` until the layer's scope
 * closes, and leaves then. A failed beat is logged; the next one tries again.
 *
 * @category layers
 */
export const heartbeat = (options: {
  readonly id: string
  readonly vendors: ReadonlyArray<string>
  readonly interval?: Duration.Input | undefined
}): Layer.Layer<never, never, Workers> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const workers = yield* Workers
      const beat = {
        id: options.id,
        vendors: [...options.vendors],
        started_at: new Date(yield* Clock.currentTimeMillis).toISOString()
      }
      const beatOnce = workers
        .beat(beat)
        .pipe(Effect.catch((error) => Effect.logWarning(`heartbeat: ${error.message}`)))
      yield* Effect.addFinalizer(() => Effect.ignore(workers.leave(options.id)))
      // The first beat before the layer is up, so a started worker is listed at once.
      yield* beatOnce
      yield* beatOnce.pipe(Effect.delay(options.interval ?? defaultInterval), Effect.forever, Effect.forkScoped)
    })
  )

/**
 * The heartbeat interval from `WORKER_HEARTBEAT_INTERVAL`.
 *
 * @category config
 */
export const intervalConfig = Config.Duration("WORKER_HEARTBEAT_INTERVAL").pipe(Config.withDefault(defaultInterval))

/**
 * This process's heartbeat, as a worker of the vendors it has loaded, every
 * `WORKER_HEARTBEAT_INTERVAL`; its id is `HOSTNAME` (a container's id; `worker` where unset) and a
 * random suffix.
 *
 * @category layers
 */
export const layerHeartbeat: Layer.Layer<never, Config.ConfigError, Workers | VendorRegistry> = Layer.unwrap(
  Effect.gen(function* () {
    const interval = yield* intervalConfig
    const host = yield* Config.String("HOSTNAME").pipe(Config.withDefault("worker"))
    const registry = yield* VendorRegistry
    return heartbeat({
      id: `${host}-${crypto.randomUUID().slice(0, 8)}`,
      vendors: registry.vendors.map((vendor) => vendor.name),
      interval
    })
  })
)

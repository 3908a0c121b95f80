/**
 * A backend: where a deployment keeps what its processes share. One layer provides the job store,
 * the job queue, the vendors' rate-limit store, `effect/persistence`'s (the API keys' quotas), the
 * circuit breakers' store, the webhook replay guard, the workers' heartbeats, the dashboard's
 * statistics (the `Stats` reference) and a health check for each server it talks to.
 *
 * Core offers {@link memory}: everything in this one process. A backend package offers its own
 * (`RedisBackend` in `@vendorflow/redis`, `MongoBackend` in `@vendorflow/mongo`), so that core
 * depends on no database driver and an app installs only the driver it uses. `@vendorflow/runtime`
 * picks one from the environment; the Promise facade and `Vendorflow.layer` take one as an option.
 *
 * Layers: {@link layerServices} (what the engine runs on, over a backend).
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import { CircuitBreaker, RateLimiter as PersistedRateLimiter } from "effect/persistence"
import * as Health from "./Health.ts"
import * as JobQueue from "./JobQueue.ts"
import * as JobStore from "./JobStore.ts"
import * as RateLimiter from "./RateLimiter.ts"
import * as RateLimitStore from "./RateLimitStore.ts"
import * as Stats from "./Stats.ts"
import * as VendorCircuit from "./VendorCircuit.ts"
import * as WebhookSignature from "./WebhookSignature.ts"
import * as Workers from "./Workers.ts"

/**
 * What a backend's layer provides.
 *
 * @category models
 */
export type Services =
  | JobStore.JobStore
  | JobQueue.JobQueue
  | PersistedRateLimiter.RateLimiterStore
  | RateLimitStore.RateLimitStore
  | CircuitBreaker.CircuitBreakerStore
  | WebhookSignature.ReplayGuard
  | Workers.Workers
  | Health.Health

/**
 * Why a backend could not start (a bad setting, a server that is unreachable or refuses us), in a
 * message of one line that names the server, never its credentials.
 *
 * @category models
 */
export interface StartupError {
  readonly _tag: string
  readonly message: string
}

/**
 * A backend.
 *
 * @category models
 */
export interface Backend {
  /** What it is, for logs and errors: `memory`, `redis`, `mongodb+redis`. */
  readonly name: string
  /** Its services; building the layer connects (and is the start-up check), closing it disconnects. */
  readonly layer: Layer.Layer<Services, StartupError>
}

/**
 * A backend named `name` over `layer`.
 *
 * @category constructors
 */
export const make = (name: string, layer: Layer.Layer<Services, StartupError>): Backend => ({ name, layer })

/**
 * Everything in this process's memory: the embedded default, and right for one process only.
 *
 * @category constructors
 */
export const memory: Backend = make(
  "memory",
  Layer.mergeAll(
    JobStore.layerMemory,
    JobQueue.layerMemory,
    PersistedRateLimiter.layerStoreMemory,
    RateLimitStore.layerMemory,
    CircuitBreaker.layerStoreMemory(),
    WebhookSignature.ReplayGuard.layerMemory,
    Workers.layerMemory,
    Stats.layerMemory,
    Health.layerNone
  )
)

/**
 * `backend` with its job store replaced by `store` (a store-only backend, such as MongoDB, over
 * another that keeps the queue and the rest). The store's layer is built over the rest's services:
 * its `JobStore` replaces theirs, and its `Health` is theirs with its own server's check added
 * first ({@link Health.layerAdding}).
 *
 * @category combinators
 */
export const withJobStore = (
  backend: Backend,
  store: {
    readonly name: string
    readonly layer: Layer.Layer<JobStore.JobStore | Health.Health, StartupError, Health.Health>
  }
): Backend => make(`${store.name}+${backend.name}`, store.layer.pipe(Layer.provideMerge(backend.layer)))

/**
 * What the engine runs on: a backend's services, and the vendors' rate limiter and circuit
 * breakers over its stores (the breakers configured from `CIRCUIT_FAILURES` and `CIRCUIT_OPEN_FOR`).
 *
 * @category layers
 */
export const layerServices = (
  backend: Backend
): Layer.Layer<Services | RateLimiter.RateLimiter | CircuitBreaker.CircuitBreaker, StartupError> =>
  Layer.mergeAll(RateLimiter.layer, VendorCircuit.layerConfig).pipe(Layer.provideMerge(backend.layer))

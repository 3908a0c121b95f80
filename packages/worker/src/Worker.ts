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
  Metrics,
  Port,
  type RateLimiter,
  Sweeper,
  type VendorRegistry,
  type WebhookSignature,
  Workers
} from "@vendorflow/core"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { HttpRouter, type HttpServerError } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import type { CircuitBreaker } from "effect/persistence"
import { createServer } from "node:http"

/**
 * The consumer loops running the engine, the recovery sweeper and the worker's heartbeat; the
 * engine's webhook base URL comes from `PUBLIC_URL`.
 *
 * @category layers
 */
export const layer: Layer.Layer<
  never,
  Config.ConfigError | WebhookSignature.DevelopmentSecret,
  | JobStore.JobStore
  | JobQueue.JobQueue
  | VendorRegistry.VendorRegistry
  | RateLimiter.RateLimiter
  | CircuitBreaker.CircuitBreaker
  | Cleaner.Cleaner
  | Workers.Workers
> = Layer.mergeAll(Consumer.layerConfig, Sweeper.layerConfig, Metrics.layerSampler, Workers.layerHeartbeat).pipe(
  Layer.provide(JobProcessor.layerConfig)
)

/**
 * `GET /metrics` (Prometheus text) on `METRICS_PORT` (and `HOST`), when that is set; off otherwise,
 * so several workers on one host don't contend for a port (in a container, set it: 9464 by convention).
 *
 * @category layers
 */
export const layerMetricsServer: Layer.Layer<never, Config.ConfigError | HttpServerError.ServeError> = Layer.unwrap(
  Effect.gen(function* () {
    const port = yield* Config.option(Config.schema(Port.FromString, "METRICS_PORT"))
    const host = yield* Config.String("HOST").pipe(Config.withDefault("127.0.0.1"))
    if (port._tag === "None") return Layer.empty
    return HttpRouter.serve(PrometheusMetrics.layerHttp({ path: "/metrics" }), { disableLogger: true }).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { port: port.value, host }))
    )
  })
)

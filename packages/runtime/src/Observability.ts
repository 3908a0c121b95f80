/**
 * How a vendorflow process logs and traces, from the environment:
 *
 * - `LOG_LEVEL` (`Trace` … `Fatal`, default `Info`) and `LOG_FORMAT`: `json`, one JSON object a
 *   line (the default when `NODE_ENV=production`, as in the image), or `text`, Effect's one-line
 *   format (the default otherwise). The engine annotates its lines with the job id, vendor and
 *   trace id. Payloads and results are never logged, so no PII reaches a log.
 * - `OTEL_EXPORTER_OTLP_ENDPOINT` set: spans (the `Effect.fn` spans of every public operation) and
 *   metrics go to that OTLP/HTTP collector, as `OTEL_SERVICE_NAME` (default: the process's name).
 *   Unset: tracing is off.
 *
 * @since 0.1.0
 */
import { Config, Effect, Layer, Logger, References } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp } from "effect/observability"

/**
 * The logger and level from `LOG_FORMAT` and `LOG_LEVEL`.
 *
 * @category layers
 */
export const layerLogs: Layer.Layer<never, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function* () {
    const production = (yield* Config.String("NODE_ENV").pipe(Config.withDefault("development"))) === "production"
    const format = yield* Config.Literals(["json", "text"], "LOG_FORMAT").pipe(
      Config.withDefault(production ? ("json" as const) : ("text" as const))
    )
    const level = yield* Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info" as const))
    const minimum = Layer.succeed(References.MinimumLogLevel, level)
    return format === "json" ? Layer.mergeAll(Logger.layer([Logger.consoleJson]), minimum) : minimum
  })
)

/**
 * OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, nothing otherwise.
 *
 * @category layers
 */
export const layerTracing = (serviceName: string): Layer.Layer<never, Config.ConfigError> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const endpoint = yield* Config.option(Config.NonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT"))
      const name = yield* Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault(serviceName))
      if (endpoint._tag === "None") return Layer.empty
      return Otlp.layerJson({ baseUrl: endpoint.value, resource: { serviceName: name } }).pipe(
        Layer.provide(FetchHttpClient.layer)
      )
    })
  )

/**
 * Logs and tracing for the process named `serviceName`.
 *
 * @category layers
 */
export const layer = (serviceName: string): Layer.Layer<never, Config.ConfigError> =>
  Layer.mergeAll(layerLogs, layerTracing(serviceName))

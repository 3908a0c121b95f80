/**
 * Every route of the server, composed from its feature slices: core's `Api` (jobs, webhooks,
 * health, stats) with its middleware (authorization, request validation), `GET /openapi.json`,
 * interactive docs at `GET /docs`, Prometheus metrics at `GET /metrics`, the dashboard at
 * `GET /ui/`, CORS when origins are named, and RFC 9457 problems for everything else.
 *
 * Offers {@link layer} (limit from `MAX_BODY_BYTES`) and {@link layerWith}; serve them with
 * `HttpRouter.serve` (see `Server.ts`).
 *
 * @since 0.1.0
 */
import { Api } from "@vendorflow/core"
// Named only so that tsc can name the layers' types when it writes this module's declarations (TS2742).
// oxlint-disable-next-line no-unused-vars
import type { Access, Health, JobService, VendorRegistry, Workers } from "@vendorflow/core"
import { Config, Duration, Effect, Exit, Layer, Scope } from "effect"
import { HttpRouter } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import * as Authorization from "./Authorization.ts"
import * as Dashboard from "./Dashboard.ts"
import * as HealthRoutes from "./HealthRoutes.ts"
import * as JobRoutes from "./JobRoutes.ts"
import * as Problems from "./Problems.ts"
import * as RequestBody from "./RequestBody.ts"
import * as StatsRoutes from "./StatsRoutes.ts"
import * as WebhookRoutes from "./WebhookRoutes.ts"

/**
 * Options of {@link layerWith}.
 *
 * @category models
 */
export interface Options {
  /** The largest request body accepted, in bytes. */
  readonly maxBodyBytes: number
  /** Origins a browser may call the API from (CORS); none by default, so CORS is off. */
  readonly corsOrigins?: ReadonlyArray<string> | undefined
  /** `/ready` answers 503 while fewer workers than this beat; 0 (the default): workers don't count. */
  readonly readyMinWorkers?: number | undefined
}

/**
 * The CORS origins from `CORS_ORIGINS` (comma-separated, e.g. `https://ops.example.com`; `*` for
 * any); empty by default, and then no CORS headers are sent.
 *
 * @category config
 */
export const corsOriginsConfig: Config.Config<ReadonlyArray<string>> = Config.String("CORS_ORIGINS").pipe(
  Config.withDefault(""),
  Config.map((text) =>
    text
      .split(",")
      .map((origin) => origin.trim())
      .filter((origin) => origin !== "")
  )
)

// What a browser client may send and read across origins.
const corsHeaders = {
  allowedHeaders: ["content-type", "authorization", "x-api-key", "idempotency-key", "if-none-match"],
  exposedHeaders: ["ratelimit", "ratelimit-policy", "retry-after", "etag", "www-authenticate"]
}

// The API reference (`GET /docs`): Effect's Scalar page, built on its first request. Its script is
// 6 MiB, held in the heap once loaded, so a server whose reference nobody opens never loads it
// (docs/operations.md, "Memory").
const docs = HttpRouter.use((router) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    // Kept once built; a build that failed is tried again on the next request.
    const page = yield* Effect.cachedWithTTL(
      HttpRouter.toHttpEffect(HttpApiScalar.layer(Api.Api, { path: "/docs" })).pipe(Scope.provide(scope)),
      (exit) => (Exit.isSuccess(exit) ? Duration.infinity : Duration.zero)
    )
    yield* router.add("GET", "/docs", Effect.flatten(page))
  })
)

/**
 * Every route, for `options`.
 *
 * @category layers
 */
export const layerWith = (options: Options) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(Api.Api, { openapiPath: "/openapi.json" }).pipe(
      Layer.provide(
        Layer.mergeAll(
          JobRoutes.handlers(options),
          WebhookRoutes.handlers(options),
          HealthRoutes.handlers(options),
          StatsRoutes.handlers
        ).pipe(Layer.provide([Problems.requestValidation, Authorization.layer]))
      )
    ),
    docs,
    PrometheusMetrics.layerHttp({ path: "/metrics" }),
    Dashboard.layer,
    Problems.layerWith(options),
    options.corsOrigins === undefined || options.corsOrigins.length === 0
      ? Layer.empty
      : HttpRouter.cors({ allowedOrigins: options.corsOrigins, ...corsHeaders })
  )

/**
 * {@link layerWith} with the body limit from `MAX_BODY_BYTES`.
 *
 * @category layers
 */
export const layer = Layer.unwrap(
  Effect.map(RequestBody.maxBodyBytesConfig, (maxBodyBytes) => layerWith({ maxBodyBytes }))
)

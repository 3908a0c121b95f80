/**
 * The HTTP server: every route (`Routes.ts`) served by Node's `http` server, the plain job
 * requests first offered to the batched transport (`BatchedTransport.ts`), with graceful
 * shutdown (in-flight requests finish, up to `gracefulShutdownTimeout`).
 *
 * Offers {@link layer} (configured from the environment: `PORT`, default 8000; `HOST`, default
 * `127.0.0.1`, so a development all-in-one is not reachable from the network, set `0.0.0.0` in a
 * container; `MAX_BODY_BYTES`; `CORS_ORIGINS`; `READY_MIN_WORKERS`; `LOG_REQUESTS`; `HOT_PATH`),
 * {@link layerWith} (explicit options, e.g. port 0 in tests).
 *
 * @since 0.1.0
 */
import { NodeHttpServer, type NodeServices } from "@effect/platform-node"
import { type Access, type Health, type JobService, Port, type VendorRegistry, type Workers } from "@vendorflow/core"
import { Config, Duration, Effect, Layer } from "effect"
import { type Etag, type HttpPlatform, HttpRouter, type HttpServer, type HttpServerError } from "effect/http"
import { createServer } from "node:http"
import * as BatchedTransport from "./BatchedTransport.ts"
import * as RequestBody from "./RequestBody.ts"
import * as Routes from "./Routes.ts"

/**
 * Options of {@link layerWith}.
 *
 * @category models
 */
export interface Options {
  /** 0 picks a free port; read the bound one from `HttpServer.HttpServer`'s `address`. */
  readonly port: number
  readonly host: string
  /** The largest request body accepted, in bytes; 1 MiB by default. */
  readonly maxBodyBytes?: number | undefined
  /** Origins a browser may call the API from (CORS); none by default. */
  readonly corsOrigins?: ReadonlyArray<string> | undefined
  /** `/ready` answers 503 while fewer workers than this beat; 0 by default (workers don't count). */
  readonly readyMinWorkers?: number | undefined
  /** How long shutdown waits for in-flight requests; 10 seconds by default. */
  readonly gracefulShutdownTimeout?: Duration.Input | undefined
  /** Log one line per request (off by default: it costs throughput, and turns the batched transport off). */
  readonly logRequests?: boolean | undefined
  /** Log the address once listening; on by default. */
  readonly logAddress?: boolean | undefined
  /**
   * Answer the plain `POST /jobs` and `GET /jobs/{id}` on the batched transport
   * (`BatchedTransport.ts`); on by default, off when `logRequests` is on (it logs no request
   * lines) or CORS is (it adds no CORS headers). `HOT_PATH=false` turns it off.
   */
  readonly hotPath?: boolean | undefined
  /**
   * Bind a socket of this process's own on a port that other processes share (`SO_REUSEPORT`, Linux
   * 3.9+; an error at start-up where unsupported): the kernel spreads connections over them. Off by
   * default; `vendorflow-server` turns it on in each of its `SERVER_PROCESSES` (see `Processes.ts`).
   */
  readonly reusePort?: boolean | undefined
}

/**
 * The server's options from the environment.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  port: Port.config("PORT", 8000),
  host: Config.String("HOST").pipe(Config.withDefault("127.0.0.1")),
  maxBodyBytes: RequestBody.maxBodyBytesConfig,
  corsOrigins: Routes.corsOriginsConfig,
  readyMinWorkers: Config.Int("READY_MIN_WORKERS").pipe(Config.withDefault(0)),
  logRequests: Config.Boolean("LOG_REQUESTS").pipe(Config.withDefault(false)),
  hotPath: Config.Boolean("HOT_PATH").pipe(Config.withDefault(true))
})

/**
 * Serves every route on the given address. Exposes the `HttpServer` (and the Node platform
 * services) so a caller can read the bound address.
 *
 * @category layers
 */
export const layerWith = (
  options: Options
): Layer.Layer<
  HttpServer.HttpServer | NodeServices.NodeServices | HttpPlatform.HttpPlatform | Etag.Generator,
  HttpServerError.ServeError,
  JobService.JobService | VendorRegistry.VendorRegistry | Health.Health | Access.Access | Workers.Workers
> =>
  HttpRouter.serve(
    Routes.layerWith({
      maxBodyBytes: options.maxBodyBytes ?? RequestBody.defaultMaxBodyBytes,
      corsOrigins: options.corsOrigins,
      readyMinWorkers: options.readyMinWorkers
    }),
    { disableLogger: options.logRequests !== true, disableListenLog: options.logAddress === false }
  ).pipe(Layer.provideMerge(nodeServer(options)))

const nodeServer = (options: Options) => {
  const listen = {
    port: options.port,
    host: options.host,
    gracefulShutdownTimeout: options.gracefulShutdownTimeout ?? Duration.seconds(10),
    reusePort: options.reusePort === true,
    // A cluster worker otherwise listens on a handle shared from the primary, not a socket of its own.
    exclusive: options.reusePort === true
  }
  const corsOn = options.corsOrigins !== undefined && options.corsOrigins.length > 0
  if (options.hotPath === false || options.logRequests === true || corsOn) {
    return NodeHttpServer.layer(createServer, listen)
  }
  return Layer.unwrap(
    Effect.map(
      BatchedTransport.make({ maxBodyBytes: options.maxBodyBytes ?? RequestBody.defaultMaxBodyBytes }),
      (batched) => NodeHttpServer.layer(() => new BatchedTransport.BatchingServer(batched), listen)
    )
  )
}

/**
 * Serves every route, configured from the environment (see the module docs). Needs the `JobService`
 * service, the vendor registry, health checks, `Access` and the workers' registry.
 *
 * @category layers
 */
export const layer = Layer.unwrap(Effect.map(config, layerWith))

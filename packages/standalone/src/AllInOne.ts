/**
 * Everything in one process: the API, the worker's consumer loops and sweeper, and both mock
 * vendors as real HTTP servers. What `npm start` runs, and what the end-to-end tests start on free
 * ports. From the environment ({@link layer}) it keeps its jobs, queue and limits in one SQLite file
 * (`SQLITE_PATH`, default `./.vendorflow/vendorflow.db`), so a restart or a crash loses nothing;
 * `SQLITE_PATH=:memory:` keeps them in memory, `REDIS_URL` / `MONGODB_URI` as for the server and
 * worker. {@link layerWith} runs on the backend it is given (memory by default).
 *
 * @since 0.1.0
 */
import { MockAsyncServer, MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import { MockSyncServer, MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import {
  Backend,
  Consumer,
  JobProcessor,
  JobService,
  Metrics,
  Port,
  Sweeper,
  type Vendor,
  VendorRegistry,
  Workers
} from "@vendorflow/core"
// Named only so that tsc can name the layers' types when it writes this module's declarations (TS2742).
// oxlint-disable-next-line no-unused-vars
import type { VendorDefinition, WebhookSignature } from "@vendorflow/core"
import { Backends } from "@vendorflow/runtime"
import { Config, Effect, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { Server } from "@vendorflow/server"

/**
 * Where things listen, and overrides for the mock vendors (tests make them fast and strict).
 *
 * @category models
 */
export interface Options {
  readonly server: Server.Options
  readonly mockSync?: MockSyncServer.Options | undefined
  readonly mockAsync?: MockAsyncServer.Options | undefined
  /** The sync vendor's limit, kept by the worker; default from `MOCK_SYNC_RATE_LIMIT`. */
  readonly syncRateLimit?: Vendor.RateLimit | undefined
  /** Our base URL as vendors reach it; default the bound address of the API. */
  readonly publicUrl?: string | undefined
  /** Where jobs, queue and limits are kept; default memory. */
  readonly backend?: Backend.Backend | undefined
  /**
   * Mock vendors already running elsewhere (`MOCK_SYNC_URL`, `MOCK_ASYNC_URL`) to call instead of
   * the process's own: whole-system tests keep the vendors' records across a restart so.
   */
  readonly vendorUrls?: { readonly sync?: string | undefined; readonly async?: string | undefined } | undefined
}

const vendors = (options: Options) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const sync = yield* MockSyncServer.MockSyncServer
      const async = yield* MockAsyncServer.MockAsyncServer
      const syncOptions = yield* MockSyncVendor.config
      const asyncOptions = yield* MockAsyncVendor.config
      return VendorRegistry.layer([
        MockSyncVendor.make({
          ...syncOptions,
          baseUrl: options.vendorUrls?.sync ?? sync.url,
          rateLimit: options.syncRateLimit ?? syncOptions.rateLimit
        }),
        MockAsyncVendor.make({ ...asyncOptions, baseUrl: options.vendorUrls?.async ?? async.url })
      ])
    })
  ).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        MockSyncServer.layerConfig({ port: MockSyncServer.defaultPort, ...options.mockSync }),
        MockAsyncServer.layerConfig({ port: MockAsyncServer.defaultPort, ...options.mockAsync })
      )
    )
  )

// The consumer must know our URL for async vendors' callbacks, which with port 0 is known only
// once the server is listening.
const engine = (publicUrl: string | undefined) =>
  Layer.unwrap(
    HttpServer.addressFormattedWith((address) =>
      Effect.succeed(
        Layer.mergeAll(Consumer.layerConfig, Sweeper.layerConfig, Metrics.layerSampler, Workers.layerHeartbeat).pipe(
          Layer.provide(JobProcessor.layer({ webhookBaseUrl: publicUrl ?? address }))
        )
      )
    )
  )

/**
 * The whole system on `options.backend` (memory by default). Exposes the `HttpServer` (its bound address), the `JobService`
 * service, the store, and both mock vendor servers, so tests can look inside.
 *
 * @category layers
 */
export const layerWith = (options: Options) => {
  const backends = Backends.layerWith(options.backend ?? Backend.memory)
  const api = Server.layerWith(options.server).pipe(Layer.provideMerge(JobService.layer))
  return engine(options.publicUrl).pipe(
    Layer.provideMerge(api),
    Layer.provideMerge(backends),
    Layer.provideMerge(vendors(options))
  )
}

/**
 * The whole system configured from the environment: `PORT` (8000), `HOST`, `PUBLIC_URL`, the
 * backend (`SQLITE_PATH`, `REDIS_URL`, `MONGODB_URI`: see `Backends.allInOneChoice`), and the
 * mock vendors' variables, with the mock vendors on `MOCK_SYNC_PORT` (8001) and `MOCK_ASYNC_PORT`
 * (8002), or called at `MOCK_SYNC_URL` / `MOCK_ASYNC_URL` when those are set.
 *
 * @category layers
 */
export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const chosen = yield* Backends.allInOneChoice
    const backend = yield* Backends.backendFor(chosen)
    const sync = yield* Config.option(Config.NonEmptyString("MOCK_SYNC_URL"))
    const async = yield* Config.option(Config.NonEmptyString("MOCK_ASYNC_URL"))
    const server = yield* Server.config
    const syncPort = yield* Port.config("MOCK_SYNC_PORT", MockSyncServer.defaultPort)
    const asyncPort = yield* Port.config("MOCK_ASYNC_PORT", MockAsyncServer.defaultPort)
    const publicUrl = yield* Config.String("PUBLIC_URL").pipe(Config.option)
    return layerWith({
      server,
      mockSync: { port: syncPort },
      mockAsync: { port: asyncPort },
      publicUrl: publicUrl._tag === "Some" ? publicUrl.value : undefined,
      backend,
      vendorUrls: { sync: Option.getOrUndefined(sync), async: Option.getOrUndefined(async) }
    })
  })
)

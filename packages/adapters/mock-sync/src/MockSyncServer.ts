/**
 * The reference synchronous vendor: a real HTTP server that answers `POST /process` with its data
 * after a random latency, under its own rate limit, and records every arrival.
 *
 * Routes: `POST /process` `{ job_id, payload }` → 200 `{ success: true, data }` (429 over the limit,
 * 400 on a bad body); `GET /health`; `GET /arrivals`, `DELETE /arrivals`.
 *
 * Layers: {@link layer} (options in code, tests use port 0) and {@link layerConfig} (env, for `bin.ts`).
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import * as MockVendorServer from "./MockVendorServer.ts"

/**
 * How the server behaves.
 *
 * @category models
 */
export interface Options {
  readonly host?: string | undefined
  /** 0 picks a free port; default 0. */
  readonly port?: number | undefined
  /** Default uniform 100–500 ms. */
  readonly latencyMs?: MockVendorServer.MillisRange | undefined
  /** Default none. */
  readonly rateLimit?: MockVendorServer.RateLimit | undefined
  /** How often an answer carries `user_info`; default 0.3. */
  readonly userInfoProbability?: number | undefined
}

/**
 * The default latency: uniform 100–500 ms.
 *
 * @category constants
 */
export const defaultLatencyMs: MockVendorServer.MillisRange = { min: 100, max: 500 }

/**
 * How often an answer carries `user_info` by default.
 *
 * @category constants
 */
export const defaultUserInfoProbability = 0.3

/**
 * The port `bin.ts` listens on when `PORT` is unset.
 *
 * @category constants
 */
export const defaultPort = 8001

/**
 * A running mock sync vendor.
 *
 * @category services
 */
export class MockSyncServer extends Context.Service<MockSyncServer, MockVendorServer.Running>()(
  "@vendorflow/adapter-mock-sync/MockSyncServer"
) {}

const ProcessBody = Schema.Struct(MockVendorServer.ProcessFields)

/**
 * Starts the server for the life of the scope.
 *
 * @category constructors
 */
export const make = (options: Options = {}) => {
  const latency = options.latencyMs ?? defaultLatencyMs
  const userInfoProbability = options.userInfoProbability ?? defaultUserInfoProbability
  return MockVendorServer.serve({
    name: "mock-sync",
    host: options.host,
    port: options.port,
    rateLimit: options.rateLimit,
    body: ProcessBody,
    process: (body) =>
      Effect.gen(function*() {
        const millis = yield* MockVendorServer.drawMillis(latency)
        yield* Effect.sleep(millis)
        const data = yield* MockVendorServer.makeData({
          vendorType: "sync",
          jobId: body.job_id,
          payload: body.payload,
          processingTimeMs: millis,
          userInfoProbability
        })
        return HttpServerResponse.jsonUnsafe({ success: true, data })
      })
  })
}

/**
 * The server as a layer.
 *
 * @category layers
 */
export const layer = (options: Options = {}) => Layer.effect(MockSyncServer, make(options))

/**
 * The options from env: `PORT` (default 8001), `HOST` (default 127.0.0.1), `MOCK_SYNC_LATENCY_MS`
 * (`"100-500"` or `"0"`), `MOCK_SYNC_RATE_LIMIT` (`"5/1s"` or `"5"`), `MOCK_SYNC_USER_INFO_PROBABILITY`.
 * `PORT` and `HOST` are the process's own, so this suits a process that runs this vendor alone.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  listen: MockVendorServer.listenConfig(defaultPort),
  latencyMs: Config.schema(MockVendorServer.MillisRangeFromString, "MOCK_SYNC_LATENCY_MS").pipe(
    Config.withDefault(defaultLatencyMs)
  ),
  rateLimit: Config.option(Config.schema(MockVendorServer.RateLimitFromString, "MOCK_SYNC_RATE_LIMIT")).pipe(
    Config.map(Option.getOrUndefined)
  ),
  userInfoProbability: Config.Number("MOCK_SYNC_USER_INFO_PROBABILITY").pipe(
    Config.withDefault(defaultUserInfoProbability)
  )
}).pipe(Config.map(({ listen, ...options }) => ({ ...listen, ...options })))

/**
 * The server as a layer configured from env (see {@link config}); `overrides` win over env.
 *
 * @category layers
 */
export const layerConfig = (overrides: Options = {}) =>
  Layer.effect(MockSyncServer, Effect.flatMap(config, (options) => make({ ...options, ...overrides })))

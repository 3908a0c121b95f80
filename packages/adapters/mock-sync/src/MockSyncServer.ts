/**
 * The reference synchronous vendor: a real HTTP server that answers `POST /process` with its data
 * after a random latency, under its own rate limit, and records every arrival. It misbehaves on cue
 * when given scripted faults (the kit's `FaultScript`, `MOCK_SYNC_FAULTS`, `MOCK_SYNC_OUTAGES`).
 *
 * Routes: `POST /process` `{ job_id, payload }` → 200 `{ success: true, data }` (429 over the limit,
 * 400 on a bad body); `GET /health`; `GET /arrivals`, `DELETE /arrivals`.
 *
 * Layers: {@link layer} (options in code, tests use port 0) and {@link layerConfig} (env, for `bin.ts`).
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Schema, type Scope } from "effect"
import type { HttpServerError } from "effect/http"
import * as MockVendorServer from "./MockVendorServer.ts"

/**
 * How the server behaves.
 *
 * @category models
 */
export interface Options extends MockVendorServer.ServerOptions {
  /** Default uniform 100–500 ms. */
  readonly latencyMs?: MockVendorServer.MillisRange | undefined
}

/**
 * The default latency: uniform 100–500 ms.
 *
 * @category constants
 */
export const defaultLatencyMs: MockVendorServer.MillisRange = { min: 100, max: 500 }

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
export const make = (
  options: Options = {}
): Effect.Effect<MockVendorServer.Running, HttpServerError.ServeError, Scope.Scope> =>
  MockVendorServer.serve({
    name: "mock-sync",
    host: options.host,
    port: options.port,
    rateLimit: options.rateLimit,
    faults: options.faults,
    outages: options.outages,
    body: ProcessBody,
    process: (body) =>
      MockVendorServer.work({
        vendorType: "sync",
        within: options.latencyMs ?? defaultLatencyMs,
        body,
        userInfoProbability: options.userInfoProbability
      }).pipe(Effect.map((data) => ({ status: 200, json: { success: true, data } })))
  })

/**
 * The server as a layer.
 *
 * @category layers
 */
export const layer = (options: Options = {}) => Layer.effect(MockSyncServer, make(options))

/**
 * The options from env: `PORT` (default 8001), `HOST` (default 127.0.0.1), `MOCK_SYNC_LATENCY_MS`
 * (`"100-500"` or `"0"`), `MOCK_SYNC_RATE_LIMIT` (`"5/1s"` or `"5"`), `MOCK_SYNC_USER_INFO_PROBABILITY`,
 * `MOCK_SYNC_FAULTS` and `MOCK_SYNC_OUTAGES` (scripted faults, see `FaultScript`: `"503x3|ok|slow:3000"`,
 * `"503:1000-7000"`).
 * `PORT` and `HOST` are the process's own, so this suits a process that runs this vendor alone.
 *
 * @category config
 */
export const config: Config.Config<Options> = MockVendorServer.serverConfig({
  prefix: "MOCK_SYNC",
  defaultPort,
  timingName: "LATENCY_MS",
  defaultTiming: defaultLatencyMs
}).pipe(Config.map(({ timing, ...options }) => ({ ...options, latencyMs: timing })))

/**
 * The server as a layer configured from env (see {@link config}); `overrides` win over env.
 *
 * @category layers
 */
export const layerConfig = (overrides: Options = {}) =>
  Layer.effect(
    MockSyncServer,
    Effect.flatMap(config, (options) => make({ ...options, ...overrides }))
  )

/**
 * The adapter for the reference synchronous vendor: `call` POSTs the job to `/process` and the
 * vendor's `data` is the job's result. Failures are classified by `Vendor.postJson`.
 *
 * Constructors: {@link make} (options in code) and {@link fromConfig} (`MOCK_SYNC_URL`,
 * `MOCK_SYNC_RATE_LIMIT`).
 *
 * @since 0.1.0
 */
import { Job, type Vendor } from "@vendorflow/core"
import { Config, Effect, Schema } from "effect"
import type { HttpClient } from "effect/http"
import * as MockVendorAdapter from "./MockVendorAdapter.ts"
import * as MockVendorServer from "./MockVendorServer.ts"

/**
 * How to reach and use the vendor; the name defaults to `"sync"`.
 *
 * @category models
 */
export type Options = MockVendorAdapter.Options

/**
 * Where the vendor listens when `MOCK_SYNC_URL` is unset.
 *
 * @category constants
 */
export const defaultUrl = "http://127.0.0.1:8001"

/**
 * The vendor's answer to `POST /process`; `data` is kept whole, unknown fields included.
 *
 * @category schemas
 */
export const ProcessAnswer = Schema.Struct({ success: Schema.Literal(true), data: Job.JsonObject })

/**
 * The adapter. It keeps the `HttpClient` it was made with.
 *
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Vendor.Vendor, never, HttpClient.HttpClient> =>
  MockVendorAdapter.make({
    ...options,
    defaultName: "sync",
    mode: "sync",
    body: (request) => ({ job_id: request.jobId, payload: request.payload }),
    answer: ProcessAnswer,
    outcome: (answer) => ({ _tag: "Completed", result: answer.data })
  })

/**
 * The options from env: `MOCK_SYNC_URL` (default http://127.0.0.1:8001) and `MOCK_SYNC_RATE_LIMIT`
 * (the same variable the server reads, so one setting tells both the vendor and the worker).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  baseUrl: Config.String("MOCK_SYNC_URL").pipe(Config.withDefault(defaultUrl)),
  rateLimit: MockVendorServer.vendorRateLimitConfig("MOCK_SYNC_RATE_LIMIT")
})

/**
 * The adapter configured from env (see {@link config}).
 *
 * @category constructors
 */
export const fromConfig: Effect.Effect<Vendor.Vendor, Config.ConfigError, HttpClient.HttpClient> = Effect.flatMap(
  config,
  make
)

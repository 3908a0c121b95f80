/**
 * The adapter for the reference synchronous vendor: `call` POSTs the job to `/process` and the
 * vendor's `data` is the job's result. Failures are classified by `Vendor.postJson`.
 *
 * Constructors: {@link make} (options in code) and {@link fromConfig} (`MOCK_SYNC_URL`,
 * `MOCK_SYNC_RATE_LIMIT`).
 *
 * @since 0.1.0
 */
import { Job, Vendor } from "@vendorflow/core"
import type { Cleaner } from "@vendorflow/core"
import { Config, Duration, Effect, Option, Schema } from "effect"
import { HttpClient } from "effect/http"
import * as MockVendorServer from "./MockVendorServer.ts"

/**
 * How to reach and use the vendor.
 *
 * @category models
 */
export interface Options {
  /** Where the vendor listens, e.g. `http://127.0.0.1:8001`. */
  readonly baseUrl: string
  /** Default `"sync"`. */
  readonly name?: string | undefined
  /** How long one call may take; default 10 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** The vendor's limit, which the worker keeps to; default none. */
  readonly rateLimit?: Vendor.RateLimit | undefined
  /** Calls one worker runs at once; default 5. */
  readonly concurrency?: number | undefined
  readonly cleaning?: Cleaner.CleanerRules | undefined
}

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
export const make = Effect.fnUntraced(function*(options: Options): Effect.fn.Return<
  Vendor.Vendor,
  never,
  HttpClient.HttpClient
> {
  const client = yield* HttpClient.HttpClient
  const name = options.name ?? "sync"
  const url = `${options.baseUrl.replace(/\/+$/, "")}/process`
  const timeout = options.timeout ?? Duration.seconds(10)
  const call = Effect.fn("MockSyncVendor.call")(function*(request: Vendor.VendorRequest) {
    const answer = yield* Vendor.postJson({
      vendor: name,
      url,
      body: { job_id: request.jobId, payload: request.payload },
      idempotencyKey: request.jobId,
      schema: ProcessAnswer,
      timeout
    }).pipe(Effect.provideService(HttpClient.HttpClient, client))
    return { _tag: "Completed", result: answer.data } as const
  })
  return {
    name,
    mode: "sync",
    rateLimit: options.rateLimit,
    concurrency: options.concurrency ?? 5,
    cleaning: options.cleaning,
    call
  }
})

/**
 * A server-side {@link MockVendorServer.RateLimit} as the limit the worker keeps to.
 *
 * @category conversions
 */
export const toVendorRateLimit = (limit: MockVendorServer.RateLimit): Vendor.RateLimit => ({
  limit: limit.limit,
  window: Duration.millis(limit.windowMs)
})

/**
 * The options from env: `MOCK_SYNC_URL` (default http://127.0.0.1:8001) and `MOCK_SYNC_RATE_LIMIT`
 * (the same variable the server reads, so one setting tells both the vendor and the worker).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  baseUrl: Config.String("MOCK_SYNC_URL").pipe(Config.withDefault(defaultUrl)),
  rateLimit: Config.option(Config.schema(MockVendorServer.RateLimitFromString, "MOCK_SYNC_RATE_LIMIT"))
}).pipe(Config.map(({ baseUrl, rateLimit }) => ({ baseUrl, rateLimit: Option.getOrUndefined(Option.map(rateLimit, toVendorRateLimit)) })))

/**
 * The adapter configured from env (see {@link config}).
 *
 * @category constructors
 */
export const fromConfig: Effect.Effect<Vendor.Vendor, Config.ConfigError, HttpClient.HttpClient> = Effect.flatMap(
  config,
  make
)

/**
 * What the adapters of the mock vendors share: their options and a `Vendor` whose `call` POSTs the
 * job to `<baseUrl>/process` through `Vendor.postJson`, so failures are classified the same way.
 *
 * @since 0.1.0
 */
import type { Cleaner } from "@vendorflow/core"
import { Vendor } from "@vendorflow/core"
import { Duration, Effect, type Schema } from "effect"
import { HttpClient } from "effect/http"

/**
 * How to reach and use a mock vendor.
 *
 * @category models
 */
export interface Options {
  /** Where the vendor listens, e.g. `http://127.0.0.1:8001`. */
  readonly baseUrl: string
  /** The name jobs use to pick this vendor. */
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
 * A `Vendor` for a mock vendor: `body` is what to POST for a request, `answer` the schema of a 2xx
 * answer and `outcome` what it means. It keeps the `HttpClient` it was made with.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* <S extends Schema.Top>(
  options: Options & {
    readonly defaultName: string
    readonly mode: Vendor.Vendor["mode"]
    readonly body: (request: Vendor.VendorRequest) => object
    readonly answer: S & Schema.Codec<S["Type"], S["Encoded"], never, never>
    readonly outcome: (answer: S["Type"]) => Vendor.VendorOutcome
  }
): Effect.fn.Return<Vendor.Vendor, never, HttpClient.HttpClient> {
  const client = yield* HttpClient.HttpClient
  const name = options.name ?? options.defaultName
  const url = `${options.baseUrl.replace(/\/+$/, "")}/process`
  const timeout = options.timeout ?? Duration.seconds(10)
  const call = (request: Vendor.VendorRequest) =>
    Vendor.postJson({
      vendor: name,
      url,
      body: options.body(request),
      idempotencyKey: request.jobId,
      schema: options.answer,
      timeout
    }).pipe(
      Effect.map(options.outcome),
      Effect.provideService(HttpClient.HttpClient, client),
      Effect.withSpan("MockVendorAdapter.call", { attributes: { vendor: name, jobId: request.jobId } })
    )
  return {
    name,
    mode: options.mode,
    rateLimit: options.rateLimit,
    concurrency: options.concurrency ?? 5,
    cleaning: options.cleaning,
    call
  }
})

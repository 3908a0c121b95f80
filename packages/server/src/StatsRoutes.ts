/**
 * Core's `stats` group: `GET /stats`, the operator's dashboard figures. Calls, outcomes and
 * latencies come from the process's collector (`Stats`), each vendor's backlog, circuit, learned
 * limit and calls in flight from the queue, breaker and rate-limit store this process shares with
 * the workers. Needs an API key when keys are on.
 *
 * @since 0.1.0
 */
import { Api, JobQueue, RateLimiter, Stats, VendorRegistry } from "@vendorflow/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CircuitBreaker } from "effect/persistence"
import * as HealthRoutes from "./HealthRoutes.ts"

/**
 * The handler of `GET /stats`.
 *
 * @category handlers
 */
export const handlers = HttpApiBuilder.group(
  Api.Api,
  "stats",
  Effect.fnUntraced(function* (handlers) {
    const registry = yield* VendorRegistry.VendorRegistry
    const queue = yield* Effect.serviceOption(JobQueue.JobQueue)
    const collector = yield* Stats.Stats
    const circuit = HealthRoutes.circuitState(yield* Effect.serviceOption(CircuitBreaker.CircuitBreaker))
    const vendors = registry.vendors.map((vendor) => ({
      name: vendor.name,
      mode: vendor.mode,
      rateLimit: vendor.rateLimit,
      maxInFlight: vendor.maxInFlight
    }))
    const limiter = yield* Effect.serviceOption(RateLimiter.RateLimiter)
    const limits = (vendor: string): Effect.Effect<Stats.LimitState | undefined> =>
      limiter._tag === "Some"
        ? limiter.value.snapshot(vendor).pipe(Effect.orElseSucceed(() => undefined))
        : Effect.succeed(undefined)
    const backlog = (vendor: string): Effect.Effect<number | undefined> =>
      queue._tag === "Some"
        ? queue.value.depth(vendor).pipe(Effect.orElseSucceed(() => undefined))
        : Effect.succeed(undefined)
    const report = Stats.report({ vendors, backlog, circuit, limits }).pipe(
      Effect.provideService(Stats.Stats, collector)
    )
    return handlers.handle("stats", () => report)
  })
)

/**
 * Core's `system` group: `GET /health` (liveness: always 200 while the process serves, saying
 * what is degraded) and `GET /ready` (readiness: 503 while a backend is down, or fewer workers
 * beat than `READY_MIN_WORKERS`), each with the loaded vendors, their circuits and the live
 * workers. Probes carry no client identity, so no API key is asked for.
 *
 * @since 0.1.0
 */
import { Api, Health, VendorCircuit, VendorRegistry, Workers } from "@vendorflow/core"
import { Effect, type Option } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CircuitBreaker } from "effect/persistence"

/**
 * A vendor's circuit as the breaker's store has it: `Closed`, `Open`, `HalfOpen`, or `Unknown`
 * (no breaker in this process, or its store did not answer).
 *
 * @category circuits
 */
export const circuitState =
  (breaker: Option.Option<CircuitBreaker.CircuitBreaker>) =>
  (vendor: string): Effect.Effect<string> =>
    breaker._tag === "Some"
      ? breaker.value.state(VendorCircuit.key(vendor)).pipe(
          Effect.map((state): string => state._tag),
          Effect.orElseSucceed(() => "Unknown")
        )
      : Effect.succeed("Unknown")

/**
 * The handlers of `GET /health` and `GET /ready`; `/ready` counts the workers when
 * `readyMinWorkers` is above 0.
 *
 * @category handlers
 */
export const handlers = (options: { readonly readyMinWorkers?: number | undefined }) =>
  HttpApiBuilder.group(
    Api.Api,
    "system",
    Effect.fnUntraced(function* (handlers) {
      const registry = yield* VendorRegistry.VendorRegistry
      const health = yield* Health.Health
      const vendors = registry.vendors.map((vendor) => vendor.name)
      const breaker = yield* Effect.serviceOption(CircuitBreaker.CircuitBreaker)
      const circuitOf = circuitState(breaker)
      // Each vendor's circuit as the shared store has it (when this process has a breaker).
      const circuits = Effect.forEach(breaker._tag === "Some" ? vendors : [], (vendor) =>
        Effect.map(circuitOf(vendor), (state) => [vendor, state] as const)
      ).pipe(Effect.map((entries) => Object.fromEntries(entries)))
      const workers = yield* Workers.Workers
      const readyMinWorkers = options.readyMinWorkers ?? 0
      // The workers are read once a request: listed in the report, and, when asked to, counted for
      // readiness (an API without workers still takes jobs).
      const report = Effect.gen(function* () {
        const read = yield* Effect.result(workers.alive)
        if (read._tag === "Failure") yield* Effect.logWarning("cannot read the workers' heartbeats", read.failure)
        const beats = read._tag === "Success" ? read.success : []
        const workersCheck: ReadonlyArray<Health.Check> =
          readyMinWorkers > 0
            ? [
                {
                  name: "workers",
                  check:
                    read._tag === "Failure"
                      ? Effect.fail(read.failure)
                      : beats.length >= readyMinWorkers
                        ? Effect.void
                        : Effect.fail({
                            message: `${beats.length} live worker(s), READY_MIN_WORKERS is ${readyMinWorkers}`
                          })
                }
              ]
            : []
        const checked = Health.Health.of({ checks: [...health.checks, ...workersCheck] })
        const result = yield* Health.report.pipe(Effect.provideService(Health.Health, checked))
        return { ...result, circuits: yield* circuits, workers: beats }
      })
      return handlers
        .handle("health", () => Effect.map(report, (result) => ({ ...result, vendors })))
        .handle("ready", () =>
          Effect.flatMap(report, (result) =>
            result.status === "ok"
              ? Effect.succeed({ ...result, vendors })
              : Effect.fail(
                  new Api.NotReady({
                    detail: `not ready: ${Object.entries(result.checks)
                      .filter(([, check]) => check.status === "down")
                      .map(([name]) => name)
                      .join(", ")} down`,
                    checks: result.checks
                  })
                )
          )
        )
    })
  )

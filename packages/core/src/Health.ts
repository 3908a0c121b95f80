/**
 * Health: what this process depends on (Redis, MongoDB, …) and whether each answers now.
 *
 * Backends register a check when they are composed; `/health` reports them. An embedded process
 * has none and is healthy while it runs.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer } from "effect"

/**
 * One dependency and how to ask it whether it is there.
 *
 * @category models
 */
export interface Check {
  readonly name: string
  readonly check: Effect.Effect<unknown, { readonly message: string }>
}

/**
 * What a report says of one dependency.
 *
 * @category models
 */
export type CheckResult =
  | { readonly status: "up"; readonly millis: number }
  | { readonly status: "down"; readonly error: string }

/**
 * A report: `ok` when every dependency answered, else `degraded`.
 *
 * @category models
 */
export interface Report {
  readonly status: "ok" | "degraded"
  readonly checks: Readonly<Record<string, CheckResult>>
}

/**
 * The health service.
 *
 * @category services
 */
export class Health extends Context.Service<Health, { readonly checks: ReadonlyArray<Check> }>()(
  "@vendorflow/core/Health"
) {}

/**
 * How long one check may take before it counts as down.
 *
 * @category constants
 */
export const checkTimeout = Duration.seconds(1)

/**
 * Runs every check at once, each bounded by {@link checkTimeout}.
 *
 * @category reporting
 */
export const report: Effect.Effect<Report, never, Health> = Effect.gen(function* () {
  const { checks } = yield* Health
  const results = yield* Effect.forEach(
    checks,
    ({ name, check }) =>
      check.pipe(
        Effect.timed,
        Effect.timeoutOrElse({
          duration: checkTimeout,
          orElse: () => Effect.fail({ message: `no answer within ${Duration.format(checkTimeout)}` })
        }),
        Effect.match({
          onSuccess: ([elapsed]): CheckResult => ({ status: "up", millis: Math.round(Duration.toMillis(elapsed)) }),
          onFailure: (error): CheckResult => ({ status: "down", error: error.message })
        }),
        Effect.map((result) => [name, result] as const)
      ),
    { concurrency: "unbounded" }
  )
  return {
    status: results.every(([, result]) => result.status === "up") ? "ok" : "degraded",
    checks: Object.fromEntries(results)
  }
})

/**
 * Health over the given checks.
 *
 * @category layers
 */
export const layer = (checks: ReadonlyArray<Check>): Layer.Layer<Health> => Layer.succeed(Health, Health.of({ checks }))

/**
 * Health with `check` listed before the checks of the Health below it: how a part of a backend on a
 * server of its own (a job store) adds that server to the checks of the rest.
 *
 * @category layers
 */
export const layerAdding = <R>(check: Effect.Effect<Check, never, R>): Layer.Layer<Health, never, Health | R> =>
  Layer.effect(
    Health,
    Effect.gen(function* () {
      const below = yield* Health
      return Health.of({ checks: [yield* check, ...below.checks] })
    })
  )

/**
 * Health with no dependencies: the embedded process.
 *
 * @category layers
 */
export const layerNone: Layer.Layer<Health> = layer([])

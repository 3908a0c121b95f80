/**
 * Circuit breaking per vendor, built on `effect/persistence/CircuitBreaker`: after repeated
 * failures a vendor's circuit opens and its jobs wait (they are not failed and spend no attempt)
 * until a half-open probe succeeds.
 *
 * What counts: a vendor that is down (`Unavailable`: network errors, timeouts, 5xx) is a failure; a
 * rate limit (`RateLimited`) says nothing of its health and is ignored; a refusal or an answer we
 * cannot read (`Rejected`, `InvalidResponse`) shows the vendor is up, and counts as a success.
 *
 * Offers {@link layerMemory} (one process) and {@link layer} over any circuit breaker store;
 * `@vendorflow/redis` offers the store through Redis, so every worker sees one circuit per vendor,
 * seen through {@link withLocalView} so that a healthy vendor's calls cost no round trip to it.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Config, Duration, Effect, Exit, Layer, Option, Schedule } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { VendorError } from "./Vendor.ts"

/**
 * When a circuit opens and for how long.
 *
 * @category models
 */
export interface Options {
  /** Consecutive failures that open a vendor's circuit; default 5. */
  readonly failures?: number | undefined
  /** How long the first opening lasts; it doubles on each reopening, up to 5 minutes. Default 5 s. */
  readonly openFor?: Duration.Input | undefined
}

/**
 * The longest one opening lasts, however often the circuit reopens.
 *
 * @category constants
 */
export const maxOpenFor = Duration.minutes(5)

/**
 * The key of a vendor's circuit.
 *
 * @category keys
 */
export const key = (vendor: string): string => `vendor:${vendor}`

/**
 * How a vendor call's outcome counts, see the module docs.
 *
 * @category classification
 */
export const classify = <A, E>(exit: Exit.Exit<A, E>): CircuitBreaker.Outcome => {
  if (Exit.isSuccess(exit)) return CircuitBreaker.success
  const error = Cause.findErrorOption(exit.cause)
  // Interrupted, or failed before the vendor was called (its rate limiter's store was down).
  if (Option.isNone(error) || !(error.value instanceof VendorError)) return CircuitBreaker.ignored
  if (error.value.reason === "Unavailable") return CircuitBreaker.failure()
  return error.value.reason === "RateLimited" ? CircuitBreaker.ignored : CircuitBreaker.success
}

/**
 * How long a process trusts its own view of a closed circuit before it asks the shared store again.
 *
 * @category constants
 */
export const localViewMillis = 1000

/**
 * A shared store seen through this process's view of its closed circuits. Asking a shared store
 * to admit every call and to record every success would cost each job two round trips to Redis
 * and their CPU, while a healthy vendor's circuit never changes. So:
 *
 * - a circuit the store said was closed is taken as closed, under the same generation, for
 *   {@link localViewMillis}; then the store is asked again. A circuit opened by another process
 *   is seen within that time; one opened by this process's own outcome, at once;
 * - every failure is recorded, and so is the first success after a failure of this process, which
 *   ends the streak it was part of. Other successes change nothing in a closed circuit whose
 *   streak is already over, and are not sent;
 * - open and half-open circuits, and probes, always go to the store.
 *
 * The cost: a streak of failures from other processes is ended by this process's successes only
 * when this process has failed too, so with several workers a circuit can open on failures that
 * successes elsewhere interleaved; and calls admitted under a view may run for up to
 * {@link localViewMillis} after another process opened the circuit (their outcomes, stamped with
 * the old generation, are then dropped by the store).
 *
 * @category constructors
 */
export const withLocalView = (
  store: CircuitBreaker.CircuitBreakerStore["Service"],
  options: { readonly refreshMillis?: number | undefined } = {}
): CircuitBreaker.CircuitBreakerStore["Service"] => {
  const refreshMillis = options.refreshMillis ?? localViewMillis
  // Per circuit key: what the store last said of a closed circuit, and whether this process has
  // recorded a failure since it last recorded a success.
  const views = new Map<string, { generation: number; consecutiveOpenings: number; seenAt: number }>()
  const failedSinceSuccess = new Set<string>()
  return {
    admit: (key) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const view = views.get(key)
        if (view !== undefined && now - view.seenAt < refreshMillis) {
          return Effect.succeed({ ...view, probe: false, transition: undefined })
        }
        return store.admit(key).pipe(
          Effect.tap((admission) =>
            Effect.sync(() => {
              if (admission.probe) views.delete(key)
              else views.set(key, { ...admission, seenAt: now })
            })
          ),
          Effect.tapError(() => Effect.sync(() => views.delete(key)))
        )
      }),
    record: (options) => {
      const { key, outcome } = options
      // A view exists only for a closed circuit admitted without a probe: there, an ignored outcome
      // changes nothing, and neither does a success that ends no streak of this process's.
      const unchanged = outcome === "Ignored" || (outcome === "Success" && !failedSinceSuccess.has(key))
      if (views.has(key) && unchanged) return Effect.undefined
      if (outcome === "Failure") failedSinceSuccess.add(key)
      if (outcome === "Success") failedSinceSuccess.delete(key)
      // The circuit changed (this outcome opened it, or closed it after a probe): ask the store next time.
      return Effect.tap(store.record(options), (transition) =>
        Effect.sync(() => {
          if (transition !== undefined) views.delete(key)
        })
      )
    },
    state: store.state
  }
}

/**
 * The breaker over a provided `CircuitBreakerStore`.
 *
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<CircuitBreaker.CircuitBreaker, never, CircuitBreaker.CircuitBreakerStore> =>
  CircuitBreaker.layer({
    tripPolicy: CircuitBreaker.consecutive(options.failures ?? 5),
    openDuration: Schedule.min([
      Schedule.exponential(Duration.fromInputUnsafe(options.openFor ?? Duration.seconds(5))),
      Schedule.spaced(maxOpenFor)
    ])
  })

/**
 * The options from `CIRCUIT_FAILURES` and `CIRCUIT_OPEN_FOR`.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  failures: Config.Int("CIRCUIT_FAILURES").pipe(Config.withDefault(5)),
  openFor: Config.Duration("CIRCUIT_OPEN_FOR").pipe(Config.withDefault(Duration.seconds(5)))
})

/**
 * The breaker configured from the environment, over a provided store.
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<
  CircuitBreaker.CircuitBreaker,
  Config.ConfigError,
  CircuitBreaker.CircuitBreakerStore
> = Layer.unwrap(Effect.map(config, layer))

/**
 * The breaker with its state in this process.
 *
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<CircuitBreaker.CircuitBreaker> =>
  layer(options).pipe(Layer.provide(CircuitBreaker.layerStoreMemory()))

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
 * `@vendorflow/redis` offers the store through Redis, so every worker sees one circuit per vendor.
 *
 * @since 0.1.0
 */
import { Cause, Config, Duration, Effect, Exit, Layer, Option, Schedule } from "effect"
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

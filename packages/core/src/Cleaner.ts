/**
 * The Cleaner: trims strings and removes PII from vendor answers before they are stored or logged.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"

/**
 * Per-vendor cleaning rules, added to the defaults.
 *
 * @category models
 */
export interface CleanerRules {
  /** More keys whose values are always redacted (matched like the built-in ones). */
  readonly piiKeys?: ReadonlyArray<string> | undefined
  /** Keys whose values are left exactly as they are (neither trimmed nor redacted). */
  readonly keepKeys?: ReadonlyArray<string> | undefined
  /** Whether PII inside free text is found by pattern; default true. */
  readonly redactPatterns?: boolean | undefined
}

/**
 * Cleans a JSON value: TODO(#2) the full implementation.
 *
 * @category cleaning
 */
export const clean = (value: unknown, _rules?: CleanerRules): unknown => value

/**
 * The Cleaner service.
 *
 * @category services
 */
export class Cleaner extends Context.Service<Cleaner, {
  readonly clean: (value: unknown, rules?: CleanerRules) => Effect.Effect<unknown>
}>()("@vendorflow/core/Cleaner") {
  static readonly layer = Layer.succeed(Cleaner, Cleaner.of({ clean: (value, rules) => Effect.sync(() => clean(value, rules)) }))
}

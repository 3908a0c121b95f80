/**
 * A job's trace context as a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`): written from
 * the submitting span, read back as the parent of the worker's and the webhook's spans.
 */
import { Effect, Option, Tracer } from "effect"

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The current span's `traceparent`, or `undefined` outside a span. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(
  Effect.option(Effect.currentSpan),
  Option.match({
    onNone: () => undefined,
    onSome: (span) => {
      const traceparent = `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
      // The native tracer's ids are W3C-shaped; a tracer with other ids has no traceparent to give.
      return traceparentPattern.test(traceparent) ? traceparent : undefined
    }
  })
)

/** The span a `traceparent` names, to parent spans on; `undefined` when absent or malformed. */
export const parentSpan = (traceparent: string | undefined): Tracer.ExternalSpan | undefined => {
  const match = traceparent === undefined ? null : traceparentPattern.exec(traceparent)
  if (match === null) return undefined
  return Tracer.externalSpan({
    traceId: match[1]!,
    spanId: match[2]!,
    sampled: (Number.parseInt(match[3]!, 16) & 1) === 1
  })
}

/** The trace id of a `traceparent`. */
export const traceIdOf = (traceparent: string | undefined): string | undefined => parentSpan(traceparent)?.traceId

/**
 * Runs `effect` as a span named `name`, a child of the `traceparent`'s span where there is one.
 * The span does not capture where it was made (always the same line here): that costs an `Error`
 * and its stack each time, on every delivery and webhook.
 */
export const withSpanUnder =
  (name: string, traceparent: string | undefined, attributes: Record<string, unknown>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withSpan(effect, name, { attributes, parent: parentSpan(traceparent), captureStackTrace: false })

/**
 * A simulated vendor's own rate limit: how it is written (`"5/1s"`), which calls it admits, and
 * what it says to the ones it refuses. `VendorSimulator` asks {@link Window.admitAt} once per call,
 * as the call arrives, and answers a refusal with {@link refusal}: another kind of limit (one
 * advertised in headers, one that is hidden, a cap on calls in flight) is one more case of
 * {@link RateLimit} here, with what its `Admission` must tell that one call site.
 *
 * @since 0.1.0
 */
import { VendorDefinition } from "@vendorflow/core"
import { Clock, Duration, Effect, Schema } from "effect"

/**
 * At most `limit` admitted calls in any `windowMs` (a sliding window). Hidden (only 429s tell it)
 * unless `advertise`, when every answer carries it in headers; `later` replaces it `afterMs` after
 * the first call (a vendor that lowers its limit mid-run).
 *
 * @category models
 */
export interface RateLimit {
  readonly limit: number
  readonly windowMs: number
  readonly advertise?: boolean | undefined
  readonly later?: { readonly limit: number; readonly windowMs: number; readonly afterMs: number } | undefined
}

/**
 * Reads `"5/1s"`, `"5/s"`, `"100/500ms"`, `"60/1m"` or a bare `"5"` (per second) as a
 * {@link RateLimit} (the format of `VendorDefinition.parseRateLimit`, with the window in ms).
 *
 * @category parsing
 */
export const parse = (text: string): RateLimit | undefined => {
  const limit = VendorDefinition.parseRateLimit(text)
  return limit === undefined
    ? undefined
    : { limit: limit.limit, windowMs: Duration.toMillis(Duration.fromInputUnsafe(limit.window)) }
}

/**
 * A {@link RateLimit} decoded from its env form (`"5/1s"` or `"5"`), for `Config.schema`.
 *
 * @category parsing
 */
export const FromString: Schema.Codec<RateLimit, string> = VendorDefinition.fromEnvString({
  type: Schema.Struct({ limit: Schema.Number, windowMs: Schema.Number }),
  parse,
  format: (limit) => `${limit.limit}/${limit.windowMs}ms`,
  expected: `a rate limit like "5/1s" or "5"`
})

/**
 * A limit that changes later, from its env form: `"20/1s@30s"` is 20 per second from 30 seconds
 * after the first call.
 *
 * @category parsing
 */
export const LaterFromString: Schema.Codec<NonNullable<RateLimit["later"]>, string> = VendorDefinition.fromEnvString({
  type: Schema.Struct({ limit: Schema.Number, windowMs: Schema.Number, afterMs: Schema.Number }),
  parse: (text) => {
    const [limitText, afterText] = text.split("@")
    const limit = parse(limitText ?? "")
    const after = afterText === undefined ? undefined : VendorDefinition.parseDuration(afterText)
    return limit === undefined || after === undefined ? undefined : { ...limit, afterMs: Duration.toMillis(after) }
  },
  format: (later) => `${later.limit}/${later.windowMs}ms@${later.afterMs}ms`,
  expected: `a later rate limit like "20/1s@30s"`
})

/**
 * The verdict for one call: admitted, or refused with how long to wait; `headers` advertise the
 * limit when it is advertised.
 *
 * @category admission
 */
export type Admission =
  | { readonly _tag: "Admitted"; readonly headers?: Readonly<Record<string, string>> | undefined }
  | {
      readonly _tag: "Limited"
      readonly retryAfterSeconds: number
      readonly headers?: Readonly<Record<string, string>> | undefined
    }

/**
 * A vendor's limit at work: every call asks it once, when the call arrives.
 *
 * @category admission
 */
export interface Window {
  /** The verdict for a call at `now` (ms). */
  readonly admitAt: (now: number) => Admission
  /** The verdict for a call now, by the clock. */
  readonly take: Effect.Effect<Admission>
}

/**
 * A sliding-window log for `limit`; with no limit every call is admitted. Sliding rather than fixed
 * so that a client keeping to the limit over any window never sees a 429, and one bursting across a
 * fixed-window boundary does; refused calls are not counted, so a client that keeps knocking still
 * gets through once the window moves on.
 *
 * @category admission
 */
export const makeWindow = (limit: RateLimit | undefined): Window => {
  if (limit === undefined) return { admitAt: () => ({ _tag: "Admitted" }), take: Effect.succeed({ _tag: "Admitted" }) }
  // Admission times, oldest first.
  const admitted: Array<number> = []
  let first: number | undefined
  const admitAt = (now: number): Admission => {
    first ??= now
    const current = limit.later !== undefined && now - first >= limit.later.afterMs ? limit.later : limit
    while (admitted.length > 0 && (admitted[0] ?? now) <= now - current.windowMs) admitted.shift()
    const admit = admitted.length < current.limit
    if (admit) admitted.push(now)
    const freeAt = (admitted[0] ?? now) + current.windowMs
    // Whole seconds, as HTTP has it, rounded up so a client that waits that long is admitted.
    const retryAfterSeconds = Math.max(1, Math.ceil((freeAt - now) / 1000))
    const headers = limit.advertise === true ? { headers: advertised(current, admitted.length, retryAfterSeconds) } : {}
    return admit ? { _tag: "Admitted", ...headers } : { _tag: "Limited", retryAfterSeconds, ...headers }
  }
  return { admitAt, take: Effect.map(Clock.currentTimeMillis, admitAt) }
}

// The limit as the IETF draft (`RateLimit-Policy`, `RateLimit`) and the common `X-RateLimit-*`
// headers say it.
const advertised = (limit: { readonly limit: number; readonly windowMs: number }, used: number, reset: number) => {
  const remaining = String(Math.max(0, limit.limit - used))
  const window = Math.max(1, Math.round(limit.windowMs / 1000))
  return {
    "ratelimit-policy": `"default";q=${limit.limit};w=${window}`,
    ratelimit: `"default";r=${remaining};t=${reset}`,
    "x-ratelimit-limit": String(limit.limit),
    "x-ratelimit-remaining": remaining,
    "x-ratelimit-reset": String(reset)
  }
}

/**
 * What a refused call is told: 429, why, and `Retry-After`.
 *
 * @category admission
 */
export const refusal = (name: string, limited: Extract<Admission, { readonly _tag: "Limited" }>) => ({
  status: 429,
  code: "rate_limited",
  message: `${name}: rate limit exceeded, retry in ${limited.retryAfterSeconds}s`,
  headers: { ...limited.headers, "retry-after": String(limited.retryAfterSeconds) }
})

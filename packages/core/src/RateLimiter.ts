/**
 * Per-vendor rate limits and caps on calls in flight, shared by every worker through the backend's
 * {@link RateLimitStore.RateLimitStore} (memory in one process, Redis or a database across many).
 *
 * - A configured limit (`5/1s`) is paced evenly on the store's clock: one slot every
 *   `window / limit × headroom`. Even slots never put more than the limit into any window as the
 *   vendor counts it; the 1.5% headroom absorbs the jitter between a slot and the call reaching the
 *   vendor. A worker places its slot on its own clock by the store's clock in the answer (the
 *   offset between the two taken from the answer with the shortest round trip), and a caller that
 *   wakes later than its slot by more than {@link tolerance} (a busy event loop) takes a fresh slot
 *   rather than come closer to the slot `limit` after it than a window.
 * - A learned limit (`auto`, with an optional ceiling) is paced at the rate the store learned:
 *   from the vendor's advertised limit (the IETF draft's `RateLimit-Policy` / `RateLimit`, or
 *   `X-RateLimit-Limit`) when its answers carry one, else from its 429s (see `RateLimitStore`).
 * - Every 429 pauses the vendor for every worker until its `Retry-After`.
 * - `maxInFlight` caps calls in flight across every worker: each call holds a leased slot, renewed
 *   while it runs, so a dead worker's slots come back within {@link slotLeaseMillis}.
 *
 * Layers: {@link layer} (over a backend's store), {@link layerMemory}.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import * as RateLimitStore from "./RateLimitStore.ts"
import type { RateLimit } from "./Vendor.ts"

/**
 * Headroom on a configured or advertised pace, see the module comment.
 *
 * @category constants
 */
export const headroom = 1.015

/**
 * How long an in-flight slot is leased; its holder renews it every third of that.
 *
 * @category constants
 */
export const slotLeaseMillis = 15_000

/**
 * How late after its slot a caller may still call. Only the call `L` slots later can share a
 * window `W` with a late one; slots `I = h W / L` apart leave `L·I - W = (h - 1) W` between them.
 * That margin is shared: half for a worker waking late (this), half for what comes between the
 * wake-up and the call's arrival at the vendor (sending it, the vendor's own event loop).
 *
 * @category constants
 */
export const tolerance = (intervalMillis: number, perWindow: number): number =>
  intervalMillis * 0.5 * perWindow * (1 - 1 / headroom)

/**
 * A limit the vendor advertised in an answer's headers.
 *
 * @category models
 */
export interface Advertised {
  readonly limit: number
  readonly windowMillis: number
}

const policyPattern = /(?:^|[;,\s])(?:q=)?(\d+(?:\.\d+)?)\s*(?:;[^,]*?\bw=(\d+(?:\.\d+)?))?/

/**
 * The limit an answer's (lower-cased) headers advertise, if any: the IETF draft's
 * `RateLimit-Policy: 50;w=1` or `RateLimit-Policy: "default";q=50;w=1`, its older `RateLimit-Limit`,
 * or `X-RateLimit-Limit` (a window of one second unless a policy names another). `Remaining` and
 * `Reset` are not used: they count whole seconds, coarser than the pace, and a 429's `Retry-After`
 * pauses the vendor anyway.
 *
 * @category headers
 */
export const advertisedBy = (headers: Readonly<Record<string, string | undefined>>): Advertised | undefined => {
  const policy = headers["ratelimit-policy"]
  if (policy !== undefined) {
    const quota = /\bq=(\d+(?:\.\d+)?)/.exec(policy)
    const match = quota ?? policyPattern.exec(policy)
    const window = /\bw=(\d+(?:\.\d+)?)/.exec(policy)
    const limit = Number(match?.[1])
    if (limit > 0) return { limit, windowMillis: window === null ? 1000 : Number(window[1]) * 1000 }
  }
  const plain = headers["ratelimit-limit"] ?? headers["x-ratelimit-limit"]
  const limit = Number(plain?.split(/[,;]/)[0])
  return limit > 0 ? { limit, windowMillis: 1000 } : undefined
}

/**
 * The per-vendor rate limiter service.
 *
 * @category services
 */
export class RateLimiter extends Context.Service<
  RateLimiter,
  {
    /** Waits until `vendor` may be called once more under `limit`; returns the wait its slot asked for. */
    readonly wait: (
      vendor: string,
      limit: RateLimit
    ) => Effect.Effect<Duration.Duration, RateLimitStore.RateLimitStoreError>
    /** The vendor answered 429: it pauses for every worker, and a learned limit is cut. */
    readonly limited: (
      vendor: string,
      options: { readonly limit: RateLimit | undefined; readonly retryAfterMillis: number | undefined }
    ) => Effect.Effect<void, RateLimitStoreError>
    /** An answer's headers: a learned limit takes what they advertise (under its ceiling). */
    readonly heard: (
      vendor: string,
      limit: RateLimit | undefined,
      headers: Readonly<Record<string, string | undefined>>
    ) => Effect.Effect<void, RateLimitStoreError>
    /** Runs `effect` holding one of `max` in-flight slots of `vendor`, waiting for one first. */
    readonly withSlot: <A, E, R>(
      vendor: string,
      max: number,
      effect: Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | RateLimitStoreError, R>
    /** What the store knows of `vendor` now. */
    readonly snapshot: (vendor: string) => Effect.Effect<RateLimitStore.Snapshot, RateLimitStoreError>
  }
>()("@vendorflow/core/RateLimiter") {}

type RateLimitStoreError = RateLimitStore.RateLimitStoreError

const windowMillisOf = (limit: RateLimit) => Duration.toMillis(Duration.fromInputUnsafe(limit.window))

/**
 * How `limit` is paced in the store.
 *
 * @category pacing
 */
export const paceOf = (limit: RateLimit): RateLimitStore.Pace =>
  limit.learn === true
    ? { _tag: "Learned", ceilingPerSecond: (limit.limit * 1000) / windowMillisOf(limit) / headroom }
    : { _tag: "Fixed", intervalMillis: (windowMillisOf(limit) / limit.limit) * headroom }

// How late a caller may be for its slot. The interval a learned pace runs at is only known to the
// store: it is judged against its ceiling's interval or, without one, a tenth of a second.
const toleranceOf = (pace: RateLimitStore.Pace, limit: RateLimit) => {
  if (pace._tag === "Fixed") return tolerance(pace.intervalMillis, limit.limit)
  const interval = Number.isFinite(pace.ceilingPerSecond) ? 1000 / pace.ceilingPerSecond : 100
  return tolerance(interval, 1000 / interval)
}

// How often a caller waiting for an in-flight slot asks again: soon, then less often.
const slotPoll = Schedule.min([Schedule.exponential("5 millis", 1.5), Schedule.spaced("50 millis")]).pipe(
  Schedule.jittered
)

/**
 * The limiter over the store in context.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const store = yield* RateLimitStore.RateLimitStore
  // The advertised limit this process last told the store, per vendor: the store is written only
  // when it changes, not on every answer.
  const told = new Map<string, number>()
  // The store's clock less this process's, from the answer with the shortest round trip (whose
  // midpoint is closest to when the store read its clock); an older sample counts as if its round
  // trip grew by 1 ms a second, so that drift is followed.
  let offset = { value: 0, roundTrip: Infinity, at: 0 }
  const storeOffset = (storeAt: number, before: number, after: number) => {
    const roundTrip = after - before
    if (roundTrip <= offset.roundTrip + (after - offset.at) / 1000) {
      offset = { value: storeAt - (before + after) / 2, roundTrip, at: after }
    }
    return offset.value
  }

  const wait = Effect.fn("RateLimiter.wait")(function* (vendor: string, limit: RateLimit) {
    const pace = paceOf(limit)
    const lateness = toleranceOf(pace, limit)
    let first: number | undefined
    let waited = 0
    while (true) {
      const before = yield* Clock.currentTimeMillis
      const taken = yield* store.take(vendor, pace)
      const after = yield* Clock.currentTimeMillis
      first ??= after
      // The slot on this process's clock.
      const due = taken.at + taken.waitMillis - storeOffset(taken.at, before, after)
      waited = Math.max(0, due - first)
      if (due > after) yield* Effect.sleep(Duration.millis(due - after))
      if ((yield* Clock.currentTimeMillis) - due <= lateness) break
      // Woken too late (a busy event loop): going now would put this call closer to the next
      // slot's than the pace allows. Take a fresh slot instead.
    }
    return Duration.millis(waited)
  })

  const acquire = (vendor: string, holder: string, max: number) =>
    store
      .acquireSlot(vendor, { holder, max, leaseMillis: slotLeaseMillis })
      .pipe(Effect.repeat({ schedule: slotPoll, until: (granted) => granted }))

  return RateLimiter.of({
    wait,
    limited: (vendor, options) =>
      store.limited(vendor, { retryAfterMillis: options.retryAfterMillis, learn: options.limit?.learn === true }),
    heard: (vendor, limit, headers) => {
      if (limit?.learn !== true) return Effect.void
      const advertised = advertisedBy(headers)
      if (advertised === undefined) return Effect.void
      const ceiling = paceOf(limit)
      const perSecond = Math.min(
        (advertised.limit * 1000) / advertised.windowMillis / headroom,
        ceiling._tag === "Learned" ? ceiling.ceilingPerSecond : Infinity
      )
      if (told.get(vendor) === perSecond) return Effect.void
      return Effect.tap(store.advertise(vendor, perSecond), () => Effect.sync(() => told.set(vendor, perSecond)))
    },
    withSlot: (vendor, max, effect) =>
      Effect.suspend(() => {
        const holder = crypto.randomUUID()
        // Retaking the slot renews its lease while the call runs.
        const renew = acquire(vendor, holder, max).pipe(
          Effect.ignore,
          Effect.repeat(Schedule.spaced(Duration.millis(slotLeaseMillis / 3))),
          Effect.delay(Duration.millis(slotLeaseMillis / 3))
        )
        return acquire(vendor, holder, max).pipe(
          Effect.andThen(Effect.scoped(Effect.andThen(Effect.forkScoped(renew), effect))),
          // Releasing is idempotent, so it also runs for a wait that was interrupted.
          Effect.ensuring(Effect.ignore(store.releaseSlot(vendor, holder)))
        )
      }),
    snapshot: store.snapshot
  })
})

/**
 * The limiter over a backend's {@link RateLimitStore.RateLimitStore}.
 *
 * @category layers
 */
export const layer: Layer.Layer<RateLimiter, never, RateLimitStore.RateLimitStore> = Layer.effect(RateLimiter, make)

/**
 * The limiter with its state in this process.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimiter> = layer.pipe(Layer.provide(RateLimitStore.layerMemory))

/**
 * Per-vendor rate limits and caps on calls in flight, shared by every worker through the backend's
 * {@link RateLimitStore.RateLimitStore} (memory in one process, Redis or a database across many).
 *
 * - A configured limit (`5/1s`) is paced evenly on the store's clock: one slot every
 *   `window / limit × headroom`. Even slots never put more than the limit into any window as the
 *   vendor counts it; the 1.5% headroom absorbs the jitter between a slot and the call reaching the
 *   vendor. A worker places its slot on its own clock by the store's clock in the answer (the
 *   offset between the two taken from the answer with the shortest round trip). A slot already due
 *   when it is handed out (an idle vendor) goes at once, and the slot after it keeps
 *   `RateLimitStore.dueSlotLagMillis` more distance: the first call is late by the time to hand it
 *   out and make it, the ones after it are on schedule. A caller that
 *   wakes later than its slot by more than {@link tolerance} (a busy event loop) would come closer
 *   to the slot `limit` after it than a window: up to twice the tolerance late, it calls and moves
 *   the slots not handed out yet on by the excess (`RateLimitStore.delayed`); later still, it
 *   takes a fresh slot once, and the next time calls as above. A worker's callers take a
 *   vendor's slots one at a time, never more than {@link lookaheadMillis} ahead.
 * - {@link RateLimiter.paced} checks the call once more as its request is written (`Vendor.sendJson`
 *   tells it, through `Vendor.RequestWritten`): an event loop that stalls between the wake-up and
 *   the write (so can connecting, or waiting for a free connection) makes the call late as well,
 *   and a request written past the tolerance moves the slots on by the excess. The request has
 *   already gone, but the call `limit` slots later is handed out only about a window later, so it
 *   keeps its distance. (A limit of a few calls a window shared by as many worker processes is the
 *   exception, for a late write and a late wake-up alike: each process holds a slot or two
 *   {@link lookaheadMillis} ahead, and that call may be among them.) An adapter that calls its
 *   vendor some other way is checked at its wake-up only.
 * - A learned limit (`auto`, with an optional ceiling) is paced at the rate the store learned:
 *   from the vendor's advertised limit (the IETF draft's `RateLimit-Policy` / `RateLimit`, or
 *   `X-RateLimit-Limit`) when its answers carry one, else from its 429s (see `RateLimitStore`);
 *   its first call goes alone, so that the first answer's headers set the pace of the rest (told
 *   to the store even if this worker told it lately: the store has lost it).
 * - Every 429 pauses the vendor for every worker until its `Retry-After`.
 * - `maxInFlight` caps calls in flight across every worker: each call holds a leased slot, renewed
 *   while it runs, so a dead worker's slots come back within {@link slotLeaseMillis}.
 *
 * Layers: {@link layer} (over a backend's store), {@link layerMemory}.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Schedule, Semaphore } from "effect"
import * as RateLimitStore from "./RateLimitStore.ts"
import { type RateLimit, RequestWritten, usableRetryAfter } from "./Vendor.ts"

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
 * How often a worker tells the store an advertised limit that has not changed: the store may have
 * lost it meanwhile (its state expired, another worker's 429 cut it).
 *
 * @category constants
 */
export const retellMillis = 10_000

/**
 * How far ahead of its calls a worker holds slots of one vendor: its callers take slots one at a
 * time, the next once the last one is this close. Slots handed out far ahead would keep a pace
 * (or call during a pause) that the vendor's answers have since changed; this is enough to keep
 * the next slot taken before it is due.
 *
 * @category constants
 */
export const lookaheadMillis = 100

/**
 * How late after its slot a caller may still call. Only the call `L` slots later can share a
 * window `W` with a late one; slots `I = h W / L` apart leave `L·I - W = (h - 1) W` between them.
 * That margin is shared: half for the call leaving late (this, checked as the caller wakes and
 * again as its request is written), half for the wire and the vendor's own event loop.
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
 * `RateLimit-Policy: 50;w=1` or `RateLimit-Policy: "default";q=50;w=1` (of several policies, the
 * strictest), its older `RateLimit-Limit`, or `X-RateLimit-Limit` (a window of one second unless a
 * policy names another). `Remaining` and
 * `Reset` are not used: they count whole seconds, coarser than the pace, and a 429's `Retry-After`
 * pauses the vendor anyway.
 *
 * @category headers
 */
export const advertisedBy = (headers: Readonly<Record<string, string | undefined>>): Advertised | undefined => {
  // A header may list several policies (`10;w=1, 50;w=60`): the strictest one binds.
  let strictest: Advertised | undefined
  for (const policy of headers["ratelimit-policy"]?.split(",") ?? []) {
    const quota = /\bq=(\d+(?:\.\d+)?)/.exec(policy)
    const match = quota ?? policyPattern.exec(policy)
    const window = /\bw=(\d+(?:\.\d+)?)/.exec(policy)
    const limit = Number(match?.[1])
    const windowMillis = window === null ? 1000 : Number(window[1]) * 1000
    // A window of 0 or a limit too large for a number would pace at an infinite rate: no limit.
    if (!usable(limit) || !usable(windowMillis)) continue
    if (strictest === undefined || limit / windowMillis < strictest.limit / strictest.windowMillis) {
      strictest = { limit, windowMillis }
    }
  }
  if (strictest !== undefined) return strictest
  const plain = headers["ratelimit-limit"] ?? headers["x-ratelimit-limit"]
  const limit = Number(plain?.split(/[,;]/)[0])
  return usable(limit) ? { limit, windowMillis: 1000 } : undefined
}

const usable = (n: number) => Number.isFinite(n) && n > 0

/**
 * The per-vendor rate limiter service.
 *
 * @category services
 */
export class RateLimiter extends Context.Service<
  RateLimiter,
  {
    /** Waits until `vendor` may be called once more under `limit`; returns how long it waited. */
    readonly wait: (
      vendor: string,
      limit: RateLimit
    ) => Effect.Effect<Duration.Duration, RateLimitStore.RateLimitStoreError>
    /**
     * Waits as {@link wait} does, then runs the call it made for how long it waited, and checks the
     * first request the call writes through `Vendor.sendJson` against the slot: one written late
     * moves the vendor's later slots on (see the module comment).
     */
    readonly paced: <A, E, R>(
      vendor: string,
      limit: RateLimit,
      call: (waited: Duration.Duration) => Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | RateLimitStore.RateLimitStoreError, R>
    /** The vendor answered 429: it pauses for every worker, and a learned limit is cut. */
    readonly limited: (
      vendor: string,
      options: { readonly limit: RateLimit | undefined; readonly retryAfterMillis: number | undefined }
    ) => Effect.Effect<void, RateLimitStoreError>
    /** An answer's headers: a learned limit takes what they advertise (under its ceiling), if anything. */
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

// A pace that spaces calls by a positive, finite interval (or learns under a positive ceiling): a
// limit of 0, NaN or a window of 0 would wait forever or spin on the store.
const usablePace = (pace: RateLimitStore.Pace) =>
  pace._tag === "Fixed" ? Number.isFinite(pace.intervalMillis) && pace.intervalMillis > 0 : pace.ceilingPerSecond > 0

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
  // The advertised limit this process last told the store, per vendor, and when: the store is
  // written when it changes, after a 429 cut it, and at least every {@link retellMillis} (another
  // worker's 429 cut it, or the state expired), not on every answer.
  const told = new Map<string, { readonly perSecond: number | undefined; readonly at: number }>()
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

  // Per vendor, the one caller taking a slot now, and when the next may (see `lookaheadMillis`).
  const gates = new Map<string, { readonly lock: Semaphore.Semaphore; openAt: number }>()
  const gateOf = (vendor: string) => {
    let gate = gates.get(vendor)
    if (gate === undefined) {
      gate = { lock: Semaphore.makeUnsafe(1), openAt: 0 }
      gates.set(vendor, gate)
    }
    return gate
  }
  // Never wakes before `at` (a timer may fire within its last millisecond).
  const sleepUntil = (at: number): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      at > now ? Effect.andThen(Effect.sleep(Duration.millis(Math.ceil(at - now))), sleepUntil(at)) : Effect.void
    )
  // Per vendor, the last time a caller of this process moved the vendor's slots on, and how far.
  const delays = new Map<string, { readonly at: number; readonly millis: number }>()

  // Takes the vendor's next slot through its gate; returns it on this process's clock.
  const slotOf = (vendor: string, pace: RateLimitStore.Pace) => {
    const gate = gateOf(vendor)
    return Semaphore.withPermits(
      gate.lock,
      1
    )(
      Effect.gen(function* () {
        yield* sleepUntil(gate.openAt)
        while (true) {
          const before = yield* Clock.currentTimeMillis
          const taken = yield* store.take(vendor, pace)
          const after = yield* Clock.currentTimeMillis
          const offset = storeOffset(taken.at, before, after)
          // A probe, or a take turned away while one is out: the store has no limit (it lost what
          // it was told, or never had it), so the next answer tells it again.
          if (taken.probe === true || !taken.granted) told.delete(vendor)
          if (taken.granted) {
            const due = taken.at + taken.waitMillis - offset
            gate.openAt = due - lookaheadMillis
            return due
          }
          // A learned limit's first call is out (another worker's, maybe): ask again shortly.
          yield* Effect.sleep(Duration.millis(taken.waitMillis))
        }
      })
    )
  }

  // Moves the vendor's slots not handed out yet on by `by`, for a call that left `late` past its
  // tolerance (`by` is less when its wake-up moved them part of the way). One stall makes several
  // callers late at once: a move since this slot was taken, as far, already did it. Noted before
  // the store answers, so that the late writes of one stall, told together, move the slots once;
  // forgotten if the store fails, so that the next late call moves them.
  const moveOn = (vendor: string, late: number, takenAt: number, now: number, by: number = late) => {
    const moved = delays.get(vendor)
    if (moved !== undefined && moved.at >= takenAt && moved.millis >= late) return Effect.void
    const record = { at: now, millis: by }
    delays.set(vendor, record)
    return Effect.tapError(store.delay(vendor, by), () =>
      Effect.sync(() => {
        if (delays.get(vendor) === record) delays.delete(vendor)
      })
    )
  }

  // Waits for the vendor's next slot; answers how long it waited, when the slot was taken, when the
  // call should leave by (on this process's clock) and how far a late wake-up moved the slots.
  const slot = Effect.fn("RateLimiter.wait")(function* (vendor: string, limit: RateLimit) {
    const pace = paceOf(limit)
    const lateness = toleranceOf(pace, limit)
    if (!usablePace(pace)) {
      return yield* Effect.fail(
        RateLimitStore.storeError(`${vendor}: the rate limit ${limit.limit}/${limit.window} paces no call`)
      )
    }
    const started = yield* Clock.currentTimeMillis
    let retaken = false
    while (true) {
      const due = yield* slotOf(vendor, pace)
      if (!Number.isFinite(due))
        return yield* Effect.fail(RateLimitStore.storeError(`${vendor}: the store gave no usable slot`))
      const takenAt = yield* Clock.currentTimeMillis
      yield* sleepUntil(due)
      const now = yield* Clock.currentTimeMillis
      const waited = Duration.millis(Math.max(0, due - started))
      const past = now - due - lateness
      if (past <= 0) return { waited, takenAt, deadline: due + lateness, own: 0 }
      // Woken much too late (a busy event loop) for the first time: moving the slots on would cost
      // more than this one; take a fresh one. A worker that lags that much all the time would give
      // up slot after slot (every worker's), so the second time it goes as below.
      if (past > lateness && !retaken) {
        retaken = true
        continue
      }
      // Woken too late: the call goes, and the slots move on by what it is past the tolerance,
      // which keeps the call a window later at its distance.
      yield* moveOn(vendor, past, takenAt, now)
      return { waited, takenAt, deadline: due + lateness, own: past }
    }
  })

  const paced = <A, E, R>(
    vendor: string,
    limit: RateLimit,
    call: (waited: Duration.Duration) => Effect.Effect<A, E, R>
  ) =>
    Effect.flatMap(slot(vendor, limit), ({ waited, takenAt, deadline, own }) =>
      Effect.flatMap(Effect.context<never>(), (context) => {
        const clock = Context.get(context, Clock.Clock)
        let written = false
        // Called by undici as it writes the request, maybe outside any fiber: it must not block, and
        // only a write later than the wake-up's move covers starts a fiber.
        const onWrite = () => {
          if (written) return
          written = true
          const now = clock.currentTimeMillisUnsafe()
          const late = now - deadline
          if (late <= own) return
          Effect.runForkWith(context)(
            Effect.ignore(moveOn(vendor, late, takenAt, now, late - own), {
              log: "Warn",
              message: `${vendor}: a late call's slots could not be moved on`
            })
          )
        }
        return Effect.provideService(call(waited), RequestWritten, onWrite)
      })
    )

  const acquire = (vendor: string, holder: string, max: number) =>
    store
      .acquireSlot(vendor, { holder, max, leaseMillis: slotLeaseMillis })
      .pipe(Effect.repeat({ schedule: slotPoll, until: (granted) => granted }))

  return RateLimiter.of({
    wait: (vendor, limit) => Effect.map(slot(vendor, limit), ({ waited }) => waited),
    paced,
    limited: (vendor, options) => {
      // A classify's bad parse (NaN, Infinity, negative) would pause every worker forever, or leave
      // the pause NaN and callers spinning on the store: such a 429 pauses as one without it.
      const cut = store.limited(vendor, {
        retryAfterMillis: usableRetryAfter(options.retryAfterMillis),
        learn: options.limit?.learn === true
      })
      // The 429 cut what this process told: the next answer tells it again.
      return Effect.tap(cut, () => Effect.sync(() => told.delete(vendor)))
    },
    heard: (vendor, limit, headers) => {
      if (limit?.learn !== true) return Effect.void
      const advertised = advertisedBy(headers)
      const ceiling = paceOf(limit)
      // An answer that advertises nothing is told too (once in a while): it ends the first call's probe.
      const perSecond =
        advertised === undefined
          ? undefined
          : Math.min(
              (advertised.limit * 1000) / advertised.windowMillis / headroom,
              ceiling._tag === "Learned" ? ceiling.ceilingPerSecond : Infinity
            )
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const last = told.get(vendor)
        if (last !== undefined && last.perSecond === perSecond && now - last.at < retellMillis) return Effect.void
        return Effect.tap(store.advertise(vendor, perSecond), () =>
          Effect.sync(() => told.set(vendor, { perSecond, at: now }))
        )
      })
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

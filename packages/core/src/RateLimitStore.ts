/**
 * Where the vendors' rate-limit state lives, shared by every worker: the contract a backend
 * implements, the rules every implementation applies, and {@link layerMemory}.
 *
 * Each operation is one atomic read-modify-write of one vendor's state, timed by the store's own
 * clock (Redis `TIME`, a database's clock, this process's for memory) rather than by each worker's,
 * so workers with skewed clocks still share one pace. The rules are the pure functions below
 * ({@link take}, {@link limited}, {@link advertised}, {@link delayed}, {@link acquireSlot}): the memory store applies
 * them to a map, a SQL store can apply them inside one transaction (read the vendor's row, apply,
 * write it back), and the Redis store runs the same rules as Lua scripts. The conformance suite in
 * `@vendorflow/core/testing` (`RateLimitStoreSuite`) holds every store to them.
 *
 * Pacing: `next` is the store-clock time of the vendor's next free slot; a taker gets
 * `max(now, next, pausedUntil)` and moves `next` one interval on from it, or from
 * `now + ` {@link dueSlotLagMillis} when that is later (a slot due, or nearly, when it is taken).
 * Calls exactly one interval apart never put more than `limit` into any window.
 *
 * Learning (a limit written `auto`): the pace is `rate` calls per second, shared in the state.
 * - A limit the vendor advertises in headers sets `rate` (never over the configured ceiling).
 * - Else additive increase, multiplicative decrease on 429s: no 429 seen yet, the rate doubles each
 *   second the vendor is kept busy (callers wait for slots, longer than {@link dueSlotLagMillis}).
 *   A 429 means the vendor's limit is under the rate of the last second: the refused rate is the
 *   lesser of the pace and the slots due in the last second but the refused one (counted in the
 *   state), which is what the vendor let through (when that is at least one).
 *   The rate is cut to 90% of it (70% when 429s keep coming within {@link congestedWithinMillis}
 *   of the last pause), climbs back to just under it, holds there for {@link holdMillis}, then
 *   creeps up to find out whether the vendor allows more. A 429 during a pause came from a call
 *   sent before it and changes nothing.
 * Every 429 pauses the vendor for every worker until its `Retry-After` (one second without one).
 *
 * Calls in flight: a slot is a lease (`holder` until `expiresAt`) renewed while its call runs, so a
 * dead worker's slots come back once their leases run out.
 *
 * @since 0.2.0
 */
import { Clock, Context, Effect, Layer } from "effect"
import { RateLimiter as PersistedRateLimiter } from "effect/persistence"

/**
 * One vendor's shared pacing state. Times are store-clock milliseconds.
 *
 * @category models
 */
export interface State {
  /** When the next slot is free. */
  readonly next: number
  /** No slot before this (a 429's `Retry-After`). */
  readonly pausedUntil: number
  /** The learned pace in calls per second; 0 until something was learned. */
  readonly rate: number
  /** Where `rate` came from. */
  readonly source: Source
  /** The rate a 429 last refused; 0 before the first. */
  readonly refusedRate: number
  /** When `rate` last grew. */
  readonly grewAt: number
  /** When the last 429 cut the rate. */
  readonly cutAt: number
  /**
   * Slots per {@link countBucketMillis} of the store's clock they are due in, the newest (starting
   * at `countedAt`) first, {@link countBuckets} of them: a 429 after a ramp-up must count what the
   * vendor counted, which a per-second count would smear over the slower second before.
   */
  readonly countedAt: number
  readonly counts: ReadonlyArray<number>
  /** A learned limit's first call is out until then (0: not taken yet). */
  readonly probeUntil: number
}

/**
 * Where a learned rate came from: nothing yet, the vendor's headers, or 429s.
 *
 * @category models
 */
export type Source = "none" | "advertised" | "probed"

/**
 * A vendor's state before any call.
 *
 * @category models
 */
export const initial: State = {
  next: 0,
  pausedUntil: 0,
  rate: 0,
  source: "none",
  refusedRate: 0,
  grewAt: 0,
  cutAt: 0,
  countedAt: 0,
  counts: [],
  probeUntil: 0
}

/**
 * How a taker wants to be paced: a fixed interval (a configured limit), or the learned rate under a
 * ceiling (calls per second; `Infinity` for none).
 *
 * @category models
 */
export type Pace =
  | { readonly _tag: "Fixed"; readonly intervalMillis: number }
  | { readonly _tag: "Learned"; readonly ceilingPerSecond: number }

/**
 * What a take gave: a slot `waitMillis` on (`granted`), or none yet (a learned limit's first call
 * is still out: ask again after `waitMillis`); and the store's clock (ms since the epoch) when it
 * answered, so that a worker can tell when the slot falls on its own clock.
 *
 * @category models
 */
export interface Taken {
  readonly granted: boolean
  readonly waitMillis: number
  readonly at: number
  /** The slot is a learned limit's first call (its probe): its answer ends the probe. */
  readonly probe?: boolean | undefined
}

/**
 * How late a slot that is due when it is granted (the vendor was idle) reaches the vendor, in ms,
 * next to the slots taken ahead of time: its answer's way back, the wake-up and the send. The slot
 * after it is at least this plus an interval after the take, so that a late first call does not
 * land next to the calls on schedule after it; its taker does not wait.
 *
 * @category constants
 */
export const dueSlotLagMillis = 15

/**
 * The learned rate a vendor starts at, in calls per second. Callers waiting at the start take
 * slots at this pace before the first answer can tell more, so it is not set lower than needed.
 *
 * @category constants
 */
export const initialRate = 10

/**
 * How long a learned limit's first call goes alone, at most (its answer ends it sooner): a slow
 * answer, from a worker that has not made a call yet.
 *
 * @category constants
 */
export const probeMillis = 1000

/**
 * How soon a taker turned away during the first call asks again.
 *
 * @category constants
 */
export const probePollMillis = 10

/**
 * The lowest learned rate, in calls per second: low enough for any vendor, high enough that the
 * next probe is not minutes away.
 *
 * @category constants
 */
export const minimumRate = 0.2

/**
 * How long a pause lasts after a 429 without `Retry-After`.
 *
 * @category constants
 */
export const defaultPauseMillis = 1000

/**
 * 429s this soon after the last pause ended mean the vendor is congested: a deeper cut.
 *
 * @category constants
 */
export const congestedWithinMillis = 2000

/**
 * How long the learned rate stays just under the last refused rate before creeping above it.
 *
 * @category constants
 */
export const holdMillis = 30_000

/**
 * The factors of the learning rules, so that a store running them elsewhere (Redis's Lua) takes
 * them from here.
 *
 * @category constants
 */
export const factors = {
  /** A 429 cuts the learned rate to this share of the refused rate. */
  cut: 0.9,
  /** … or to this share when 429s keep coming ({@link congestedWithinMillis}). */
  congestedCut: 0.7,
  /** After a cut the rate climbs back to this share of the refused rate… */
  below: 0.97,
  /** … by this share of it per second … */
  climb: 0.2,
  /** … and after {@link holdMillis} creeps above it by this share per second. */
  creep: 0.01
} as const

/**
 * The learned rate at `now`, grown by the time since it last grew when `busy` (callers wait for
 * slots, so the vendor could take more), never over `ceiling`.
 *
 * @category rules
 */
export const grow = (state: State, now: number, busy: boolean, ceiling: number): State => {
  const rate = state.rate > 0 ? state.rate : Math.min(initialRate, ceiling)
  if (!busy || state.source === "advertised") {
    return {
      ...state,
      rate: Math.min(rate, ceiling),
      source: state.source === "none" ? "probed" : state.source,
      grewAt: now
    }
  }
  const seconds = Math.min(1000, Math.max(0, now - state.grewAt)) / 1000
  let next: number
  if (state.refusedRate === 0) next = rate * 2 ** seconds
  else {
    const target = state.refusedRate * factors.below
    if (rate < target) next = Math.min(target, rate + factors.climb * state.refusedRate * seconds)
    else if (now - state.cutAt >= holdMillis) next = rate + factors.creep * state.refusedRate * seconds
    else next = rate
  }
  return { ...state, rate: Math.min(next, ceiling), source: "probed", grewAt: now }
}

/**
 * Takes the vendor's next slot at `now`: the new state, and how long the taker waits for its slot.
 *
 * @category rules
 */
export const take = (state: State, now: number, pace: Pace): readonly [State, Omit<Taken, "at">] => {
  const start = Math.max(now, state.next, state.pausedUntil)
  const slot = { granted: true, waitMillis: start - now }
  // Where the interval to the next slot starts: a slot due (or nearly) reaches the vendor late.
  const from = Math.max(start, now + dueSlotLagMillis)
  if (pace._tag === "Fixed") return [{ ...state, next: from + pace.intervalMillis }, slot]
  if (state.source === "none" && now < state.probeUntil) {
    return [state, { granted: false, waitMillis: Math.min(probePollMillis, state.probeUntil - now) }]
  }
  if (state.source === "none" && state.probeUntil === 0) {
    // The first call: it probes alone (see the module comment), at the initial rate.
    const rate = Math.min(initialRate, pace.ceilingPerSecond)
    const probing = count({ ...state, rate, grewAt: now, probeUntil: now + probeMillis }, start)
    return [
      { ...probing, next: from + 1000 / rate },
      { ...slot, probe: true }
    ]
  }
  // Busy: callers wait for slots, longer than the lag after a slot that was due.
  const paced = count(grow(state, now, state.next > now + dueSlotLagMillis, pace.ceilingPerSecond), start)
  return [{ ...paced, next: from + 1000 / paced.rate }, slot]
}

/**
 * The width of one bucket of the slots counted, in ms.
 *
 * @category constants
 */
export const countBucketMillis = 100

/**
 * How many buckets of slots are kept: the second before now, from anywhere inside its bucket, and
 * as long again for the slots counted ahead of now (handed out ahead, or due at a pause's end).
 *
 * @category constants
 */
export const countBuckets = 2000 / countBucketMillis + 1

// The counts moved on to the bucket of `at` (empty buckets for the time with no slots).
const countsAt = (state: State, at: number): readonly [number, Array<number>] => {
  const bucket = Math.floor(at / countBucketMillis) * countBucketMillis
  const shift = Math.max(0, Math.min(countBuckets, (bucket - state.countedAt) / countBucketMillis))
  const counts = Array.from({ length: countBuckets }, (_, i) => (i < shift ? 0 : (state.counts[i - shift] ?? 0)))
  return [bucket, counts]
}

// One more slot, due at `at`, in the counts.
const count = (state: State, at: number): State => {
  const [countedAt, counts] = countsAt(state, at)
  counts[0]!++
  return { ...state, countedAt, counts }
}

/**
 * Slots due in the second before `now` (slots are counted where they fall, which is up to the
 * lookahead ahead of when they were taken; those due after `now` are not counted): the buckets
 * inside it, and the shares of the two at its ends that fall inside it.
 *
 * @category rules
 */
export const lastSecond = (state: State, now: number): number => {
  const bucket = Math.floor(now / countBucketMillis) * countBucketMillis
  const into = (now - bucket) / countBucketMillis
  const oldest = 1000 / countBucketMillis
  // How many buckets `now` is past the newest one counted (negative: slots due after now).
  const behind = (bucket - state.countedAt) / countBucketMillis
  return state.counts.reduce((sum, n, i) => {
    const back = i + behind
    if (back < 0 || back > oldest) return sum
    return sum + n * (back === 0 ? into : back === oldest ? 1 - into : 1)
  }, 0)
}

/**
 * A 429 at `now`: the vendor pauses for `retryAfterMillis`; a learned rate is cut unless the 429
 * came during a pause (from a call sent before it) or to the first call (nothing learned yet).
 *
 * @category rules
 */
export const limited = (
  state: State,
  now: number,
  options: { readonly retryAfterMillis: number | undefined; readonly learn: boolean }
): State => {
  const pausedUntil = Math.max(state.pausedUntil, now + (options.retryAfterMillis ?? defaultPauseMillis))
  // A 429 to the first call (a vendor still counting calls from before a restart) says nothing of
  // the limit: it pauses, and the rate starts as it would have.
  if (!options.learn || now < state.pausedUntil || state.source === "none") return { ...state, pausedUntil }
  const rate = state.rate > 0 ? state.rate : initialRate
  // What the vendor let through in its last second: the slots due in it but the refused call's
  // (under one is a share of a bucket, not a measure).
  const allowed = lastSecond(state, now) - 1
  const refusedRate = allowed >= 1 ? Math.min(rate, allowed) : rate
  const congested = state.cutAt > 0 && now - state.pausedUntil < congestedWithinMillis
  return {
    ...state,
    pausedUntil,
    refusedRate,
    rate: Math.max(minimumRate, refusedRate * (congested ? factors.congestedCut : factors.cut)),
    source: "probed",
    cutAt: now,
    grewAt: pausedUntil
  }
}

/**
 * An answer from the vendor: it advertised `perSecond` calls per second (already less the pacing
 * headroom), the pace from the last slot on; or nothing (`undefined`), which ends the first call's
 * probe and changes nothing else.
 *
 * @category rules
 */
export const advertised = (state: State, perSecond: number | undefined): State => {
  if (perSecond === undefined)
    return state.source === "none" && state.probeUntil > 0 ? { ...state, probeUntil: 1 } : state
  return {
    ...state,
    // The last slot was spaced at the old pace (the probe's at the initial rate): space it at this one.
    next: state.rate > 0 ? state.next - 1000 / state.rate + 1000 / perSecond : state.next,
    rate: perSecond,
    source: "advertised"
  }
}

/**
 * A call went `millis` later than its slot allowed: the slots not handed out yet move on by as
 * much, so that the call a window after it keeps its distance.
 *
 * @category rules
 */
export const delayed = (state: State, millis: number): State => ({ ...state, next: state.next + millis })

/**
 * The in-flight slots of a vendor: holder → lease expiry (store-clock ms).
 *
 * @category models
 */
export type Slots = ReadonlyMap<string, number>

/**
 * Takes a slot for `holder` until `now + leaseMillis` if fewer than `max` live leases are held
 * (expired ones are dropped first); retaking a held slot renews it.
 *
 * @category rules
 */
export const acquireSlot = (
  slots: Slots,
  now: number,
  options: { readonly holder: string; readonly max: number; readonly leaseMillis: number }
): readonly [Slots, boolean] => {
  const live = new Map([...slots].filter(([, expiresAt]) => expiresAt > now))
  if (!live.has(options.holder) && live.size >= options.max) return [live, false]
  live.set(options.holder, now + options.leaseMillis)
  return [live, true]
}

/**
 * What a store reports about one vendor (for `/stats` and `/metrics`).
 *
 * @category models
 */
export interface Snapshot {
  /** The learned rate in calls per second, if one was learned. */
  readonly learnedPerSecond: number | undefined
  readonly source: Source
  /** How long the vendor stays paused, in ms; 0 when it is not. */
  readonly pausedForMillis: number
  /** Live in-flight leases. */
  readonly inFlight: number
}

/**
 * Why a store could not answer (it is unreachable): `effect/persistence`'s error, which the engine
 * handles by handing the job back.
 *
 * @category errors
 */
export type RateLimitStoreError = PersistedRateLimiter.RateLimiterError

/**
 * A store failure as a {@link RateLimitStoreError}.
 *
 * @category errors
 */
export const storeError = (message: string, cause?: unknown): RateLimitStoreError =>
  new PersistedRateLimiter.RateLimiterError({
    reason: new PersistedRateLimiter.RateLimitStoreError({ message, cause })
  })

/**
 * The store contract. Every method is one atomic step on one vendor's state, on the store's clock.
 *
 * @category services
 */
export class RateLimitStore extends Context.Service<
  RateLimitStore,
  {
    /** {@link take}: the taker's slot (or none yet) and the wait in ms, on the store's clock. */
    readonly take: (vendor: string, pace: Pace) => Effect.Effect<Taken, RateLimitStoreError>
    /** {@link limited}. */
    readonly limited: (
      vendor: string,
      options: { readonly retryAfterMillis: number | undefined; readonly learn: boolean }
    ) => Effect.Effect<void, RateLimitStoreError>
    /** {@link advertised}. */
    readonly advertise: (vendor: string, perSecond: number | undefined) => Effect.Effect<void, RateLimitStoreError>
    /** {@link delayed}. */
    readonly delay: (vendor: string, millis: number) => Effect.Effect<void, RateLimitStoreError>
    /** {@link acquireSlot}: whether `holder` holds a slot now (taking one also renews it). */
    readonly acquireSlot: (
      vendor: string,
      options: { readonly holder: string; readonly max: number; readonly leaseMillis: number }
    ) => Effect.Effect<boolean, RateLimitStoreError>
    /** Gives `holder`'s slot back (nothing if it has none). */
    readonly releaseSlot: (vendor: string, holder: string) => Effect.Effect<void, RateLimitStoreError>
    readonly snapshot: (vendor: string) => Effect.Effect<Snapshot, RateLimitStoreError>
  }
>()("@vendorflow/core/RateLimitStore") {}

/**
 * What {@link Snapshot} says of a state and its slots at `now`.
 *
 * @category rules
 */
export const snapshotOf = (state: State, liveSlots: number, now: number): Snapshot => ({
  learnedPerSecond: state.source === "none" ? undefined : state.rate,
  source: state.source,
  pausedForMillis: Math.max(0, state.pausedUntil - now),
  inFlight: liveSlots
})

/**
 * A store in this process's memory, on Effect's `Clock`: for one process, and for tests.
 *
 * @category constructors
 */
export const makeMemory = Effect.sync(() => {
  const states = new Map<string, State>()
  const slots = new Map<string, Slots>()
  const stateOf = (vendor: string) => states.get(vendor) ?? initial
  const update = <A>(f: (now: number) => A) => Effect.map(Clock.currentTimeMillis, f)
  return RateLimitStore.of({
    take: (vendor, pace) =>
      update((now) => {
        const [state, taken] = take(stateOf(vendor), now, pace)
        states.set(vendor, state)
        return { ...taken, at: now }
      }),
    limited: (vendor, options) => update((now) => void states.set(vendor, limited(stateOf(vendor), now, options))),
    advertise: (vendor, perSecond) =>
      Effect.sync(() => void states.set(vendor, advertised(stateOf(vendor), perSecond))),
    delay: (vendor, millis) => Effect.sync(() => void states.set(vendor, delayed(stateOf(vendor), millis))),
    acquireSlot: (vendor, options) =>
      update((now) => {
        const [held, granted] = acquireSlot(slots.get(vendor) ?? new Map(), now, options)
        slots.set(vendor, held)
        return granted
      }),
    releaseSlot: (vendor, holder) =>
      Effect.sync(() => {
        const held = new Map(slots.get(vendor))
        held.delete(holder)
        slots.set(vendor, held)
      }),
    snapshot: (vendor) =>
      update((now) => {
        const live = [...(slots.get(vendor) ?? new Map<string, number>()).values()].filter((at) => at > now)
        return snapshotOf(stateOf(vendor), live.length, now)
      })
  })
})

/**
 * {@link makeMemory} as a layer.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimitStore> = Layer.effect(RateLimitStore, makeMemory)

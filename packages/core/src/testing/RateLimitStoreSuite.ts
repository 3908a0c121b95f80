/**
 * The conformance suite every {@link RateLimitStore} runs: memory in core's unit tests, Redis in
 * `@vendorflow/redis`'s integration tests, and any other backend's store in its own. It holds a
 * store to the rules in `RateLimitStore` (the pure functions a store applies atomically) and to
 * the guarantees the engine builds on: one pace and one pause shared by every worker, a learned
 * rate that never passes its ceiling, and in-flight slots that are never over the cap and that a
 * dead worker's leases give back.
 *
 * It runs on the real clock (a store outside the process does not see the test clock); what takes
 * time is waited for as a condition with a deadline. "Two workers" are two builds of the layer
 * (`Layer.fresh`); a store that lives inside its layer (memory) must be built once and provided to
 * both.
 *
 * @since 0.2.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Fiber, Layer, Schedule } from "effect"
import * as RateLimiter from "../RateLimiter.ts"
import * as RateLimitStore from "../RateLimitStore.ts"

const vendorName = () => `suite-${crypto.randomUUID().slice(0, 8)}`

const fixed = (intervalMillis: number): RateLimitStore.Pace => ({ _tag: "Fixed", intervalMillis })
const learned = (ceilingPerSecond: number): RateLimitStore.Pace => ({ _tag: "Learned", ceilingPerSecond })
// When a taken slot falls due, on the store's clock.
const slotAt = (slot: RateLimitStore.Taken) => slot.at + slot.waitMillis

// Waits until `check` holds, asking every 20 ms, for at most `millis`.
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, millis: number): Effect.Effect<boolean, E, R> =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ok) => ok }),
    Effect.timeoutOrElse({ duration: millis, orElse: () => Effect.succeed(false) })
  )

/**
 * Registers the suite under `name`, against the store `layer` builds.
 *
 * @category suites
 */
export const suite = <E>(name: string, layer: Layer.Layer<RateLimitStore.RateLimitStore, E>): void => {
  const build = Layer.build(Layer.fresh(layer)).pipe(Effect.map(Context.get(RateLimitStore.RateLimitStore)))

  describe(`RateLimitStore conformance: ${name}`, () => {
    it.layer(layer, { timeout: 30_000, excludeTestServices: true })((it) => {
      it.effect("hands out consecutive slots one interval apart on its own clock, to every worker", () =>
        Effect.gen(function* () {
          const [first, second] = [yield* build, yield* build]
          const vendor = vendorName()
          const taken = yield* Effect.forEach(
            Array.from({ length: 6 }, (_, k) => (k % 2 === 0 ? first : second)),
            (store) => store.take(vendor, fixed(250)),
            { concurrency: "unbounded" }
          )
          const slots = taken.map(slotAt).sort((a, b) => a - b)
          // The first slot was due at once: the one after it keeps the lag more distance.
          const lag = RateLimitStore.dueSlotLagMillis
          slots
            .slice(1)
            .forEach((slot, k) =>
              assert.closeTo(slot - slots[k]!, k === 0 ? 250 + lag : 250, 0.01, `slots ${k}, ${k + 1}`)
            )
          // The store's clock is what it says it is: near this process's (same host, or NTP).
          assert.closeTo(taken[0]!.at, yield* Clock.currentTimeMillis, 1000)
        })
      )

      it.effect("a late call moves the slots not handed out yet on, for every worker", () =>
        Effect.gen(function* () {
          const [first, second] = [yield* build, yield* build]
          const vendor = vendorName()
          const before = slotAt(yield* first.take(vendor, fixed(100)))
          yield* first.delay(vendor, 30)
          const after = slotAt(yield* second.take(vendor, fixed(100)))
          assert.closeTo(after - before, 100 + RateLimitStore.dueSlotLagMillis + 30, 0.01)
          // A vendor with no state yet has nothing to move (and gains none).
          yield* first.delay(vendorName(), 30)
        })
      )

      it.effect("keeps a pace per vendor", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const [a, b] = [vendorName(), vendorName()]
          yield* store.take(a, fixed(1000))
          assert.strictEqual((yield* store.take(b, fixed(1000))).waitMillis, 0)
        })
      )

      it.effect("an idle vendor's slot goes at once, and the slot after it keeps dueSlotLagMillis more distance", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const vendor = vendorName()
          yield* store.take(vendor, fixed(200))
          // Idle for over an interval: its next slot is past.
          yield* Effect.sleep(Duration.millis(500))
          const due = yield* store.take(vendor, fixed(200))
          const after = yield* store.take(vendor, fixed(200))
          assert.deepStrictEqual([due.granted, due.waitMillis], [true, 0])
          assert.closeTo(slotAt(after) - slotAt(due), 200 + RateLimitStore.dueSlotLagMillis, 0.01)
        })
      )

      it.effect("a 429 pauses the vendor for every worker until Retry-After", () =>
        Effect.gen(function* () {
          const [first, second] = [yield* build, yield* build]
          const vendor = vendorName()
          const start = yield* Clock.currentTimeMillis
          yield* first.limited(vendor, { retryAfterMillis: 400, learn: false })
          const { waitMillis: wait } = yield* second.take(vendor, fixed(10))
          const asked = (yield* Clock.currentTimeMillis) - start
          assert.closeTo(wait + asked, 400, 50)
          const snapshot = yield* second.snapshot(vendor)
          assert.isAbove(snapshot.pausedForMillis, 0)
          // A configured limit is not learned from a 429.
          assert.strictEqual(snapshot.learnedPerSecond, undefined)
        })
      )

      it.effect("a 429 cuts a learned rate from the slots of the last second; one during the pause cuts nothing", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const vendor = vendorName()
          // The first call's answer (no limit advertised) ends its probe; then three slots.
          yield* store.take(vendor, learned(Infinity))
          yield* store.advertise(vendor, undefined)
          const taken = yield* Effect.forEach([1, 2, 3], () => store.take(vendor, learned(Infinity)), {
            concurrency: "unbounded"
          })
          assert.isTrue(taken.every((slot) => slot.granted))
          // The 429 answers the last of them, once all four are due (at the pace of 10 a second).
          const latest = Math.max(...taken.map((slot) => slot.waitMillis))
          yield* Effect.sleep(Duration.millis(latest + 20))
          yield* store.limited(vendor, { retryAfterMillis: 5000, learn: true })
          const cut = yield* store.snapshot(vendor)
          // At most four slots in the last second, one of them refused: the vendor let at most 3
          // through, and the rate is cut below that.
          assert.isAtMost(cut.learnedPerSecond ?? Infinity, 3 * RateLimitStore.factors.cut + 0.01)
          assert.isAbove(cut.learnedPerSecond ?? 0, 0)
          // A second 429 during the pause changes nothing.
          yield* store.limited(vendor, { retryAfterMillis: 5000, learn: true })
          assert.strictEqual((yield* store.snapshot(vendor)).learnedPerSecond, cut.learnedPerSecond)
          assert.strictEqual(cut.source, "probed")
        })
      )

      it.effect("a 429 to a learned limit's first call pauses the vendor and cuts nothing", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const vendor = vendorName()
          yield* store.take(vendor, learned(Infinity))
          yield* store.limited(vendor, { retryAfterMillis: 300, learn: true })
          const snapshot = yield* store.snapshot(vendor)
          assert.isAbove(snapshot.pausedForMillis, 0)
          assert.strictEqual(snapshot.source, "none")
          assert.isUndefined(snapshot.learnedPerSecond)
        })
      )

      it.effect("a learned limit's first call goes alone until an answer advertises the limit", () =>
        Effect.gen(function* () {
          const [first, second] = [yield* build, yield* build]
          const vendor = vendorName()
          const probe = yield* first.take(vendor, learned(Infinity))
          assert.deepStrictEqual([probe.granted, probe.waitMillis, probe.probe], [true, 0, true])
          // Nothing is learned yet, and nobody else gets a slot: they are told to ask again soon.
          const turnedAway = yield* second.take(vendor, learned(Infinity))
          assert.isFalse(turnedAway.granted)
          assert.isAtMost(turnedAway.waitMillis, RateLimitStore.probePollMillis)
          assert.strictEqual((yield* second.snapshot(vendor)).source, "none")
          // The probe's answer advertises 50/s: the next slots follow it at once.
          yield* first.advertise(vendor, 50)
          const slots = yield* Effect.forEach([first, second, first], (store) => store.take(vendor, learned(Infinity)))
          assert.isTrue(slots.every((slot) => slot.granted && !slot.probe))
          const at = slots.map(slotAt)
          assert.closeTo(at[2]! - at[1]!, 20, 0.01)
          // The probe's slot is spaced at the advertised pace, not the initial rate's 100 ms.
          assert.isBelow(at[0]! - probe.at, 1000 / RateLimitStore.initialRate - 20)
        })
      )

      it.effect("a learned limit's probe ends with an answer that advertises nothing, or after probeMillis", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const [answered, silent] = [vendorName(), vendorName()]
          const nextSlot = (vendor: string) =>
            store.take(vendor, learned(Infinity)).pipe(
              Effect.repeat({
                schedule: Schedule.spaced(Duration.millis(RateLimitStore.probePollMillis)),
                until: (taken) => taken.granted
              }),
              Effect.timeout(Duration.seconds(5))
            )
          yield* store.take(answered, learned(Infinity))
          yield* store.advertise(answered, undefined)
          assert.isTrue((yield* store.take(answered, learned(Infinity))).granted)
          // At the initial rate (grown a little, the callers waiting).
          assert.closeTo((yield* store.snapshot(answered)).learnedPerSecond ?? 0, RateLimitStore.initialRate, 1)
          // No answer at all: the probe held everyone else for `probeMillis`, no longer.
          const probe = yield* store.take(silent, learned(Infinity))
          const next = yield* nextSlot(silent)
          assert.closeTo(next.at - probe.at, RateLimitStore.probeMillis, 150)
        })
      )

      it.effect("an advertised limit sets the pace, under the ceiling", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const vendor = vendorName()
          yield* store.advertise(vendor, 100)
          assert.deepStrictEqual(
            { ...(yield* store.snapshot(vendor)), pausedForMillis: 0 },
            { learnedPerSecond: 100, source: "advertised", pausedForMillis: 0, inFlight: 0 }
          )
          // The ceiling (10/s) wins over the advertised 100/s: the next slot is 100 ms on (and the
          // lag, the first one being due at once).
          const firstSlot = yield* store.take(vendor, learned(10))
          const secondSlot = yield* store.take(vendor, learned(10))
          assert.closeTo(slotAt(secondSlot) - slotAt(firstSlot), 100 + RateLimitStore.dueSlotLagMillis, 0.01)
          assert.strictEqual((yield* store.snapshot(vendor)).learnedPerSecond, 10)
        })
      )

      it.effect("a learned rate grows while callers wait, and never passes its ceiling", () =>
        Effect.gen(function* () {
          const store = yield* RateLimitStore.RateLimitStore
          const vendor = vendorName()
          const ceiling = 12
          const grown = yield* eventually(
            Effect.flatMap(store.take(vendor, learned(ceiling)), () =>
              Effect.map(store.snapshot(vendor), (snapshot) => {
                assert.isAtMost(snapshot.learnedPerSecond ?? 0, ceiling)
                return (snapshot.learnedPerSecond ?? 0) >= ceiling
              })
            ),
            10_000
          )
          assert.isTrue(grown, "the rate never reached its ceiling")
        })
      )

      it.effect("in-flight slots: never more than the cap, and a released one is free again", () =>
        Effect.gen(function* () {
          const [first, second] = [yield* build, yield* build]
          const vendor = vendorName()
          const options = (holder: string) => ({ holder, max: 2, leaseMillis: 10_000 })
          assert.isTrue(yield* first.acquireSlot(vendor, options("a")))
          assert.isTrue(yield* second.acquireSlot(vendor, options("b")))
          assert.isFalse(yield* first.acquireSlot(vendor, options("c")))
          // Retaking a held slot renews it rather than take another.
          assert.isTrue(yield* second.acquireSlot(vendor, options("b")))
          assert.strictEqual((yield* first.snapshot(vendor)).inFlight, 2)
          yield* first.releaseSlot(vendor, "a")
          yield* first.releaseSlot(vendor, "a")
          assert.isTrue(yield* second.acquireSlot(vendor, options("c")))
          assert.isFalse(yield* second.acquireSlot(vendor, options("d")))
        })
      )

      it.effect("the slots of a worker that died come back when their leases run out", () =>
        Effect.gen(function* () {
          const [dead, alive] = [yield* build, yield* build]
          const vendor = vendorName()
          yield* dead.acquireSlot(vendor, { holder: "dead-1", max: 1, leaseMillis: 300 })
          assert.isFalse(yield* alive.acquireSlot(vendor, { holder: "alive", max: 1, leaseMillis: 10_000 }))
          const freed = yield* eventually(
            alive.acquireSlot(vendor, { holder: "alive", max: 1, leaseMillis: 10_000 }),
            5_000
          )
          assert.isTrue(freed, "the dead worker's slot never came back")
        })
      )

      it.effect("limiters of three workers never run more calls than the cap at once", () =>
        Effect.gen(function* () {
          const limiters = yield* Effect.forEach([1, 2, 3], () =>
            Effect.flatMap(build, (store) =>
              RateLimiter.make.pipe(Effect.provideService(RateLimitStore.RateLimitStore, store))
            )
          )
          const vendor = vendorName()
          let running = 0
          let most = 0
          const oneCall = Effect.acquireUseRelease(
            Effect.sync(() => {
              running++
              most = Math.max(most, running)
            }),
            () => Effect.sleep("5 millis"),
            () => Effect.sync(() => running--)
          )
          yield* Effect.forEach(
            Array.from({ length: 60 }, (_, i) => limiters[i % 3]!),
            (limiter) => limiter.withSlot(vendor, 4, oneCall),
            { concurrency: "unbounded" }
          )
          assert.isAtMost(most, 4)
          assert.strictEqual(running, 0)
          assert.strictEqual((yield* limiters[0]!.snapshot(vendor)).inFlight, 0)
        })
      )

      it.effect("an interrupted wait for a slot leaves no slot held", () =>
        Effect.gen(function* () {
          const limiter = yield* RateLimiter.make
          const vendor = vendorName()
          const holding = yield* Effect.forkChild(limiter.withSlot(vendor, 1, Effect.never))
          const busy = yield* eventually(
            Effect.map(limiter.snapshot(vendor), (snapshot) => snapshot.inFlight === 1),
            5_000
          )
          assert.isTrue(busy)
          const waiting = yield* Effect.forkChild(limiter.withSlot(vendor, 1, Effect.void))
          yield* Fiber.interrupt(holding)
          yield* Fiber.join(waiting)
          yield* Fiber.interrupt(yield* Effect.forkChild(limiter.withSlot(vendor, 1, Effect.never)))
          assert.strictEqual((yield* limiter.snapshot(vendor)).inFlight, 0)
        })
      )
    })
  })
}

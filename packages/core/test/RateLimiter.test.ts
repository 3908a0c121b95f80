import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as Backend from "../src/Backend.ts"
import * as RateLimiter from "../src/RateLimiter.ts"
import * as RateLimitStore from "../src/RateLimitStore.ts"
import { RequestWritten } from "../src/Vendor.ts"
import { defineVendor } from "../src/VendorDefinition.ts"
import * as Vendorflow from "../src/Vendorflow.ts"

const limit = { limit: 5, window: "1 second" } as const
const interval = (1000 / 5) * RateLimiter.headroom
// How much further on the slot after an idle vendor's first one is.
const lag = RateLimitStore.dueSlotLagMillis
const learned = { _tag: "Learned", ceilingPerSecond: Infinity } as const
// The store's state after a take at each of `times`.
const takeAt = (state: RateLimitStore.State, times: ReadonlyArray<number>) =>
  times.reduce((current, now) => RateLimitStore.take(current, now, learned)[0], state)

// How late after its slot a call of `limit` may leave.
const tolerance = RateLimiter.tolerance(interval, limit.limit)

// A call that writes its request `after` ms in, as `Vendor.sendJson` tells the limiter.
const writesAfter = (after: number) => () =>
  Effect.andThen(after > 0 ? Effect.sleep(Duration.millis(after)) : Effect.void, written)
const written = Effect.flatMap(RequestWritten, (heard) => Effect.sync(() => heard?.()))

// A limiter over a memory store (changed by `override`) whose moves of the slots are recorded.
const recording = (
  override: (
    memory: RateLimitStore.RateLimitStore["Service"]
  ) => Partial<RateLimitStore.RateLimitStore["Service"]> = () => ({})
) =>
  Effect.gen(function* () {
    const memory = yield* RateLimitStore.makeMemory
    const moves: Array<number> = []
    const changed = { ...memory, ...override(memory) }
    const store = RateLimitStore.RateLimitStore.of({
      ...changed,
      delay: (vendor, millis) => Effect.tap(changed.delay(vendor, millis), () => Effect.sync(() => moves.push(millis)))
    })
    const limiter = yield* RateLimiter.make.pipe(Effect.provideService(RateLimitStore.RateLimitStore, store))
    return { limiter, moves }
  })

describe("RateLimiter", () => {
  it.effect("paces calls evenly: the nth concurrent caller waits n intervals (and the lag after the first)", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 8 }), () => limiter.wait("sync", limit), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("5 seconds")
      const waits = (yield* Fiber.join(fiber)).map(Duration.toMillis)
      // The first slot is due at once; the ones after it keep the lag more distance from it.
      waits.forEach((wait, n) => assert.closeTo(wait, n === 0 ? 0 : lag + n * interval, 1e-6))
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("never lets more than the limit into any one-second window", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 30 }), () => limiter.wait("sync", limit), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("10 seconds")
      const at = (yield* Fiber.join(fiber)).map(Duration.toMillis).sort((a, b) => a - b)
      const worst = Math.max(...at.map((start) => at.filter((t) => t >= start && t < start + 1000).length))
      assert.strictEqual(worst, 5)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("keeps one budget per vendor", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const fiber = yield* Effect.forkChild(
        Effect.all([limiter.wait("a", limit), limiter.wait("b", limit)], { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual((yield* Fiber.join(fiber)).map(Duration.toMillis), [0, 0])
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("two limiters over one store (two workers) share the budget", () =>
    Effect.gen(function* () {
      const store = yield* Layer.build(RateLimitStore.layerMemory)
      const [a, b] = yield* Effect.all([
        RateLimiter.make.pipe(Effect.provideContext(store)),
        RateLimiter.make.pipe(Effect.provideContext(store))
      ])
      const fiber = yield* Effect.forkChild(
        Effect.all([a.wait("sync", limit), b.wait("sync", limit)], { concurrency: 2 })
      )
      yield* TestClock.adjust("1 second")
      const waits = (yield* Fiber.join(fiber)).map(Duration.toMillis).sort((x, y) => x - y)
      assert.strictEqual(waits[0], 0)
      assert.closeTo(waits[1]!, lag + interval, 1e-6)
    })
  )
})

describe("RateLimiter, told hostile values", () => {
  it.effect("a 429 whose Retry-After is NaN (a classify's bad parse) pauses as one without it", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      yield* limiter.limited("nan", { limit, retryAfterMillis: Number.NaN })
      const fiber = yield* Effect.forkChild(limiter.wait("nan", limit))
      yield* TestClock.adjust(Duration.millis(RateLimitStore.defaultPauseMillis + 100))
      assert.isDefined(fiber.pollUnsafe(), "the caller still waits (or spins) after the default pause")
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it("takes the strictest of several advertised policies", () => {
    assert.deepStrictEqual(RateLimiter.advertisedBy({ "ratelimit-policy": "10;w=1, 50;w=60" }), {
      limit: 50,
      windowMillis: 60_000
    })
    assert.deepStrictEqual(
      RateLimiter.advertisedBy({ "ratelimit-policy": '"burst";q=100;w=1, "day";q=1000;w=86400' }),
      {
        limit: 1000,
        windowMillis: 86_400_000
      }
    )
  })

  it("ignores an advertised limit with no window, or none at all", () => {
    assert.isUndefined(RateLimiter.advertisedBy({ "ratelimit-policy": "10;w=0" }))
    assert.isUndefined(RateLimiter.advertisedBy({ "x-ratelimit-limit": "Infinity" }))
    assert.isUndefined(RateLimiter.advertisedBy({ "x-ratelimit-limit": "1e999" }))
  })

  it.effect("a learned limit without a ceiling stays finite whatever the headers say", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const auto = { limit: Number.POSITIVE_INFINITY, window: "1 second", learn: true } as const
      yield* limiter.heard("wild", auto, { "ratelimit-policy": "10;w=0" })
      const { learnedPerSecond } = yield* limiter.snapshot("wild")
      assert.isTrue(learnedPerSecond === undefined || Number.isFinite(learnedPerSecond), `${learnedPerSecond}`)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )
})

describe("RateLimiter, an advertised limit", () => {
  const auto = { limit: Number.POSITIVE_INFINITY, window: "1 second", learn: true } as const
  const headers = { "ratelimit-policy": "5;w=1" }

  it.effect("is paced again after a 429 cut it, while the answers still advertise it", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      yield* limiter.heard("told", auto, headers)
      yield* limiter.limited("told", { limit: auto, retryAfterMillis: 1000 })
      assert.strictEqual((yield* limiter.snapshot("told")).source, "probed")
      yield* TestClock.adjust("2 seconds")
      yield* limiter.heard("told", auto, headers)
      const { learnedPerSecond, source } = yield* limiter.snapshot("told")
      assert.strictEqual(source, "advertised")
      assert.closeTo(learnedPerSecond!, 5 / RateLimiter.headroom, 1e-9)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  // A limiter over a store whose state can be lost (as Redis's expires after a day unused, or is
  // flushed), and the way to lose it.
  const forgetful = Effect.gen(function* () {
    let current = yield* RateLimitStore.makeMemory
    const store = RateLimitStore.RateLimitStore.of({
      take: (vendor, pace) => current.take(vendor, pace),
      limited: (vendor, options) => current.limited(vendor, options),
      advertise: (vendor, perSecond) => current.advertise(vendor, perSecond),
      delay: (vendor, millis) => current.delay(vendor, millis),
      acquireSlot: (vendor, options) => current.acquireSlot(vendor, options),
      releaseSlot: (vendor, holder) => current.releaseSlot(vendor, holder),
      snapshot: (vendor) => current.snapshot(vendor)
    })
    const limiter = yield* RateLimiter.make.pipe(Effect.provideService(RateLimitStore.RateLimitStore, store))
    const forget = Effect.map(RateLimitStore.makeMemory, (fresh) => {
      current = fresh
    })
    return { limiter, forget, store }
  })

  it.effect("is told again to a store that forgot it (its state expired)", () =>
    Effect.gen(function* () {
      const { limiter, forget } = yield* forgetful
      yield* limiter.heard("forgot", auto, headers)
      yield* forget
      yield* TestClock.adjust("1 minute")
      yield* limiter.heard("forgot", auto, headers)
      assert.strictEqual((yield* limiter.snapshot("forgot")).source, "advertised")
    })
  )

  it.effect("is told by the answer to a new probe at once, though this worker told it a moment ago", () =>
    Effect.gen(function* () {
      const { limiter, forget } = yield* forgetful
      yield* limiter.heard("lost", auto, headers)
      yield* forget
      // The store starts over: this worker's call is the probe, and its answer ends it.
      const probe = yield* Effect.forkChild(limiter.wait("lost", auto))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(probe)
      yield* limiter.heard("lost", auto, headers)
      assert.strictEqual((yield* limiter.snapshot("lost")).source, "advertised")
    })
  )

  it.effect("is told at once by a worker turned away while another worker's probe is out", () =>
    Effect.gen(function* () {
      const { limiter, forget, store } = yield* forgetful
      const other = yield* RateLimiter.make.pipe(Effect.provideService(RateLimitStore.RateLimitStore, store))
      yield* limiter.heard("away", auto, headers)
      yield* forget
      // The other worker's call is the probe, and its answer never comes; this worker waits behind it.
      yield* other.wait("away", auto)
      const waiting = yield* Effect.forkChild(limiter.wait("away", auto))
      yield* TestClock.adjust("50 millis")
      // An answer to this worker, a moment after it last told the same limit.
      yield* limiter.heard("away", auto, headers)
      assert.strictEqual((yield* limiter.snapshot("away")).source, "advertised")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(waiting)
    })
  )
})

describe("RateLimitStore, counting slots for a 429", () => {
  // Paced at 100 a second (an advertised limit): a slot taken when due falls due where it is
  // taken, the slots taken right after it one interval and the lag on.
  const advertised = RateLimitStore.advertised(RateLimitStore.initial, 100)

  it("counts what the vendor counted in the last second after a ramp-up, not an average of two seconds", () => {
    const start = 1_000_000
    // Two slots in the first second, then forty in the last 400 ms of the next.
    const slow = takeAt(advertised, [start, start + 500])
    const ramp = takeAt(
      slow,
      Array.from({ length: 40 }, (_, i) => start + 1600 + i * 10)
    )
    // To a bucket: the slot due in now's bucket counts by the share of it that is past.
    assert.closeTo(RateLimitStore.lastSecond(ramp, start + 2000 + lag), 40, 1)
    // Later, what fell inside the second (the 14 slots due after start + 1850 + lag), to a bucket; then nothing.
    assert.closeTo(RateLimitStore.lastSecond(ramp, start + 2850 + lag), 14, 1)
    assert.strictEqual(RateLimitStore.lastSecond(ramp, start + 4000), 0)
  })

  it("a 429 learns what the vendor let through: slots due before it but the refused one, not those handed out ahead", () => {
    const start = 1_000_000
    // At 100 a second, each slot taken 250 ms before it is due (the first one due at once).
    const due = (k: number) => start + lag + 10 * k
    const refusedAt = due(150) + 5
    const taken = Array.from({ length: 176 }, (_, k) => Math.max(start, due(k) - 250))
    const state = takeAt(advertised, taken)
    // Due in the second before the 429: slots 51 to 150 (evenly spread, so the shares of the end
    // buckets are exact); not the 25 taken ahead, and none of the second is left out for them.
    assert.closeTo(RateLimitStore.lastSecond(state, refusedAt), 100, 1e-6)
    const cut = RateLimitStore.limited(state, refusedAt, { retryAfterMillis: 1000, learn: true })
    assert.closeTo(cut.refusedRate, 99, 1e-6)
  })

  it("counts a slot where it falls due, not when it was taken", () => {
    const start = 1_000_000
    // Ten slots taken at once, at 20 a second, fall due 50 ms apart (after the first, due at once,
    // and the lag): at `start + lag + 120` three are due (to a bucket), not ten.
    const ahead = takeAt(
      RateLimitStore.advertised(RateLimitStore.initial, 20),
      Array.from({ length: 10 }, () => start)
    )
    assert.closeTo(RateLimitStore.lastSecond(ahead, start + lag + 120), 3, 1)
  })
})

describe("RateLimitStore, the slot after a due one", () => {
  it("is placed the lag on from the take, whether the slot was due or a moment from due", () => {
    const start = 1_000_000
    const fixed = { _tag: "Fixed", intervalMillis: 20 } as const
    for (const ahead of [0, 0.5, 1, 14]) {
      const [state] = RateLimitStore.take({ ...RateLimitStore.initial, next: start + ahead }, start, fixed)
      assert.closeTo(state.next, start + lag + 20, 1e-9, `a slot ${ahead} ms from due`)
    }
    // A slot taken further ahead than the lag is on schedule: one interval on.
    const [ahead] = RateLimitStore.take({ ...RateLimitStore.initial, next: start + 50 }, start, fixed)
    assert.strictEqual(ahead.next, start + 70)
  })
})

describe("RateLimitStore, a learned rate growing", () => {
  it("grows only while callers wait for slots, not for the lag after a slot that was due", () => {
    const start = 1_000_000
    // Learned at 50 a second, no 429 yet; a caller every 25 ms (40 a second) for five seconds.
    const at50: RateLimitStore.State = { ...RateLimitStore.initial, rate: 50, source: "probed", grewAt: start }
    const state = takeAt(
      at50,
      Array.from({ length: 200 }, (_, i) => start + 25 * i)
    )
    assert.strictEqual(state.rate, 50)
  })
})

describe("RateLimiter, slots held ahead", () => {
  it.effect(
    "a 429 pauses every caller that has not got its slot yet: a worker holds slots only lookaheadMillis ahead",
    () =>
      Effect.gen(function* () {
        const limiter = yield* RateLimiter.RateLimiter
        const released: Array<number> = []
        yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: 12 }),
            () =>
              Effect.flatMap(limiter.wait("paused", limit), (waited) =>
                Effect.sync(() => released.push(Duration.toMillis(waited)))
              ),
            { concurrency: "unbounded" }
          )
        )
        yield* TestClock.adjust("50 millis")
        yield* limiter.limited("paused", { limit, retryAfterMillis: 1000 })
        yield* TestClock.adjust("5 seconds")
        // The slot now and the one held ahead of it (one interval on) went; the rest waited out the pause.
        const early = released.filter((at) => at < 1050)
        assert.strictEqual(early.length, 2)
        assert.closeTo(early[1]!, lag + interval, 1e-6)
        assert.strictEqual(released.length, 12)
      }).pipe(Effect.provide(RateLimiter.layerMemory))
  )

  it.effect("a learned limit's first call goes alone: the others take the pace its answer advertises", () =>
    Effect.gen(function* () {
      const store = yield* Layer.build(RateLimitStore.layerMemory)
      const [first, second] = yield* Effect.all([
        RateLimiter.make.pipe(Effect.provideContext(store)),
        RateLimiter.make.pipe(Effect.provideContext(store))
      ])
      const auto = { limit: Number.POSITIVE_INFINITY, window: "1 second", learn: true } as const
      assert.strictEqual(Duration.toMillis(yield* first.wait("probe", auto)), 0)
      const waiting = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 3 }), () => second.wait("probe", auto), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("50 millis")
      assert.isUndefined(waiting.pollUnsafe(), "a second call went before the first one's answer")
      yield* first.heard("probe", auto, { "ratelimit-policy": "40;w=1" })
      yield* TestClock.adjust("1 second")
      const waits = (yield* Fiber.join(waiting)).map(Duration.toMillis).sort((a, b) => a - b)
      // At 40/s from the probe's slot on: the first is due by now, the ones after it an interval apart.
      const advertisedInterval = (1000 / 40) * RateLimiter.headroom
      assert.isAtMost(waits[0]!, 50 + RateLimitStore.probePollMillis)
      assert.closeTo(waits[2]! - waits[1]!, advertisedInterval, 1e-6)
    })
  )
})

describe("RateLimiter, on a busy event loop", () => {
  it.live("a worker that always wakes late still calls: it gives up a slot at most once a call", () =>
    Effect.gen(function* () {
      let takes = 0
      const memory = yield* RateLimitStore.makeMemory
      const counting = RateLimitStore.RateLimitStore.of({
        ...memory,
        take: (vendor, pace) => Effect.suspend(() => (takes++, memory.take(vendor, pace)))
      })
      const limiter = yield* RateLimiter.make.pipe(Effect.provideService(RateLimitStore.RateLimitStore, counting))
      // The event loop blocked for 20 ms at a time, every timer fires late: more than the tolerance.
      const busy = setInterval(() => {
        const end = performance.now() + 20
        while (performance.now() < end) {
          // Busy: a synchronous stall, as a long garbage collection or a CPU-bound step makes.
        }
      }, 1)
      const calls = yield* Effect.forEach(
        Array.from({ length: 20 }),
        () => limiter.wait("lagging", { limit: 10, window: "1 second" }),
        { concurrency: "unbounded" }
      ).pipe(Effect.timeoutOption("15 seconds"), Effect.ensuring(Effect.sync(() => clearInterval(busy))))
      assert.isTrue(calls._tag === "Some", "the callers never all got through")
      assert.isAtMost(takes, 40)
    })
  )

  // A worker's event loop that stalls after a call's slot, before its request is written, makes
  // the call late at the vendor though it woke on time: the vendor counts arrivals, not slots.
  it("a stall between a call's slot and its request still keeps the vendor's limit", async () => {
    const limit = 40
    const windowMillis = 4000
    const arrivals: Array<number> = []
    let stalledAt = -1
    const server = createServer((request, response) => {
      if (request.url === "/stalled") stalledAt = arrivals.length
      arrivals.push(performance.now())
      request.resume()
      request.on("end", () => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))
    const stalling = defineVendor({
      name: "stalling",
      mode: "sync",
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      defaults: { rateLimit: { limit, window: `${windowMillis} millis` }, concurrency: 10 },
      request: (call) => {
        // Slots 101.5 ms apart leave 60 ms between a call and the one 40 slots on; a call may leave
        // 30 ms late. One that leaves 90 ms late, unchecked, would come 30 ms short of a window.
        if (call.payload["stall"] === true) {
          const end = performance.now() + 90
          while (performance.now() < end) {
            // Busy: a long garbage collection or a CPU-bound step of another job.
          }
        }
        return { path: call.payload["stall"] === true ? "/stalled" : "/call", body: {} }
      },
      response: Schema.Struct({}),
      result: () => ({})
    })
    const vf = await Vendorflow.createVendorflow({ vendors: [stalling], backend: Backend.memory })
    try {
      const jobs = await Promise.all(Array.from({ length: limit + 4 }, (_, n) => vf.submit({ stall: n === 3 })))
      const done = await Promise.all(jobs.map((job) => vf.waitFor(job.id)))
      assert.deepStrictEqual(new Set(done.map((job) => job.status)), new Set(["complete"]))
      assert.strictEqual(arrivals.length, jobs.length, "one call a job")
      assert.isBelow(stalledAt, jobs.length - limit, "the stalled call opens one of the spans measured")
      // Any `limit + 1` arrivals in a row span at least a window.
      const spans = arrivals.slice(limit).map((at, n) => at - arrivals[n]!)
      assert.isAtLeast(Math.min(...spans), windowMillis, `spans of ${limit + 1} arrivals: ${spans.map(Math.round)}`)
    } finally {
      await vf.close()
      server.close()
    }
  })

  it.effect("a late write moves the slots on by what it is past the tolerance, once a call", () =>
    Effect.gen(function* () {
      const { limiter, moves } = yield* recording()
      const calls = yield* Effect.forkChild(
        Effect.all([
          limiter.paced("v", limit, writesAfter(0)),
          limiter.paced("v", limit, writesAfter(5)),
          Effect.andThen(
            Effect.sync(() => assert.deepStrictEqual(moves, [], "written within the tolerance: nothing moved")),
            limiter.paced("v", limit, () => Effect.andThen(writesAfter(20 + tolerance)(), written))
          )
        ])
      )
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(calls)
      assert.strictEqual(moves.length, 1, `moved once, the second write not heard: ${moves}`)
      assert.closeTo(moves[0]!, 20, 1e-6, "moved by the excess")
    })
  )

  it.effect("a call woken late and written later still moves the slots by the whole of it", () =>
    Effect.gen(function* () {
      // The second take answers 230 ms late, 12 ms after its slot (the first's and the lag on).
      let takes = 0
      const { limiter, moves } = yield* recording((memory) => ({
        take: (vendor, pace) =>
          Effect.flatMap(memory.take(vendor, pace), (taken) =>
            takes++ === 1 ? Effect.as(Effect.sleep("230 millis"), taken) : Effect.succeed(taken)
          )
      }))
      yield* limiter.paced("v", limit, writesAfter(0))
      const second = yield* Effect.forkChild(limiter.paced("v", limit, writesAfter(4)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(second)
      const woken = 230 - lag - interval - tolerance
      assert.deepStrictEqual(
        moves.map((move) => Math.round(move * 1000) / 1000),
        [woken, 4].map((move) => Math.round(move * 1000) / 1000)
      )
    })
  )

  it.effect("a move the store refused does not stand in for the next late call's", () =>
    Effect.gen(function* () {
      let refuse = true
      const { limiter, moves } = yield* recording((memory) => ({
        delay: (vendor, millis) =>
          Effect.suspend(() => {
            if (!refuse) return memory.delay(vendor, millis)
            refuse = false
            return Effect.fail(RateLimitStore.storeError("unreachable"))
          })
      }))
      // Two calls slotted together, written 25 and 20 ms past their tolerance: the first's move is
      // refused, and does not count for the second's.
      const calls = yield* Effect.forkChild(
        Effect.all(
          [
            limiter.paced("v", limit, writesAfter(25 + tolerance)),
            limiter.paced("v", limit, writesAfter(20 + tolerance))
          ],
          { concurrency: 2 }
        )
      )
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(calls)
      assert.strictEqual(moves.length, 1, `one move reached the store: ${moves}`)
    })
  )

  it.effect("a limit that paces no call (0 a second) fails the wait at once, with what is wrong", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const error = yield* Effect.flip(limiter.wait("zero", { limit: 0, window: "1 second" }))
      assert.match(error.message, /zero: the rate limit 0\/1 second paces no call/)
    }).pipe(Effect.provide(RateLimiter.layerMemory))
  )
})

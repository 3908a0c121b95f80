import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { FaultScript, LocalServer, RateLimit } from "../src/simulator/index.ts"

describe("FaultScript parsing", () => {
  it("reads outages", () => {
    assert.deepStrictEqual(FaultScript.parseOutages("503:1000-7000, 502/3000:12000-13000"), [
      { status: 503, delayMs: 0, fromMs: 1000, toMs: 7000 },
      { status: 502, delayMs: 3000, fromMs: 12000, toMs: 13000 }
    ])
    assert.isUndefined(FaultScript.parseOutages("503:7000-1000"))
    assert.isUndefined(FaultScript.parseOutages("429:0-1000"))
    assert.deepStrictEqual(FaultScript.outageAt(FaultScript.parseOutages("503:100-200") ?? [], 150)?.status, 503)
    assert.isUndefined(FaultScript.outageAt(FaultScript.parseOutages("503:100-200") ?? [], 200))
  })

  it("reads answer plans: scripts by |, steps by comma, xN repeats", () => {
    const plan = FaultScript.parse("503x2,429:3 | ok | slow:250,garbage,502", FaultScript.parseAnswerStep)
    assert.deepStrictEqual(
      plan?.scripts.map((script) => script.map((step) => step.label)),
      [["503", "503", "429:3"], ["ok"], ["slow:250", "garbage", "502"]]
    )
    assert.deepStrictEqual(plan?.scripts[0]?.[2]?.fault, { _tag: "Status", status: 429, retryAfterSeconds: 3 })
    assert.deepStrictEqual(FaultScript.parse("429", FaultScript.parseAnswerStep)?.scripts[0]?.[0]?.fault, {
      _tag: "Status",
      status: 429,
      retryAfterSeconds: 1
    })
    assert.deepStrictEqual(FaultScript.parse("", FaultScript.parseAnswerStep), { scripts: [] })
    assert.isUndefined(FaultScript.parse("200", FaultScript.parseAnswerStep))
    assert.isUndefined(FaultScript.parse("503,,ok", FaultScript.parseAnswerStep))
    assert.isUndefined(FaultScript.parse("explode", FaultScript.parseAnswerStep))
  })

  it("reads callback plans", () => {
    const plan = FaultScript.parse("hold,ok|dropx2|duplicate", FaultScript.parseCallbackStep)
    assert.deepStrictEqual(
      plan?.scripts.map((script) => script.map((step) => step.fault)),
      [["hold", "ok"], ["drop", "drop"], ["duplicate"]]
    )
    assert.isUndefined(FaultScript.parse("503", FaultScript.parseCallbackStep))
    assert.deepStrictEqual(
      FaultScript.parse("late:2500,deep", FaultScript.parseCallbackStep)?.scripts[0]?.map((step) => step.fault),
      [{ _tag: "Late", millis: 2500 }, "deep"]
    )
    assert.deepStrictEqual(
      FaultScript.parse("deep|huge", FaultScript.parseAnswerStep)?.scripts.map((script) => script[0]?.fault),
      [{ _tag: "Deep" }, { _tag: "Huge" }]
    )
  })

  it("deals scripts round the jobs in order of first arrival", () => {
    const dealer = FaultScript.makeDealer(FaultScript.parse("503|ok,502", FaultScript.parseAnswerStep))
    assert.deepStrictEqual(
      ["x", "y", "z", "y", "x", "y"].map((id) => dealer.next(id)?.label ?? null),
      ["503", "ok", "503", "502", null, null]
    )
    assert.isUndefined(FaultScript.makeDealer(undefined).next("x"))
  })
})

describe("LocalServer and RateLimit parsing", () => {
  it("reads latencies", () => {
    assert.deepStrictEqual(LocalServer.parseMillisRange("100-500"), { min: 100, max: 500 })
    assert.deepStrictEqual(LocalServer.parseMillisRange("0"), { min: 0, max: 0 })
    assert.deepStrictEqual(LocalServer.parseMillisRange(" 20 - 30 "), { min: 20, max: 30 })
    assert.isUndefined(LocalServer.parseMillisRange("500-100"))
    assert.isUndefined(LocalServer.parseMillisRange("fast"))
  })

  it("reads rate limits", () => {
    assert.deepStrictEqual(RateLimit.parse("5/1s"), { limit: 5, windowMs: 1000 })
    assert.deepStrictEqual(RateLimit.parse("5"), { limit: 5, windowMs: 1000 })
    assert.deepStrictEqual(RateLimit.parse("5/s"), { limit: 5, windowMs: 1000 })
    assert.deepStrictEqual(RateLimit.parse("100/500ms"), { limit: 100, windowMs: 500 })
    assert.deepStrictEqual(RateLimit.parse("60/1m"), { limit: 60, windowMs: 60_000 })
    assert.isUndefined(RateLimit.parse("0/1s"))
    assert.isUndefined(RateLimit.parse("five"))
  })

  it.effect("slides its window: a slot frees exactly one window after it was taken", () =>
    Effect.gen(function* () {
      const window = RateLimit.makeWindow({ limit: 2, windowMs: 1000 })
      assert.strictEqual((yield* window.take)._tag, "Admitted")
      yield* TestClock.adjust(600)
      assert.strictEqual((yield* window.take)._tag, "Admitted")
      const limited = yield* window.take
      assert.deepStrictEqual(limited, { _tag: "Limited", retryAfterSeconds: 1 })
      yield* TestClock.adjust(400)
      assert.strictEqual((yield* window.take)._tag, "Admitted")
      assert.strictEqual((yield* window.take)._tag, "Limited")
    })
  )
})

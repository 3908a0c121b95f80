/**
 * The runner reads k6's stage and threshold syntax itself; these pin that reading to k6's.
 */
import { Load } from "@vendorflow/dev-stack"
import { assert, describe, it } from "vitest"
import { scenario } from "../profiles.js"
import * as Profile from "../src/Profile.ts"

describe("Profile", () => {
  it("reads k6 durations", () => {
    assert.strictEqual(Profile.parseDuration("30s"), 30_000)
    assert.strictEqual(Profile.parseDuration("1m30s"), 90_000)
    assert.strictEqual(Profile.parseDuration("500ms"), 500)
    assert.strictEqual(Profile.parseDuration("1h"), 3_600_000)
    assert.throws(() => Profile.parseDuration("30"), /not a k6 duration/)
    assert.throws(() => Profile.parseDuration("30 s"), /not a k6 duration/)
  })

  it("ramps VUs linearly within each stage from one VU, as k6's stages do", () => {
    const stages = Profile.timedStages(scenario.stages)
    assert.strictEqual(Load.totalMillis(stages), 120_000)
    assert.strictEqual(Load.maxVus(stages), 200)
    assert.strictEqual(Load.vusAt(stages, 0), 1)
    assert.strictEqual(Load.vusAt(stages, 15_000), 25)
    assert.strictEqual(Load.vusAt(stages, 30_000), 50)
    assert.strictEqual(Load.vusAt(stages, 45_000), 75)
    assert.strictEqual(Load.vusAt(stages, 75_000), 150)
    assert.strictEqual(Load.vusAt(stages, 100_000), 200)
    assert.strictEqual(Load.vusAt(stages, 120_000), 0)
  })

  it("scales stage durations for a smoke run", () => {
    const stages = Profile.timedStages(scenario.stages, 0.1)
    assert.strictEqual(Load.totalMillis(stages), 12_000)
    assert.strictEqual(Load.vusAt(stages, 3_000), 50)
  })

  it("reads the thresholds the profiles use, and refuses what it cannot evaluate", () => {
    const [duration, failed] = Profile.thresholdsOf(scenario)
    assert.deepStrictEqual(duration, {
      metric: "http_req_duration",
      source: "p(95)<2000",
      statistic: { _tag: "percentile", p: 95 },
      operator: "<",
      bound: 2000
    })
    assert.deepStrictEqual(failed?.statistic, { _tag: "rate" })
    assert.isTrue(Profile.holds(duration!, 1999.9))
    assert.isFalse(Profile.holds(duration!, 2000))
    assert.deepStrictEqual(Profile.parseThreshold("x", "p(99.9)<=5").statistic, { _tag: "percentile", p: 99.9 })
    assert.throws(() => Profile.parseThreshold("x", "p95<5"), /not understood/)
  })
})

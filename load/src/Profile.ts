/**
 * Reads a load profile (`../profiles.js`) the way k6 does: stage durations such as `"30s"` or
 * `"1m30s"` (into the stages along which dev-stack's `Load` ramps its VUs), and thresholds such as
 * `"p(95)<2000"` or `"rate<0.1"`.
 */
import type { Load } from "@vendorflow/dev-stack"
import type { Profile, Stage } from "../profiles.js"

const units: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Milliseconds in a k6 duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`.
 */
export const parseDuration = (text: string): number => {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== text.trim()) {
    throw new Error(`not a k6 duration: ${JSON.stringify(text)} (e.g. "30s", "1m30s", "500ms")`)
  }
  return parts.reduce((sum, [, value, unit]) => sum + Number(value) * (units[unit ?? "ms"] ?? 1), 0)
}

/**
 * The stages in milliseconds, each scaled by `scale` (a smoke run uses a small one).
 */
export const timedStages = (stages: ReadonlyArray<Stage>, scale = 1): ReadonlyArray<Load.Stage> =>
  stages.map((stage) => ({ millis: parseDuration(stage.duration) * scale, target: stage.target }))

/**
 * A statistic a threshold compares.
 */
export type Statistic =
  | { readonly _tag: "percentile"; readonly p: number }
  | { readonly _tag: "avg" | "min" | "max" | "med" | "rate" | "count" }

/**
 * One threshold, e.g. `p(95)<2000` on `http_req_duration`.
 */
export interface Threshold {
  readonly metric: string
  readonly source: string
  readonly statistic: Statistic
  readonly operator: "<" | "<=" | ">" | ">=" | "=="
  readonly bound: number
}

const thresholdPattern =
  /^\s*(p\((\d+(?:\.\d+)?)\)|avg|min|max|med|rate|count)\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/

/**
 * A threshold from k6's syntax; throws on anything this runner cannot evaluate, so a profile
 * never passes on a rule that was silently skipped.
 */
export const parseThreshold = (metric: string, source: string): Threshold => {
  const match = thresholdPattern.exec(source)
  if (match === null) throw new Error(`threshold on ${metric} not understood: ${JSON.stringify(source)}`)
  const [, name = "", percentile, operator = "<", bound = "0"] = match
  const statistic: Statistic =
    percentile !== undefined
      ? { _tag: "percentile", p: Number(percentile) }
      : { _tag: name as "avg" | "min" | "max" | "med" | "rate" | "count" }
  return { metric, source, statistic, operator: operator as Threshold["operator"], bound: Number(bound) }
}

/**
 * Every threshold of a profile.
 */
export const thresholdsOf = (profile: Profile): ReadonlyArray<Threshold> =>
  Object.entries(profile.thresholds).flatMap(([metric, rules]) => rules.map((rule) => parseThreshold(metric, rule)))

/**
 * Whether `value` satisfies the threshold.
 */
export const holds = (threshold: Threshold, value: number): boolean => {
  switch (threshold.operator) {
    case "<":
      return value < threshold.bound
    case "<=":
      return value <= threshold.bound
    case ">":
      return value > threshold.bound
    case ">=":
      return value >= threshold.bound
    case "==":
      return value === threshold.bound
  }
}

/**
 * Reads a load profile (`../profiles.js`) the way k6 does: stage durations such as `"30s"` or
 * `"1m30s"`, the ramping-VUs schedule (linear from one stage's target to the next, starting from one
 * VU as k6's `stages` shorthand does), and thresholds such as `"p(95)<2000"` or `"rate<0.1"`.
 */
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
 * A duration written back in k6's style: `2m0s`, `3.6s`, `450ms`.
 */
export const formatDuration = (millis: number): string => {
  if (millis < 1000) return `${Math.round(millis)}ms`
  if (millis < 60_000) return `${Number((millis / 1000).toFixed(1))}s`
  const minutes = Math.floor(millis / 60_000)
  return `${minutes}m${Math.round((millis - minutes * 60_000) / 1000)}s`
}

/**
 * One stage in milliseconds.
 */
export interface TimedStage {
  readonly millis: number
  readonly target: number
}

/**
 * The stages in milliseconds, each scaled by `scale` (a smoke run uses a small one).
 */
export const timedStages = (stages: ReadonlyArray<Stage>, scale = 1): ReadonlyArray<TimedStage> =>
  stages.map((stage) => ({ millis: parseDuration(stage.duration) * scale, target: stage.target }))

/**
 * How long the stages last altogether, in milliseconds.
 */
export const totalMillis = (stages: ReadonlyArray<TimedStage>): number =>
  stages.reduce((sum, stage) => sum + stage.millis, 0)

/**
 * The most VUs any stage asks for.
 */
export const maxVus = (stages: ReadonlyArray<TimedStage>, startVus = 1): number =>
  Math.max(startVus, ...stages.map((stage) => stage.target))

/**
 * How many VUs should be running `elapsed` ms in: linear within each stage from the previous
 * target (`startVus` before the first), rounded down as k6 does; 0 once the stages are over.
 */
export const vusAt = (stages: ReadonlyArray<TimedStage>, elapsed: number, startVus = 1): number => {
  let from = startVus
  let start = 0
  for (const stage of stages) {
    if (elapsed < start + stage.millis) {
      const progress = stage.millis === 0 ? 1 : (elapsed - start) / stage.millis
      return Math.floor(from + (stage.target - from) * progress)
    }
    from = stage.target
    start += stage.millis
  }
  return 0
}

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

/**
 * The end-of-run summary: the numbers k6 prints (requests per second, `http_req_duration`
 * percentiles, `http_req_failed`, iterations, checks) plus how the created jobs ended, with each of
 * the profile's thresholds evaluated against them. {@link summarize} makes the data (also written
 * as JSON by `--summary-export`), {@link render} the text.
 */
import { Load, type Stats } from "@vendorflow/dev-stack"
import type { Profile } from "../profiles.js"
import * as Profiles from "./Profile.ts"

type Trend = Stats.Trend

/**
 * What a run measured, and how the jobs it created ended up.
 */
export interface Result {
  readonly stats: Stats.Recorder
  readonly durationMillis: number
  readonly maxVus: number
  readonly jobs: Load.Jobs
}

/**
 * One threshold's outcome.
 */
export interface ThresholdOutcome {
  readonly metric: string
  readonly threshold: string
  readonly value: number
  readonly ok: boolean
}

/**
 * The summary of one run.
 */
export interface Summary {
  readonly profile: string
  readonly target: string
  readonly baseUrl: string
  readonly durationScale: number
  readonly durationSeconds: number
  readonly vusMax: number
  readonly httpReqs: { readonly count: number; readonly rate: number }
  readonly httpReqDuration: Trend
  readonly httpReqDurationByName: Readonly<Record<string, Trend>>
  readonly httpReqFailed: { readonly rate: number; readonly failed: number; readonly passed: number }
  readonly iterations: { readonly count: number; readonly rate: number; readonly interrupted: number }
  readonly checks: { readonly passes: number; readonly fails: number }
  readonly errors: ReadonlyArray<{ readonly kind: string; readonly count: number }>
  readonly jobs: {
    readonly created: number
    readonly complete: number
    readonly failed: number
    readonly unfinished: number
    readonly drainSeconds: number
  }
  readonly thresholds: ReadonlyArray<ThresholdOutcome>
  readonly ok: boolean
}

/**
 * Summarizes a run of `profile` and evaluates its thresholds.
 */
export const summarize = (options: {
  readonly profileName: string
  readonly profile: Profile
  readonly target: string
  readonly baseUrl: string
  readonly durationScale: number
  readonly result: Result
}): Summary => {
  const { stats, durationMillis, maxVus, jobs } = options.result
  const seconds = durationMillis / 1000
  const duration = stats.duration()
  const failedRate = stats.failed / Math.max(1, stats.requests)
  const { percentile: _percentile, ...trend } = duration
  const valueOf = (threshold: Profiles.Threshold): number => {
    const statistic = threshold.statistic
    if (threshold.metric === "http_req_failed") {
      if (statistic._tag === "rate") return failedRate
      if (statistic._tag === "count") return stats.failed
    }
    if (threshold.metric === "http_req_duration") {
      if (statistic._tag === "percentile") return duration.percentile(statistic.p)
      if (statistic._tag !== "rate" && statistic._tag !== "count") return duration[statistic._tag]
      if (statistic._tag === "count") return duration.count
    }
    if (threshold.metric === "http_reqs" && statistic._tag === "count") return stats.requests
    if (threshold.metric === "iterations" && statistic._tag === "count") return stats.iterations
    throw new Error(`threshold ${threshold.metric}: ${threshold.source} is not one this runner measures`)
  }
  const thresholds = Profiles.thresholdsOf(options.profile).map((threshold) => {
    const value = valueOf(threshold)
    return { metric: threshold.metric, threshold: threshold.source, value, ok: Profiles.holds(threshold, value) }
  })
  return {
    profile: options.profileName,
    target: options.target,
    baseUrl: options.baseUrl,
    durationScale: options.durationScale,
    durationSeconds: seconds,
    vusMax: maxVus,
    httpReqs: { count: stats.requests, rate: stats.requests / seconds },
    httpReqDuration: trend,
    httpReqDurationByName: Object.fromEntries(stats.durationByName().map(({ name, trend }) => [name, trend])),
    httpReqFailed: { rate: failedRate, failed: stats.failed, passed: stats.requests - stats.failed },
    iterations: { count: stats.iterations, rate: stats.iterations / seconds, interrupted: stats.interrupted },
    checks: stats.checks,
    errors: stats.errors(),
    jobs: {
      created: jobs.created,
      complete: jobs.complete,
      failed: jobs.failed,
      unfinished: jobs.unfinished,
      drainSeconds: jobs.drainMillis / 1000
    },
    thresholds,
    ok: thresholds.every((outcome) => outcome.ok)
  }
}

const ms = (millis: number) => (millis >= 1000 ? `${(millis / 1000).toFixed(2)}s` : `${millis.toFixed(2)}ms`)
const percent = (rate: number) => `${(rate * 100).toFixed(2)}%`

const trendLine = (trend: Trend) =>
  `avg=${ms(trend.avg)} min=${ms(trend.min)} med=${ms(trend.med)} max=${ms(trend.max)} ` +
  `p(90)=${ms(trend.p90)} p(95)=${ms(trend.p95)} p(99)=${ms(trend.p99)}`

const row = (mark: string, name: string, value: string) => `  ${mark} ${`${name} `.padEnd(34, ".")}: ${value}`

/**
 * The summary as k6 prints it: one line per metric, ✓/✗ on those with thresholds, then the
 * thresholds with the values they were held against.
 */
export const render = (summary: Summary): string => {
  const marked = (metric: string) => {
    const outcomes = summary.thresholds.filter((outcome) => outcome.metric === metric)
    return outcomes.length === 0 ? " " : outcomes.every((outcome) => outcome.ok) ? "✓" : "✗"
  }
  const checksTotal = summary.checks.passes + summary.checks.fails
  const jobs = summary.jobs
  const lines = [
    "",
    `  profile ${summary.profile}${summary.durationScale === 1 ? "" : ` (durations ×${summary.durationScale})`}, ` +
      `${Load.formatDuration(summary.durationSeconds * 1000)}, up to ${summary.vusMax} VUs`,
    `  target  ${summary.target} at ${summary.baseUrl}`,
    "",
    row(
      " ",
      "checks",
      `${percent(summary.checks.passes / Math.max(1, checksTotal))} ✓ ${summary.checks.passes} ✗ ${summary.checks.fails}`
    ),
    row(marked("http_req_duration"), "http_req_duration", trendLine(summary.httpReqDuration)),
    ...Object.entries(summary.httpReqDurationByName).map(([name, trend]) =>
      row(" ", `  { name:${name} }`, trendLine(trend))
    ),
    row(
      marked("http_req_failed"),
      "http_req_failed",
      `${percent(summary.httpReqFailed.rate)} (${summary.httpReqFailed.failed} of ${summary.httpReqs.count})`
    ),
    row(marked("http_reqs"), "http_reqs", `${summary.httpReqs.count} ${summary.httpReqs.rate.toFixed(1)}/s`),
    row(
      marked("iterations"),
      "iterations",
      `${summary.iterations.count} ${summary.iterations.rate.toFixed(1)}/s` +
        (summary.iterations.interrupted > 0 ? ` (${summary.iterations.interrupted} interrupted)` : "")
    ),
    row(" ", "vus_max", String(summary.vusMax)),
    row(
      " ",
      "jobs",
      `${jobs.created} created, ${jobs.complete} complete, ${jobs.failed} failed, ${jobs.unfinished} unfinished ` +
        `(${jobs.unfinished === 0 ? "all finished" : "polled"} ${jobs.drainSeconds.toFixed(1)}s after the load)`
    ),
    ...(summary.errors.length === 0
      ? []
      : [
          "",
          "  errors",
          ...summary.errors.slice(0, 5).map((error) => `    ${String(error.count).padStart(7)}  ${error.kind}`)
        ]),
    "",
    "  thresholds",
    ...summary.thresholds.map(
      (outcome) =>
        `    ${outcome.ok ? "✓" : "✗"} ${outcome.metric} ${outcome.threshold} ` +
        `(${outcome.metric === "http_req_failed" ? percent(outcome.value) : ms(outcome.value)})`
    ),
    ""
  ]
  return lines.join("\n")
}

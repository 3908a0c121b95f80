import { Effect, Option, type Schema } from "effect"
import type { Cleaner } from "../Cleaner.ts"
import type { Job } from "../Job.ts"
import type { JobStore } from "../JobStore.ts"
import * as Metrics from "../Metrics.ts"
import type { Collector } from "../Stats.ts"
import type { Vendor } from "../Vendor.ts"

/**
 * The services a completion uses, passed in rather than read from the context: the worker
 * completes a job per delivery, and providing them on every call cost a context merge each.
 */
export interface CompletionServices {
  readonly cleaner: Cleaner["Service"]
  readonly store: JobStore["Service"]
  readonly stats: Collector
}

/**
 * Cleans a vendor's data and completes a processing job with it: the one way a job completes,
 * whether the data came in the call's answer or in a webhook. `None` when the job had moved on.
 * A worker passes the version of its attempt, so an attempt that was given up on (and taken over
 * by a newer one) cannot overwrite the newer attempt's result.
 */
export const completeJob = Effect.fnUntraced(function* (
  services: CompletionServices,
  options: {
    readonly job: Job
    readonly vendor: Vendor
    readonly data: Schema.Json
    readonly expectedVersion?: number | undefined
  }
) {
  const result = yield* services.cleaner.clean(options.data, options.vendor.cleaning)
  const completed = yield* services.store.transition({
    id: options.job.id,
    from: "processing",
    to: "complete",
    expectedVersion: options.expectedVersion,
    set: { result },
    unset: ["awaitingCallback", "error"]
  })
  if (Option.isSome(completed)) {
    const labels = { vendor: options.vendor.name }
    yield* Metrics.count(Metrics.jobsCompleted, labels)
    const elapsed = Date.parse(completed.value.updatedAt) - Date.parse(completed.value.createdAt)
    yield* Metrics.observe(Metrics.endToEnd, labels, elapsed)
    yield* services.stats.recordCompleted(options.vendor.name, elapsed)
  }
  return completed
})

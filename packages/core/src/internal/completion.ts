import { Effect, Option, type Schema } from "effect"
import { Cleaner } from "../Cleaner.ts"
import type { Job } from "../Job.ts"
import { JobStore } from "../JobStore.ts"
import * as Metrics from "../Metrics.ts"
import { Stats } from "../Stats.ts"
import type { Vendor } from "../Vendor.ts"

/**
 * Cleans a vendor's data and completes a processing job with it: the one way a job completes,
 * whether the data came in the call's answer or in a webhook. `None` when the job had moved on.
 * A worker passes the version of its attempt, so an attempt that was given up on (and taken over
 * by a newer one) cannot overwrite the newer attempt's result.
 */
export const completeJob = Effect.fnUntraced(function* (options: {
  readonly job: Job
  readonly vendor: Vendor
  readonly data: Schema.Json
  readonly expectedVersion?: number | undefined
}) {
  const cleaner = yield* Cleaner
  const store = yield* JobStore
  const result = yield* cleaner.clean(options.data, options.vendor.cleaning)
  const completed = yield* store.transition({
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
    yield* (yield* Stats).recordCompleted(options.vendor.name, elapsed)
  }
  return completed
})

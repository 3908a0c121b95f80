import { Effect, type Schema } from "effect"
import { Cleaner } from "../Cleaner.ts"
import type { Job } from "../Job.ts"
import { JobStore } from "../JobStore.ts"
import type { Vendor } from "../Vendor.ts"

/**
 * Cleans a vendor's data and completes a processing job with it: the one way a job completes,
 * whether the data came in the call's answer or in a webhook. `None` when the job had moved on.
 */
export const completeJob = Effect.fnUntraced(function* (job: Job, vendor: Vendor, data: Schema.Json) {
  const cleaner = yield* Cleaner
  const store = yield* JobStore
  const result = yield* cleaner.clean(data, vendor.cleaning)
  return yield* store.transition({
    id: job.id,
    from: "processing",
    to: "complete",
    set: { result },
    unset: ["awaitingCallback", "error"]
  })
})

import { Effect, Option, type Schema } from "effect"
import type { Cleaner } from "../Cleaner.ts"
import type { Job, JobFailure, JobStatus } from "../Job.ts"
import type { JobStore } from "../JobStore.ts"
import * as Metrics from "../Metrics.ts"
import type { Collector } from "../Stats.ts"
import { type Vendor, VendorError } from "../Vendor.ts"

/**
 * The services a completion uses, passed in rather than read from the context: a job is completed
 * once per delivery, and providing them on every call would cost a context merge each.
 */
export interface CompletionServices {
  readonly cleaner: Cleaner["Service"]
  readonly store: JobStore["Service"]
  readonly stats: Collector
}

/** What {@link completeJob} completes, with what. */
export interface Completion {
  readonly job: Job
  readonly vendor: Vendor
  readonly data: Schema.Json
  readonly from?: JobStatus | undefined
  readonly expectedVersion?: number | undefined
}

/**
 * Cleans a vendor's data and completes a waiting job with it: the one way a job completes, whether
 * the data came in the call's answer, in a webhook or from a status check. `None` when the job had
 * moved on. The job is `processing` unless `from` says otherwise (a callback may find it `pending`,
 * queued to be sent again). A worker passes the version of its attempt, so an attempt that was
 * given up on (and taken over by a newer one) cannot overwrite the newer attempt's result.
 *
 * Data that breaks cleaning or storing (a bug in an adapter's mapping, a value that is not JSON)
 * fails with an `InvalidResponse` {@link VendorError} rather than a defect: the job fails with that
 * reason instead of being delivered again, which would call the vendor again.
 */
export const completeJob = (services: CompletionServices, options: Completion) =>
  complete(services, options).pipe(
    Effect.catchDefect((defect) =>
      Effect.fail(
        new VendorError({
          vendor: options.vendor.name,
          reason: "InvalidResponse",
          message: `${options.vendor.name}'s answer could not be cleaned and stored: ${describe(defect)}`
        })
      )
    )
  )

const complete = Effect.fnUntraced(function* (services: CompletionServices, options: Completion) {
  const result = yield* services.cleaner.clean(options.data, options.vendor.cleaning)
  const completed = yield* services.store.transition({
    id: options.job.id,
    from: options.from ?? "processing",
    to: "complete",
    expectedVersion: options.expectedVersion,
    set: { result },
    unset: ["awaitingCallback", "error", "nextRetryAt"]
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

const describe = (defect: unknown): string => (defect instanceof Error ? defect.message : String(defect))

/**
 * A vendor error as a job (and its dead letter) keeps it: the message cleaned as the vendor's data
 * is, since it may quote the vendor's body (an error page, a schema's complaint about a value).
 */
export const failureOf = (cleaner: Cleaner["Service"], error: VendorError): Effect.Effect<JobFailure> =>
  Effect.map(cleaner.clean(error.message), (message) => ({
    reason: error.reason,
    message: typeof message === "string" ? message : error.reason
  }))

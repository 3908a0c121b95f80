/**
 * Receiving an async vendor's callback, from the request as it arrived to the job holding the
 * vendor's answer. The steps, in the order they run:
 *
 * 1. `vendorOf`: the vendor the webhook's URL names, which must take webhooks.
 * 2. parse: the vendor's adapter (`Vendor.parseWebhook`; for a vendor built from a definition,
 *    `VendorDefinition.webhookParser`) verifies the signature over the raw body, refuses a signed
 *    delivery that was applied before, and reads the job id and the data.
 * 3. `jobOf`: the job it names, which must be that vendor's.
 * 4. `checkToken`: the token in the URL was made for that job and the run it is in now.
 * 5. `apply`: the data, cleaned, completes the job while the job still waits for its vendor.
 * 6. spend: only now is the signature claimed in the replay guard (`WebhookDelivery.claimReplay`),
 *    so a callback that could not be applied (the store was down) may come again byte for byte.
 *
 * The other half of the contract is made on the worker's side: {@link callbackUrl}, where the
 * vendor posts, carrying the token of the job's run. Reading the body and the URL, and answering
 * with problems, is the server's (`POST /vendor-webhook/{vendor}`); `JobService.receiveWebhook` runs
 * {@link make}'s receiver.
 *
 * @since 0.1.0
 */
import { Effect, Option, Redacted, Schema } from "effect"
import { Cleaner } from "./Cleaner.ts"
import { type CompletionServices, completeJob } from "./internal/completion.ts"
import { withSpanUnder } from "./internal/traceContext.ts"
import { type Job, type JobId, JobNotFound } from "./Job.ts"
import { JobStore, JobStoreError } from "./JobStore.ts"
import { Stats } from "./Stats.ts"
import { type Vendor, WebhookError, type WebhookRequest } from "./Vendor.ts"
import { UnknownVendor, VendorRegistry } from "./VendorRegistry.ts"
import * as WebhookSignature from "./WebhookSignature.ts"

/**
 * A genuine callback that its job no longer waits for: the job failed before it came, or it
 * answers a call from before an operator's retry (an earlier run). Its data is not stored, and the
 * vendor is told so rather than thanked.
 *
 * @category errors
 */
export class CallbackNotApplied extends Schema.TaggedError<CallbackNotApplied>()("CallbackNotApplied", {
  id: Schema.String,
  why: Schema.String
}) {
  override get message(): string {
    return `the callback for job ${this.id} was not applied: ${this.why}`
  }
}

/**
 * How many times a callback is tried against a job that keeps changing under it (a worker
 * claiming it, or marking it as awaiting the callback) before it is answered as if the store were
 * unavailable, so that the vendor sends it again.
 *
 * @category constants
 */
export const callbackApplyRounds = 10

/**
 * Where an async vendor posts its answer to one run of one job: `<base>/vendor-webhook/<vendor>`
 * with the run's callback token (`WebhookSignature.callbackToken`) as `?token=`.
 *
 * @category callback URLs
 */
export const callbackUrl = (options: {
  /** Our public base URL, without a trailing slash. */
  readonly base: string
  readonly vendor: string
  /** The callback tokens' secret (`WebhookSignature.callbackSecret`). */
  readonly secret: string
  readonly jobId: JobId
  readonly run: number
}): string =>
  WebhookSignature.withCallbackToken(
    `${options.base}/vendor-webhook/${encodeURIComponent(options.vendor)}`,
    WebhookSignature.callbackToken({ secret: options.secret, jobId: options.jobId, run: options.run })
  )

/**
 * Receives one callback for the vendor named in its URL. It succeeds only when the job holds a
 * vendor's answer: the callback was applied, or found the job complete already (a repeat, which
 * changes nothing and returns the job as it is). A callback for a failed job, or of an earlier run,
 * is {@link CallbackNotApplied}.
 *
 * @category models
 */
export type Receive = (
  vendor: string,
  request: WebhookRequest
) => Effect.Effect<Job, UnknownVendor | WebhookError | JobNotFound | CallbackNotApplied | JobStoreError>

// What receiving a callback uses, read once when the receiver is made.
interface Receiving {
  readonly store: JobStore["Service"]
  readonly registry: VendorRegistry["Service"]
  readonly completion: CompletionServices
  readonly callbackSecret: string
  /** The vendors that take webhooks, named when one that does not is asked for. */
  readonly webhookVendors: ReadonlyArray<string>
}

/**
 * The receiver over the store, registry, cleaner and stats in context, checking callback tokens
 * with `CALLBACK_TOKEN_SECRET` (the secret the workers make them with).
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const store = yield* JobStore
  const registry = yield* VendorRegistry
  const receiving: Receiving = {
    store,
    registry,
    completion: { cleaner: yield* Cleaner, store, stats: yield* Stats },
    callbackSecret: Redacted.value(yield* WebhookSignature.callbackSecret),
    webhookVendors: registry.vendors.filter((vendor) => vendor.parseWebhook !== undefined).map((v) => v.name)
  }
  return receive(receiving)
})

// The steps, in the order the module docs list them. The span keeps the service's name, which
// traces and dashboards know it by.
const receive = (receiving: Receiving): Receive =>
  Effect.fn("Webhook.receive")(function* (vendorName: string, request: WebhookRequest) {
    const { vendor, parse } = yield* vendorOf(receiving, vendorName)
    const delivery = yield* parse(request)
    const job = yield* jobOf(receiving.store, vendor, delivery.jobId)
    yield* checkToken(receiving.callbackSecret, request.callbackToken, job)
    const settled = yield* apply(receiving, vendor, job, delivery.data).pipe(
      // The completion joins the job's trace; the request's own span stays in the vendor's.
      withSpanUnder("Webhook.complete", job.traceparent, { "job.id": job.id, "job.vendor": job.vendor })
    )
    // Only now that the job holds an answer is the signature spent: one that failed may come again.
    if (delivery.claimReplay !== undefined) yield* delivery.claimReplay
    return settled
  })

/**
 * The vendor a webhook names, with its parser: an unknown vendor, or one that takes no webhooks,
 * is `UnknownVendor`.
 */
const vendorOf = Effect.fnUntraced(function* (receiving: Pick<Receiving, "registry" | "webhookVendors">, name: string) {
  const vendor = yield* receiving.registry.get(name)
  if (vendor.parseWebhook === undefined) {
    return yield* new UnknownVendor({ vendor: name, known: receiving.webhookVendors })
  }
  return { vendor, parse: vendor.parseWebhook }
})

const read = (store: JobStore["Service"], id: JobId) =>
  Effect.flatMap(store.get(id), (job) =>
    Option.isSome(job) ? Effect.succeed(job.value) : Effect.fail(new JobNotFound({ id }))
  )

/** The job a callback names; another vendor's job is not found, as if it did not exist. */
const jobOf = (store: JobStore["Service"], vendor: Vendor, id: JobId) =>
  Effect.flatMap(read(store, id), (job) =>
    job.vendor === vendor.name ? Effect.succeed(job) : Effect.fail(new JobNotFound({ id }))
  )

/**
 * The token in the URL was made for this job's run: a URL leaked for one job cannot complete
 * another, and a call from before an operator's retry cannot complete the retried run. Every call
 * of the current run is answered by the same token (a resubmission after a callback deadline
 * reuses the vendor's job, whose callback may come from the first call).
 */
const checkToken = (secret: string, token: string | undefined, job: Job) => {
  const verification = WebhookSignature.verifyCallbackToken({ secret, token, jobId: job.id, run: job.run })
  if (verification === "valid") return Effect.void
  if (verification === "earlier-run") {
    return Effect.fail(new CallbackNotApplied({ id: job.id, why: "it answers a call made before the job was retried" }))
  }
  return Effect.fail(
    new WebhookError({ reason: "BadSignature", message: `the callback URL's token is ${verification}` })
  )
}

/**
 * Applies a callback's data to its job while the job waits for the vendor (pending or processing);
 * a job that moved in the meantime is read again and judged as it now is.
 */
const apply = (
  receiving: Pick<Receiving, "store" | "completion">,
  vendor: Vendor,
  job: Job,
  data: Schema.Json,
  round = 1
): Effect.Effect<Job, CallbackNotApplied | JobNotFound | JobStoreError | WebhookError> => {
  if (job.status === "complete") return Effect.succeed(job)
  if (job.status === "failed") {
    const why = `the job failed (${job.error?.reason ?? "no reason"}) before it came; retry the job to run it again`
    return Effect.fail(new CallbackNotApplied({ id: job.id, why }))
  }
  return completeJob(receiving.completion, { job, vendor, data, from: job.status, expectedVersion: job.version }).pipe(
    Effect.catchTag("VendorError", (error) =>
      Effect.fail(new WebhookError({ reason: "Malformed", message: error.message }))
    ),
    Effect.flatMap((completed) => {
      if (Option.isSome(completed)) return Effect.succeed(completed.value)
      if (round >= callbackApplyRounds) {
        const message = `job ${job.id} kept changing while its callback was applied; the vendor may send it again`
        return Effect.fail(new JobStoreError({ reason: "Unavailable", message }))
      }
      return Effect.flatMap(read(receiving.store, job.id), (now) =>
        now.run === job.run
          ? apply(receiving, vendor, now, data, round + 1)
          : Effect.fail(new CallbackNotApplied({ id: job.id, why: "the job was sent round again meanwhile" }))
      )
    })
  )
}

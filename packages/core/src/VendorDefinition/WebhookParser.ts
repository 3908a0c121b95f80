/**
 * The webhook parser an async vendor's definition is built with: signature, replay, JSON, schema
 * and job id, checked in that order over the raw body. Re-exported by `VendorDefinition`.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Schema } from "effect"
import { JobId, maxJsonDepth, nestsDeeperThan } from "../Job.ts"
import * as Vendor from "../Vendor.ts"
import * as WebhookSignature from "../WebhookSignature.ts"
import type { WebhookSpec } from "./Definition.ts"

const refusals: Readonly<Record<Exclude<WebhookSignature.Verification, "valid" | "missing">, string>> = {
  malformed: "the signature header is malformed",
  stale: "the signature's timestamp is outside the tolerance",
  mismatch: "the signature does not match the body"
}

/**
 * A webhook parser for one vendor: checks the signature over the raw body, refuses a signature
 * whose callback was applied before, decodes the body and finds the job. A missing header is
 * `MissingSignature`, a malformed, stale or mismatched one `BadSignature`, an applied one again
 * `Replayed`, a body the schema refuses, nested deeper than `Job.maxJsonDepth` or without a job id
 * `Malformed`. The delivery's `claimReplay` spends the signature (the engine runs it once the
 * callback is applied).
 *
 * @category webhooks
 */
export const webhookParser = <Hook>(
  spec: WebhookSpec<Hook>,
  options: {
    readonly vendor: string
    readonly secret: string
    readonly guard?: WebhookSignature.ReplayGuard["Service"] | undefined
  }
) => {
  const scheme = spec.signature ?? WebhookSignature.hmacSha256
  const tolerance = spec.toleranceSeconds ?? WebhookSignature.defaultToleranceSeconds
  const guard = options.guard ?? WebhookSignature.makeMemoryReplayGuard()
  const decode = Schema.decodeUnknownEffect(spec.schema)
  const refuse = (reason: Vendor.WebhookError["reason"], message: string) =>
    Effect.fail(new Vendor.WebhookError({ reason, message }))
  return Effect.fn("Vendor.parseWebhook")(function* (request: Vendor.WebhookRequest) {
    const signature = request.headers[scheme.header]
    const nowSeconds = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const verification = scheme.verify({
      secret: options.secret,
      body: request.body,
      header: signature,
      nowSeconds,
      toleranceSeconds: tolerance
    })
    if (verification === "missing") return yield* refuse("MissingSignature", `no ${scheme.header} header`)
    if (verification !== "valid") return yield* refuse("BadSignature", refusals[verification])
    const replayKey = `${options.vendor}:${signature}`
    if (yield* guard.seen(replayKey)) return yield* refuse("Replayed", "this signed delivery was applied before")
    const json = yield* decodeJsonBody(request.body).pipe(
      Effect.catch(() => refuse("Malformed", "the body is not JSON"))
    )
    if (nestsDeeperThan(json)) return yield* refuse("Malformed", `the body nests deeper than ${maxJsonDepth} levels`)
    const hook = yield* decode(json).pipe(
      Effect.catch((error) => refuse("Malformed", `the callback is not what ${options.vendor} sends: ${error.message}`))
    )
    const read = Effect.try({
      try: () => ({ jobId: spec.jobId(hook), data: spec.result(hook) }),
      catch: (error) =>
        new Vendor.WebhookError({ reason: "Malformed", message: `the adapter could not read it: ${String(error)}` })
    })
    const { data, jobId } = yield* read
    const delivery: Vendor.WebhookDelivery = {
      jobId: yield* decodeJobId(jobId).pipe(
        Effect.catch(() => refuse("Malformed", "the callback names no job id we issued"))
      ),
      data,
      claimReplay: Effect.asVoid(guard.claim(replayKey, WebhookSignature.replayWindowSeconds(tolerance)))
    }
    return delivery
  })
}

const decodeJsonBody = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Unknown))
const decodeJobId = Schema.decodeUnknownEffect(JobId)

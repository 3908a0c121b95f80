/**
 * The checks of async vendors: the webhook URL passed, signed callbacks accepted, bad, missing,
 * stale and replayed signatures and malformed bodies refused, duplicate and out-of-order callbacks
 * mapped to their jobs; and the status check of an overdue job.
 *
 * @since 0.1.0
 */
import { Job, type Vendor, WebhookSignature } from "@vendorflow/core"
import { Cause, Effect, Exit, Schedule } from "effect"
import type * as StubServer from "../../simulator/StubServer.ts"
import * as VendorSimulator from "../../simulator/VendorSimulator.ts"
import {
  type asyncVendorCheck,
  type Check,
  CheckFailed,
  type Context,
  describeExit,
  emptyRequest,
  expect,
  failCheck,
  idempotencyHeader,
  onlyRequest,
  parseWebhook,
  signedCallback,
  statusCheck
} from "./Context.ts"

const tokenOf = (url: string) => WebhookSignature.callbackTokenOf(url) ?? ""

const applyWebhook = (context: Context, request: Vendor.WebhookRequest) =>
  Effect.tap(parseWebhook(context, request), (delivery) => delivery.claimReplay ?? Effect.void)

const expectRefusal = (context: Context, request: Vendor.WebhookRequest, reason: Vendor.WebhookError["reason"]) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(parseWebhook(context, request))
    if (Exit.isSuccess(exit)) {
      return yield* failCheck(`expected the callback to be refused as ${reason}, but it was accepted`)
    }
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") return yield* failCheck(`the webhook parser died: ${Cause.pretty(exit.cause)}`)
    if (error.value.reason !== reason) {
      return yield* failCheck(`expected ${reason}, got ${error.value.reason}: ${error.value.message}`)
    }
  })

// Polls until `check` holds, failing the check past the deadline instead of hanging it.
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean, what: string) =>
  read.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: check }),
    Effect.timeoutOrElse({ duration: "3 seconds", orElse: () => failCheck(`${what} within 3 seconds`) })
  )

const asWebhookRequest = (received: StubServer.Received): Vendor.WebhookRequest => ({
  headers: received.headers,
  body: received.body,
  callbackToken: WebhookSignature.callbackTokenOf(received.url)
})

/** The checks for async vendors and the status check, by name. */
export const callbackChecks: Readonly<Record<(typeof asyncVendorCheck)[number] | typeof statusCheck, Check>> = {
  "passes the webhook URL": (context) =>
    Effect.gen(function* () {
      const call = context.request()
      yield* Effect.exit(context.vendor.call(call))
      const found = VendorSimulator.findWebhookUrl(yield* onlyRequest(context))
      yield* expect(
        found === call.webhookUrl,
        `expected the webhook URL ${call.webhookUrl} in the request, found ${found ?? "none"}`
      )
    }),

  "accepts a signed callback": (context) =>
    Effect.gen(function* () {
      const call = context.request()
      yield* context.vendor
        .call(call)
        .pipe(Effect.mapError((error) => new CheckFailed({ message: `the call failed: ${error.message}` })))
      const [delivery] = yield* eventually(context.receiver.received, (all) => all.length > 0, "no callback arrived")
      const parsed = yield* parseWebhook(context, asWebhookRequest(delivery as StubServer.Received)).pipe(
        Effect.mapError((error) => new CheckFailed({ message: `the vendor's callback was refused: ${error.message}` }))
      )
      yield* expect(parsed.jobId === call.jobId, `the callback was read as job ${parsed.jobId}, not ${call.jobId}`)
    }),

  "refuses a bad signature": (context) =>
    Effect.gen(function* () {
      const good = yield* signedCallback(context, Job.makeJobId())
      yield* expectRefusal(context, { ...good, body: `${good.body} ` }, "BadSignature")
      yield* expectRefusal(
        context,
        yield* signedCallback(context, Job.makeJobId(), { secret: "wrong" }),
        "BadSignature"
      )
    }),

  "refuses a missing signature": (context) =>
    Effect.gen(function* () {
      const good = yield* signedCallback(context, Job.makeJobId())
      yield* expectRefusal(
        context,
        { headers: { "content-type": "application/json" }, body: good.body },
        "MissingSignature"
      )
    }),

  "refuses a stale timestamp": (context) =>
    Effect.gen(function* () {
      const tolerance =
        (context.definition.mode === "async" ? context.definition.webhook.toleranceSeconds : undefined) ??
        WebhookSignature.defaultToleranceSeconds
      const stale = yield* signedCallback(context, Job.makeJobId(), { secondsAgo: tolerance + 60 })
      yield* expectRefusal(context, stale, "BadSignature")
    }),

  "refuses a replayed callback": (context) =>
    Effect.gen(function* () {
      const delivery = yield* signedCallback(context, Job.makeJobId())
      yield* applyWebhook(context, delivery).pipe(
        Effect.mapError((error) => new CheckFailed({ message: `the first delivery was refused: ${error.message}` }))
      )
      yield* expectRefusal(context, delivery, "Replayed")
    }),

  "refuses a malformed callback": (context) =>
    Effect.forEach(
      ["{not json", "[]", JSON.stringify({ unexpected: true })],
      (body) =>
        Effect.flatMap(signedCallback(context, Job.makeJobId(), { body }), (request) =>
          expectRefusal(context, request, "Malformed").pipe(
            Effect.mapError((failed) => new CheckFailed({ message: `for the body ${body}: ${failed.message}` }))
          )
        ),
      { discard: true }
    ),

  "maps duplicate and out-of-order callbacks to their jobs": (context) =>
    Effect.gen(function* () {
      yield* context.simulator.injectCallbacks("Hold", "Hold", "Duplicate")
      const calls = [context.request(), context.request(), context.request()]
      yield* Effect.forEach(calls, (call) =>
        context.vendor
          .call(call)
          .pipe(Effect.mapError((error) => new CheckFailed({ message: `a call failed: ${error.message}` })))
      )
      yield* eventually(context.simulator.held, (held) => held === 2, "the simulator did not hold two callbacks")
      yield* context.simulator.release("reverse")
      const deliveries = yield* eventually(
        context.receiver.received,
        (all) => all.length === 4,
        "not all 4 callbacks arrived"
      )
      const accepted = new Set<string>()
      for (const delivery of deliveries) {
        const expected = tokenOf(delivery.url)
        const exit = yield* Effect.exit(applyWebhook(context, asWebhookRequest(delivery)))
        if (Exit.isSuccess(exit)) {
          yield* expect(exit.value.jobId === expected, `a callback for ${expected} was read as ${exit.value.jobId}`)
          accepted.add(exit.value.jobId)
        } else {
          // A byte-identical duplicate is a replay; anything else is a mistake.
          const error = Cause.findErrorOption(exit.cause)
          yield* expect(
            error._tag === "Some" && error.value.reason === "Replayed",
            `the callback for ${expected} was refused: ${error._tag === "Some" ? error.value.message : "died"}`
          )
        }
      }
      yield* expect(accepted.size === 3, `expected all three jobs answered, got ${accepted.size}`)
    }),

  [statusCheck]: (context) =>
    Effect.gen(function* () {
      const checkStatus = context.vendor.checkStatus
      if (checkStatus === undefined) return
      const call = context.request()
      yield* context.simulator.inject(
        VendorSimulator.reply(200, { json: context.options.status?.(call.jobId, emptyRequest) ?? {} })
      )
      const exit = yield* Effect.exit(checkStatus(call))
      if (Exit.isFailure(exit) || exit.value._tag !== "Completed") {
        return yield* failCheck(`expected Completed from the sample status answer, but the check ${describeExit(exit)}`)
      }
      const [received] = yield* context.simulator.requests
      yield* expect(
        received?.headers[idempotencyHeader(context.definition)] === call.jobId,
        "the status request does not carry the job id"
      )
    })
}

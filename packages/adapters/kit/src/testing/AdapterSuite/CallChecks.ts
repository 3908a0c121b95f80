/**
 * The checks every vendor runs: the request and its idempotency key, good, malformed and garbage
 * answers, the classification of statuses, timeouts and dropped connections, and the cleaning of
 * declared PII.
 *
 * @since 0.1.0
 */
import { Cleaner, Job, type Vendor } from "@vendorflow/core"
import { Duration, Effect, Exit, type Schema } from "effect"
import * as VendorSimulator from "../../simulator/VendorSimulator.ts"
import {
  type Check,
  CheckFailed,
  describeExit,
  type Context,
  emptyRequest,
  expect,
  expectFailure,
  type everyVendorCheck,
  failCheck,
  idempotencyHeader,
  type Options,
  onlyRequest,
  parseWebhook,
  shortTimeout,
  signedCallback
} from "./Context.ts"

const leaves = (value: unknown, key = ""): Array<{ readonly key: string; readonly value: unknown }> => {
  if (Array.isArray(value)) return value.flatMap((item) => leaves(item, key))
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, item]) =>
      typeof item === "object" && item !== null ? [{ key: k, value: item }, ...leaves(item, k)] : leaves(item, k)
    )
  }
  return [{ key, value }]
}

// The PII the sample holds: the values given, and every value under a key the definition declares.
const piiIn = (options: Options, raw: unknown) => {
  const rules = { piiKeys: options.definition.piiKeys }
  const declared = leaves(raw).filter(
    ({ key, value }) =>
      key !== "" &&
      (typeof value === "string" || typeof value === "number") &&
      Cleaner.isPiiKey(key, rules) &&
      !Cleaner.isPiiKey(key)
  )
  return {
    declaredKeys: options.definition.piiKeys ?? [],
    values: [...(options.pii ?? []), ...declared.map(({ value }) => String(value).trim())].filter(
      (value) => value.length >= 4
    )
  }
}

const checkCleaned = (context: Context, raw: unknown, result: Schema.Json) =>
  Effect.gen(function* () {
    const { declaredKeys, values } = piiIn(context.options, raw)
    const declaredSeen = leaves(raw).some(
      ({ key }) => key !== "" && Cleaner.isPiiKey(key, { piiKeys: declaredKeys }) && !Cleaner.isPiiKey(key)
    )
    if (declaredKeys.length > 0 && !declaredSeen) {
      return yield* failCheck(
        `the sample answer has no value under a declared PII key (${declaredKeys.join(", ")}), so their cleaning is untested`
      )
    }
    const cleaned = Cleaner.clean(result, context.vendor.cleaning)
    for (const { key, value } of leaves(cleaned)) {
      const text = typeof value === "string" || typeof value === "number" ? String(value) : ""
      const leaked = values.find((pii) => text.includes(pii))
      if (leaked !== undefined) {
        return yield* failCheck(`PII "${leaked}" survives cleaning under "${key}"; declare that key in piiKeys`)
      }
    }
  })

const classifiesStatus = (status: number, reason: Vendor.VendorErrorReason) => (context: Context) =>
  Effect.andThen(
    context.simulator.inject(VendorSimulator.reply(status, { json: { error: `simulated ${status}` } })),
    expectFailure(context, reason)
  )

/** The checks for every vendor, by name. */
export const callChecks: Readonly<Record<(typeof everyVendorCheck)[number], Check>> = {
  "builds the request": (context) =>
    Effect.gen(function* () {
      const call = context.request()
      yield* Effect.exit(context.vendor.call(call))
      const received = yield* onlyRequest(context)
      if (received.body !== "" && VendorSimulator.jsonBody(received) === undefined) {
        yield* failCheck(`the request body is not JSON: ${received.body.slice(0, 100)}`)
      }
      const sent = `${received.url}\n${JSON.stringify(received.headers)}\n${received.body}`
      for (const [name, value] of Object.entries(context.secrets)) {
        yield* expect(sent.includes(value), `the declared secret ${name} is not used in the request`)
      }
      const problem = context.options.expectRequest?.(received, call)
      if (problem !== undefined) yield* failCheck(problem)
    }),

  "sends the job id as its idempotency key": (context) =>
    Effect.gen(function* () {
      const first = context.request()
      yield* Effect.exit(context.vendor.call(first))
      yield* Effect.exit(context.vendor.call({ ...first, attempt: 2 }))
      const header = idempotencyHeader(context.definition)
      const keys = (yield* context.simulator.requests).map((request) => request.headers[header])
      yield* expect(
        keys.length === 2 && keys.every((key) => key === first.jobId),
        `expected ${header}: ${first.jobId} on both attempts, saw ${JSON.stringify(keys)}`
      )
    }),

  "decodes a good answer": (context) =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(context.vendor.call(context.request()))
      const expected = context.definition.mode === "sync" ? "Completed" : "Accepted"
      if (Exit.isFailure(exit) || exit.value._tag !== expected) {
        return yield* failCheck(`expected ${expected} for the sample answer, but the call ${describeExit(exit)}`)
      }
    }),

  "refuses malformed answers": (context) =>
    Effect.forEach(
      [{}, [], null, "ok", 42, { unexpected: true }],
      (json) =>
        Effect.andThen(
          context.simulator.inject(VendorSimulator.reply(context.options.answerStatus ?? 200, { json })),
          expectFailure(context, "InvalidResponse").pipe(
            Effect.mapError(
              (failed) => new CheckFailed({ message: `for the answer ${JSON.stringify(json)}: ${failed.message}` })
            )
          )
        ),
      { discard: true }
    ),

  "classifies a garbage body as invalid": (context) =>
    Effect.forEach(
      ["<html><body>Bad Gateway</body></html>", `{"truncated":`, ""],
      (text) =>
        Effect.andThen(
          context.simulator.inject(VendorSimulator.garbage(text, context.options.answerStatus ?? 200)),
          expectFailure(context, "InvalidResponse").pipe(
            Effect.mapError(
              (failed) => new CheckFailed({ message: `for the body ${JSON.stringify(text)}: ${failed.message}` })
            )
          )
        ),
      { discard: true }
    ),

  "classifies 400 as permanent": classifiesStatus(400, "Rejected"),
  "classifies 401 as permanent": classifiesStatus(401, "Rejected"),
  "classifies 404 as permanent": classifiesStatus(404, "Rejected"),

  "classifies 429 as rate-limited with its Retry-After": (context) =>
    Effect.andThen(
      context.simulator.inject(VendorSimulator.tooManyRequests(7)),
      expectFailure(context, "RateLimited", (error) =>
        error.retryAfterMillis === 7000
          ? undefined
          : `expected a retry after 7000 ms (Retry-After: 7), got ${error.retryAfterMillis ?? "none"}`
      )
    ),

  "classifies 500 as transient": classifiesStatus(500, "Unavailable"),

  "classifies a timeout as transient": (context) =>
    Effect.gen(function* () {
      // Late enough to miss the budget by far, soon enough that shutting the simulator down stays quick.
      yield* context.simulator.inject(VendorSimulator.delay(Duration.toMillis(shortTimeout) * 4))
      const started = Date.now()
      yield* expectFailure(context, "Unavailable")
      const took = Date.now() - started
      yield* expect(took < Duration.toMillis(shortTimeout) * 5, `the call took ${took} ms past a 300 ms timeout`)
    }),

  "classifies a dropped connection as transient": (context) =>
    Effect.andThen(context.simulator.inject(VendorSimulator.drop), expectFailure(context, "Unavailable")),

  "cleans declared PII": (context) =>
    Effect.gen(function* () {
      if (context.definition.mode === "sync") {
        const call = context.request()
        const outcome = yield* context.vendor
          .call(call)
          .pipe(Effect.mapError((error) => new CheckFailed({ message: `the sample answer failed: ${error.message}` })))
        const received = yield* onlyRequest(context)
        return yield* checkCleaned(
          context,
          context.options.answer(received),
          outcome._tag === "Completed" ? outcome.result : null
        )
      }
      const jobId = Job.makeJobId()
      const delivery = yield* parseWebhook(context, yield* signedCallback(context, jobId)).pipe(
        Effect.mapError((error) => new CheckFailed({ message: `the sample callback was refused: ${error.message}` }))
      )
      return yield* checkCleaned(context, context.options.callback?.(jobId, emptyRequest), delivery.data)
    })
}

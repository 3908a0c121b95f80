/**
 * The conformance suite every vendor adapter runs in its own tests:
 * `AdapterSuite.suite("Acme Credit", { definition, payload, answer, ... })`.
 *
 * Each check builds the definition against a fresh `VendorSimulator` (a real local HTTP server) and
 * drives it the way the engine and a misbehaving vendor would: the request and its idempotency key,
 * good, malformed and garbage answers, 400/401/404/429/500, a timeout and a dropped connection, the
 * declared PII after cleaning and, for async vendors, signed, tampered, unsigned, stale, replayed,
 * malformed, duplicate and out-of-order callbacks and the overdue-job status check. A known gap is
 * written down in `skip` with its reason and reported as skipped, never as passed.
 *
 * `run` returns each check's outcome instead of registering tests, which is how the kit's own
 * tests prove that broken adapters are caught by name.
 *
 * @since 0.1.0
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Cleaner, Job, Vendor, VendorDefinition, WebhookSignature } from "@vendorflow/core"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Data, Duration, Effect, Exit, Schedule, type Schema } from "effect"
import * as StubServer from "../simulator/StubServer.ts"
import * as VendorSimulator from "../simulator/VendorSimulator.ts"

const everyVendorCheck = [
  "builds the request",
  "sends the job id as its idempotency key",
  "decodes a good answer",
  "refuses malformed answers",
  "classifies a garbage body as invalid",
  "classifies 400 as permanent",
  "classifies 401 as permanent",
  "classifies 404 as permanent",
  "classifies 429 as rate-limited with its Retry-After",
  "classifies 500 as transient",
  "classifies a timeout as transient",
  "classifies a dropped connection as transient",
  "cleans declared PII"
] as const

const asyncVendorCheck = [
  "passes the webhook URL",
  "accepts a signed callback",
  "refuses a bad signature",
  "refuses a missing signature",
  "refuses a stale timestamp",
  "refuses a replayed callback",
  "refuses a malformed callback",
  "maps duplicate and out-of-order callbacks to their jobs"
] as const

const statusCheck = "checks an overdue job's status"

/**
 * Every check, by name: those for every vendor, those for async vendors, and the status check.
 *
 * @category checks
 */
export const checkNames = [...everyVendorCheck, ...asyncVendorCheck, statusCheck] as const

/**
 * A check's name.
 *
 * @category checks
 */
export type CheckName = (typeof checkNames)[number]

/**
 * What the suite needs besides the definition: a job payload, the vendor's answers (what its
 * documentation shows), and which values in them are PII.
 *
 * @category models
 */
export interface Options {
  readonly definition: VendorDefinition.VendorDefinition
  /** A payload the vendor accepts. */
  readonly payload: Job.JsonObject
  /** The vendor's good answer (JSON) to a call; for an async vendor, its acknowledgement. */
  readonly answer: (request: StubServer.Received) => unknown
  /** The status of a good answer; default 200 (sync) or 202 (async). */
  readonly answerStatus?: number | undefined
  /** Async vendors: the callback body (JSON) the vendor posts for `jobId`. */
  readonly callback?: ((jobId: string, request: StubServer.Received) => unknown) | undefined
  /** Async vendors with `checkStatus`: the vendor's answer to a status request once it has the data. */
  readonly status?: ((jobId: string, request: StubServer.Received) => unknown) | undefined
  /**
   * PII values that appear in the sample answer (or callback) and must not survive cleaning; the
   * values under the definition's declared `piiKeys` are checked as well.
   */
  readonly pii?: ReadonlyArray<string> | undefined
  /** More about the request the vendor must have got: answer a failure message, or undefined. */
  readonly expectRequest?:
    | ((request: StubServer.Received, call: Vendor.VendorRequest) => string | undefined)
    | undefined
  /** Values for the declared secrets; default a recognisable dummy each. */
  readonly secrets?: Readonly<Record<string, string>> | undefined
  /** Known gaps, each with its reason: reported as skipped, never as passed. */
  readonly skip?: Partial<Record<CheckName, string>> | undefined
  /** Added to each answer of the simulator; default none. */
  readonly latencyMs?: VendorSimulator.Options["latencyMs"]
}

/**
 * One check's outcome.
 *
 * @category models
 */
export interface CheckResult {
  readonly check: CheckName
  readonly outcome: "passed" | "failed" | "skipped"
  /** Why it failed, or the reason it was skipped. */
  readonly message?: string | undefined
}

class CheckFailed extends Data.TaggedError("CheckFailed")<{ readonly message: string }> {}

const failCheck = (message: string) => Effect.fail(new CheckFailed({ message }))

const expect = (condition: boolean, message: string) => (condition ? Effect.void : failCheck(message))

// What a test run's adapter is built with; `secret` signs callbacks both ways.
const secret = "adapter-suite-secret"
const shortTimeout = Duration.millis(300)

interface Context {
  readonly options: Options
  readonly definition: VendorDefinition.VendorDefinition
  readonly simulator: VendorSimulator.Simulator
  readonly receiver: StubServer.StubServer
  readonly vendor: Vendor.Vendor
  readonly secrets: Readonly<Record<string, string>>
  readonly request: (attempt?: number) => Vendor.VendorRequest
}

const idempotencyHeader = (definition: VendorDefinition.VendorDefinition) =>
  (definition.idempotencyHeader ?? "idempotency-key").toLowerCase()

const tokenOf = (url: string) => WebhookSignature.callbackTokenOf(url) ?? ""

const describeExit = <A>(exit: Exit.Exit<A, Vendor.VendorError>): string => {
  if (Exit.isSuccess(exit)) return `succeeded with ${JSON.stringify(exit.value).slice(0, 200)}`
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some"
    ? `failed as ${error.value.reason}${error.value.retryAfterMillis === undefined ? "" : ` (retry after ${error.value.retryAfterMillis} ms)`}: ${error.value.message}`
    : `died: ${Cause.pretty(exit.cause).split("\n")[0] ?? ""}`
}

// Calls the vendor once and expects the failure `reason`; `also` checks more about it.
const expectFailure = (
  context: Context,
  reason: Vendor.VendorErrorReason,
  also: (error: Vendor.VendorError) => string | undefined = () => undefined
) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(context.vendor.call(context.request()))
    const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
    if (error?._tag !== "Some" || error.value.reason !== reason) {
      return yield* failCheck(`expected ${reason}, but the call ${describeExit(exit)}`)
    }
    const problem = also(error.value)
    if (problem !== undefined) return yield* failCheck(problem)
  })

const onlyRequest = (context: Context) =>
  Effect.gen(function* () {
    const requests = yield* context.simulator.requests
    if (requests.length !== 1) return yield* failCheck(`expected one request to the vendor, saw ${requests.length}`)
    return requests[0] as StubServer.Received
  })

// Every leaf of a JSON value with the key it sits under.
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

const schemeOf = (definition: VendorDefinition.VendorDefinition): WebhookSignature.Scheme =>
  (definition.mode === "async" ? definition.webhook.signature : undefined) ?? WebhookSignature.hmacSha256

const nowSeconds = Effect.map(Clock.currentTimeMillis, (millis) => Math.floor(millis / 1000))

// A callback for `jobId` signed as the vendor would sign it.
const signedCallback = (
  context: Context,
  jobId: string,
  options: { readonly body?: string; readonly secret?: string; readonly secondsAgo?: number } = {}
) =>
  Effect.gen(function* () {
    const scheme = schemeOf(context.definition)
    const body = options.body ?? JSON.stringify(context.options.callback?.(jobId, emptyRequest) ?? {})
    const timestamp = (yield* nowSeconds) - (options.secondsAgo ?? 0)
    const request: Vendor.WebhookRequest = {
      headers: {
        "content-type": "application/json",
        [scheme.header]: scheme.sign({ secret: options.secret ?? secret, body, timestamp })
      },
      body
    }
    return request
  })

const emptyRequest: StubServer.Received = { at: 0, method: "POST", url: "/", headers: {}, body: "" }

const parseWebhook = (context: Context, request: Vendor.WebhookRequest) =>
  context.vendor.parseWebhook === undefined
    ? Effect.die(new Error("an async vendor without parseWebhook"))
    : context.vendor.parseWebhook(request)

// Parses a callback and, as the engine does once it has applied one, spends its signature.
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

const classifiesStatus = (status: number, reason: Vendor.VendorErrorReason) => (context: Context) =>
  Effect.andThen(
    context.simulator.inject(VendorSimulator.reply(status, { json: { error: `simulated ${status}` } })),
    expectFailure(context, reason)
  )

const checks: Readonly<Record<CheckName, (context: Context) => Effect.Effect<void, CheckFailed>>> = {
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
    }),

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

/**
 * The checks that apply to a definition: the async ones only to async vendors, the status check
 * only to vendors that define one.
 *
 * @category checks
 */
export const applicable = (definition: VendorDefinition.VendorDefinition): ReadonlyArray<CheckName> => {
  if (definition.mode === "sync") return everyVendorCheck
  return definition.checkStatus === undefined
    ? [...everyVendorCheck, ...asyncVendorCheck]
    : [...everyVendorCheck, ...asyncVendorCheck, statusCheck]
}

const makeContext = (options: Options, timeout: Duration.Duration) =>
  Effect.gen(function* () {
    const definition = options.definition
    const header = idempotencyHeader(definition)
    const receiver = yield* StubServer.make(() => ({ status: 200, body: "{}" }))
    const simulator = yield* VendorSimulator.make({
      secret,
      scheme: schemeOf(definition),
      latencyMs: options.latencyMs,
      respond: (request) => ({
        status: options.answerStatus ?? (definition.mode === "sync" ? 200 : 202),
        json: options.answer(request)
      }),
      callback: (request) => {
        const url = VendorSimulator.findWebhookUrl(request)
        const jobId = request.headers[header]
        return url === undefined || jobId === undefined || options.callback === undefined
          ? undefined
          : { url, body: options.callback(jobId, request) }
      }
    })
    const secrets =
      options.secrets ??
      Object.fromEntries((definition.secrets ?? []).map((name: string) => [name, `suite-${name.toLowerCase()}-value`]))
    const vendor = yield* VendorDefinition.build(definition, {
      url: simulator.url,
      secret,
      secrets,
      timeout,
      rateLimit: null
    }).pipe(Effect.mapError((error) => new CheckFailed({ message: `the definition does not build: ${error.message}` })))
    const request = (attempt = 1): Vendor.VendorRequest => {
      const jobId = Job.makeJobId()
      return {
        jobId,
        payload: options.payload,
        attempt,
        webhookUrl: `${receiver.url}/vendor-webhook/${vendor.name}?${WebhookSignature.callbackTokenParam}=${jobId}`
      }
    }
    const context: Context = { options, definition, simulator, receiver, vendor, secrets, request }
    return context
  })

/**
 * Runs one check against a fresh simulator; a defect in the adapter fails the check, it does not
 * crash the run.
 *
 * @category running
 */
export const runCheck = (name: CheckName, options: Options): Effect.Effect<CheckResult> => {
  const skipped = options.skip?.[name]
  if (skipped !== undefined) return Effect.succeed({ check: name, outcome: "skipped", message: skipped })
  const timeout = name === "classifies a timeout as transient" ? shortTimeout : Duration.seconds(5)
  return Effect.gen(function* () {
    const context = yield* makeContext(options, timeout)
    yield* checks[name](context)
  }).pipe(
    Effect.scoped,
    Effect.provide(NodeHttpClient.layerUndici),
    Effect.exit,
    Effect.map((exit): CheckResult => {
      if (Exit.isSuccess(exit)) return { check: name, outcome: "passed" }
      const failure = Cause.findErrorOption(exit.cause)
      const message =
        failure._tag === "Some" && failure.value instanceof CheckFailed
          ? failure.value.message
          : `the adapter broke: ${Cause.pretty(exit.cause).split("\n")[0] ?? ""}`
      return { check: name, outcome: "failed", message }
    })
  )
}

/**
 * Runs every applicable check, one after another, and reports each.
 *
 * @category running
 */
export const run = (options: Options): Effect.Effect<ReadonlyArray<CheckResult>> =>
  Effect.forEach(applicable(options.definition), (name) => runCheck(name, options))

/**
 * Registers the suite in vitest: one test per applicable check, a skipped one for each known gap.
 *
 * @category running
 */
export const suite = (name: string, options: Options): void => {
  describe(`${name}: AdapterSuite`, () => {
    for (const check of applicable(options.definition)) {
      const reason = options.skip?.[check]
      // A known gap shows up as skipped, with its reason in the name, never as passed.
      const name = reason === undefined ? check : `${check} (skipped: ${reason})`
      it.live.skipIf(reason !== undefined)(name, () =>
        Effect.map(runCheck(check, options), (result) => {
          if (result.outcome === "failed") assert.fail(`${check}: ${result.message ?? ""}`)
        })
      )
    }
  })
}

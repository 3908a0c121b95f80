/**
 * What every check of the suite is given: the suite's options, and the definition built against a
 * fresh simulator with a receiver for its callbacks; and the helpers the checks share to call the
 * vendor, sign callbacks and fail with a message.
 *
 * @since 0.1.0
 */
import { Job, type Vendor, VendorDefinition, WebhookSignature } from "@vendorflow/core"
import { Cause, Clock, Data, Duration, Effect, Exit } from "effect"
import * as StubServer from "../../simulator/StubServer.ts"
import * as VendorSimulator from "../../simulator/VendorSimulator.ts"

/** The checks every vendor runs, in the order they run. */
export const everyVendorCheck = [
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

/** The checks async vendors run as well. */
export const asyncVendorCheck = [
  "passes the webhook URL",
  "accepts a signed callback",
  "refuses a bad signature",
  "refuses a missing signature",
  "refuses a stale timestamp",
  "refuses a replayed callback",
  "refuses a malformed callback",
  "maps duplicate and out-of-order callbacks to their jobs"
] as const

/** The check of vendors that can be asked about an overdue job. */
export const statusCheck = "checks an overdue job's status"

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

export class CheckFailed extends Data.TaggedError("CheckFailed")<{ readonly message: string }> {}

export const failCheck = (message: string) => Effect.fail(new CheckFailed({ message }))

export const expect = (condition: boolean, message: string) => (condition ? Effect.void : failCheck(message))

// What a test run's adapter is built with; `secret` signs callbacks both ways.
export const secret = "adapter-suite-secret"
export const shortTimeout = Duration.millis(300)

/** A check's view of one run: the options, the vendor built from the definition, its simulator and the receiver of its callbacks. */
export interface Context {
  readonly options: Options
  readonly definition: VendorDefinition.VendorDefinition
  readonly simulator: VendorSimulator.Simulator
  readonly receiver: StubServer.StubServer
  readonly vendor: Vendor.Vendor
  readonly secrets: Readonly<Record<string, string>>
  readonly request: (attempt?: number) => Vendor.VendorRequest
}

export const idempotencyHeader = (definition: VendorDefinition.VendorDefinition) =>
  (definition.idempotencyHeader ?? "idempotency-key").toLowerCase()

export const describeExit = <A>(exit: Exit.Exit<A, Vendor.VendorError>): string => {
  if (Exit.isSuccess(exit)) return `succeeded with ${JSON.stringify(exit.value).slice(0, 200)}`
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some"
    ? `failed as ${error.value.reason}${error.value.retryAfterMillis === undefined ? "" : ` (retry after ${error.value.retryAfterMillis} ms)`}: ${error.value.message}`
    : `died: ${Cause.pretty(exit.cause).split("\n")[0] ?? ""}`
}

// Calls the vendor once and expects the failure `reason`; `also` checks more about it.
export const expectFailure = (
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

export const onlyRequest = (context: Context) =>
  Effect.gen(function* () {
    const requests = yield* context.simulator.requests
    if (requests.length !== 1) return yield* failCheck(`expected one request to the vendor, saw ${requests.length}`)
    return requests[0] as StubServer.Received
  })

// Every leaf of a JSON value with the key it sits under.

export const schemeOf = (definition: VendorDefinition.VendorDefinition): WebhookSignature.Scheme =>
  (definition.mode === "async" ? definition.webhook.signature : undefined) ?? WebhookSignature.hmacSha256

const nowSeconds = Effect.map(Clock.currentTimeMillis, (millis) => Math.floor(millis / 1000))

// A callback for `jobId` signed as the vendor would sign it.
export const signedCallback = (
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

export const emptyRequest: StubServer.Received = { at: 0, method: "POST", url: "/", headers: {}, body: "" }

export const parseWebhook = (context: Context, request: Vendor.WebhookRequest) =>
  context.vendor.parseWebhook === undefined
    ? Effect.die(new Error("an async vendor without parseWebhook"))
    : context.vendor.parseWebhook(request)

// Parses a callback and, as the engine does once it has applied one, spends its signature.

/** One check: it fails with {@link CheckFailed} and a message that says what the adapter got wrong. */
export type Check = (context: Context) => Effect.Effect<void, CheckFailed>

/** A fresh simulator and receiver, and the definition built against them with `timeout`. */
export const makeContext = (options: Options, timeout: Duration.Duration) =>
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

/**
 * A vendor simulator: a real local HTTP server that answers like a vendor and misbehaves on cue.
 * Adapter tests script it in code; the reference mock vendors are built on it and script it from
 * env. It records every request as it arrived (`requests`) and every answered call with its status
 * and fault (`arrivals`); answers with `respond` (or 200 `{}`); and, for an async vendor, posts
 * signed callbacks to the webhook URL it was given, recording each (`callbacks`).
 *
 * What can go wrong, in the order a call meets it:
 * - its own rate limit (`rateLimit`): 429 with `Retry-After` past it (hidden, or advertised in
 *   headers on every answer; lowered mid-run with `later`);
 * - its cap on calls in flight (`maxInFlight`): 429 or 503 past it;
 * - outages (`outages`): every call in a window answered with a 5xx;
 * - faults for the next calls in order (`inject`) or per job (`faults`, a `FaultScript` plan): a
 *   reply of any status, headers and body (`tooManyRequests(2)` is 429 with `Retry-After: 2`,
 *   `garbage("<html>")` a 200 that is not JSON, answers nested 20,000 deep or 6 MiB large), a delay
 *   (a vendor slower than the adapter's timeout), or a dropped connection.
 * Callbacks can be dropped (never sent), duplicated, held back (until `release`, or until the same
 * job's next callback has been sent: out of order), late or nested far too deep; for the next
 * callbacks in order (`injectCallbacks`) or per job (`callbackFaults`).
 *
 * @since 0.1.0
 */
import { NodeHttpClient, NodeHttpServerRequest } from "@effect/platform-node"
import { WebhookSignature } from "@vendorflow/core"
import { Clock, type Duration, Effect, Layer, Option, Schema, type Scope } from "effect"
import {
  HttpClient,
  HttpClientResponse,
  HttpRouter,
  type HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import * as Callbacks from "./Callbacks.ts"
import * as FaultScript from "./FaultScript.ts"
import * as LocalServer from "./LocalServer.ts"
import * as RateLimit from "./RateLimit.ts"
import * as StubServer from "./StubServer.ts"

/**
 * An answer: `json` is sent as JSON, else `text` as it is (with a JSON content type unless
 * `headers` say otherwise, as a broken vendor would).
 *
 * @category models
 */
export interface Reply {
  readonly status: number
  readonly json?: unknown
  readonly text?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A scripted misbehaviour for one request.
 *
 * @category faults
 */
export type Fault =
  | { readonly _tag: "Reply"; readonly reply: Reply }
  | { readonly _tag: "Delay"; readonly millis: number }
  | { readonly _tag: "Drop" }

/**
 * Answer this instead.
 *
 * @category faults
 */
export const reply = (status: number, options: Omit<Reply, "status"> = {}): Fault => ({
  _tag: "Reply",
  reply: { status, ...options }
})

/**
 * 429 with `Retry-After` in seconds.
 *
 * @category faults
 */
export const tooManyRequests = (retryAfterSeconds: number): Fault =>
  reply(429, {
    json: { error: "rate_limited" },
    headers: { "retry-after": String(retryAfterSeconds) }
  })

/**
 * A body that is not what the vendor documents (default status 200).
 *
 * @category faults
 */
export const garbage = (text: string, status = 200): Fault => reply(status, { text })

/**
 * Answer normally, `millis` late.
 *
 * @category faults
 */
export const delay = (millis: number): Fault => ({ _tag: "Delay", millis })

/**
 * Close the connection without answering.
 *
 * @category faults
 */
export const drop: Fault = { _tag: "Drop" }

/**
 * A scripted misbehaviour for one callback (see `FaultScript` for late and deep ones, per job).
 *
 * @category faults
 */
export type CallbackFault = "Drop" | "Duplicate" | "Hold"

/**
 * A callback to send: where, and the JSON body.
 *
 * @category models
 */
export interface Callback {
  readonly url: string
  readonly body: unknown
  /** What a `deep` fault sends instead; default `FaultScript.deepJson` alone. */
  readonly deepBody?: string | undefined
}

/**
 * A callback the simulator sent (or dropped): when its first attempt went out (`sentAt`) and when
 * the last one ended (`at`), the body as sent, the job it answers (with `jobId`), the status our
 * webhook last answered (none if it never answered), after how many attempts, how it ended, and the
 * scripted fault it got, if any.
 *
 * @category models
 */
export interface CallbackRecord {
  readonly at: number
  readonly sentAt: number
  readonly url: string
  readonly body: string
  readonly jobId?: string | undefined
  readonly attempts: number
  readonly status: number | null
  readonly outcome: "delivered" | "failed" | "dropped"
  readonly fault?: string | undefined
}

/**
 * One call as the simulator answered it. `status` is what it answered, 499 when the client hung up
 * first, 0 for a dropped connection; `fault`, the fault it got, if any. Kept in the order answered;
 * `at` is when the call arrived.
 *
 * @category records
 */
export const Arrival = Schema.Struct({
  at: Schema.Number,
  jobId: Schema.NullOr(Schema.String),
  idempotencyKey: Schema.NullOr(Schema.String),
  status: Schema.Int,
  fault: Schema.optionalKey(Schema.String)
})

/** @category records */
export type Arrival = typeof Arrival.Type

/**
 * Reads a running simulator's arrivals over HTTP (`GET <baseUrl>/arrivals`, where a mock vendor
 * shows them), for tests that started it in another process.
 *
 * @category records
 */
export const readArrivals = (baseUrl: string) =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    client
      .get(`${baseUrl}/arrivals`)
      .pipe(
        Effect.flatMap(HttpClientResponse.filterStatusOk),
        Effect.flatMap(HttpClientResponse.schemaBodyJson(Schema.Array(Arrival)))
      )
  )

/**
 * An error the simulator answers by itself (its rate limit, an outage, a scripted status).
 *
 * @category models
 */
export interface ErrorAnswer {
  readonly status: number
  readonly code: string
  readonly message: string
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * The records, for routes that show them.
 *
 * @category models
 */
export interface Records {
  readonly requests: LocalServer.Recorder<StubServer.Received>
  readonly arrivals: LocalServer.Recorder<Arrival>
  readonly callbacks: LocalServer.Recorder<CallbackRecord>
}

/**
 * How the simulator behaves.
 *
 * @category models
 */
export interface Options {
  /** Names it in the errors it answers; default `vendor simulator`. */
  readonly name?: string | undefined
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** 0 (the default) picks a free port. */
  readonly port?: number | undefined
  /** The calls it answers as a vendor; default every request. Others go to `routes`, else 404. */
  readonly endpoint?: { readonly method: "*" | "GET" | "POST" | "PUT" | "PATCH"; readonly path: `/${string}` }
  /** More routes, e.g. ones showing the records. */
  readonly routes?: ((records: Records) => ReadonlyArray<HttpRouter.Route<never, never>>) | undefined
  /** Keep every request in `requests`; default true. A long-running vendor process turns it off. */
  readonly keepRequests?: boolean | undefined
  /** The job a call is for, for per-job scripts and the arrivals record; default none. */
  readonly jobId?: ((request: StubServer.Received) => string | undefined) | undefined
  /** The vendor's normal answer; default 200 `{}`. */
  readonly respond?: ((request: StubServer.Received) => Reply | Effect.Effect<Reply>) | undefined
  /** Added before every normal answer; default none. */
  readonly latencyMs?: LocalServer.MillisRange | undefined
  /** Its own limit, answered 429 past it; default none. */
  readonly rateLimit?: RateLimit.RateLimit | undefined
  /** Its cap on calls in flight, answered with `status` (429 or 503) past it; default none. */
  readonly maxInFlight?: MaxInFlight | undefined
  /** Vendor-wide 5xx windows, from its first admitted call; default none. */
  readonly outages?: ReadonlyArray<FaultScript.Outage> | undefined
  /** Faults per job (needs `jobId`); default none. */
  readonly faults?: FaultScript.Plan<FaultScript.AnswerFault> | undefined
  /** How the errors it answers by itself look; default `{ error: code, message }`. */
  readonly errorReply?: ((error: ErrorAnswer) => Reply) | undefined
  /** Async vendors: the callback an answered (2xx) request leads to, if any. */
  readonly callback?:
    | ((request: StubServer.Received) => Callback | Effect.Effect<Callback | undefined> | undefined)
    | undefined
  /** Before a callback is made; default none. */
  readonly callbackDelayMs?: LocalServer.MillisRange | undefined
  /** Faults per job for callbacks, the n-th step for a job's n-th callback (needs `jobId`); default none. */
  readonly callbackFaults?: FaultScript.Plan<FaultScript.CallbackFault> | undefined
  /** What callbacks are signed with; default {@link defaultSecret}. */
  readonly secret?: string | undefined
  readonly scheme?: WebhookSignature.Scheme | undefined
  /** Default none: one attempt. */
  readonly callbackRetry?: Callbacks.Retry | undefined
  /** One delivery attempt's budget; default 5 seconds. */
  readonly callbackTimeout?: Duration.Input | undefined
  /** Sign each callback once and resend the same bytes and signature on every retry; default false. */
  readonly signOnce?: boolean | undefined
}

/**
 * A vendor's cap on calls in flight: past `limit` at once, a call is answered `status` at once.
 *
 * @category models
 */
export interface MaxInFlight {
  readonly limit: number
  readonly status: 429 | 503
}

/**
 * The secret callbacks are signed with when none is given.
 *
 * @category constants
 */
export const defaultSecret = "simulator-secret"

/**
 * A running simulator.
 *
 * @category models
 */
export interface Simulator extends LocalServer.Address {
  /** Every request, in arrival order. */
  readonly requests: Effect.Effect<ReadonlyArray<StubServer.Received>>
  /** Every call answered as a vendor, in the order answered. */
  readonly arrivals: Effect.Effect<ReadonlyArray<Arrival>>
  /** Every callback sent or dropped, in the order they finished. */
  readonly callbacks: Effect.Effect<ReadonlyArray<CallbackRecord>>
  /** Faults for the next requests, one each, in order. */
  readonly inject: (...faults: ReadonlyArray<Fault>) => Effect.Effect<void>
  /** Faults for the next callbacks, one each, in order. */
  readonly injectCallbacks: (...faults: ReadonlyArray<CallbackFault>) => Effect.Effect<void>
  /** How many callbacks are held. */
  readonly held: Effect.Effect<number>
  /** Sends the held callbacks one after another, in arrival or reverse order, and waits for them. */
  readonly release: (order?: "arrival" | "reverse") => Effect.Effect<void>
  readonly clearArrivals: Effect.Effect<void>
  readonly clearCallbacks: Effect.Effect<void>
  /** Forgets requests, arrivals, callbacks and pending faults. */
  readonly clear: Effect.Effect<void>
}

const parseJson = Option.liftThrowable((text: string): unknown => JSON.parse(text))

/**
 * The JSON body of a request, if it has one.
 *
 * @category helpers
 */
export const jsonBody = (request: StubServer.Received): unknown => {
  const text = request.body.trim()
  return text === "" ? undefined : Option.getOrUndefined(parseJson(text))
}

const webhookPath = /^https?:\/\/\S+\/vendor-webhook\/\S+$/

const findIn = (value: unknown): string | undefined => {
  if (typeof value === "string") return webhookPath.test(value) ? value : undefined
  if (Array.isArray(value)) return value.map(findIn).find((found) => found !== undefined)
  if (typeof value === "object" && value !== null) {
    return Object.values(value)
      .map(findIn)
      .find((found) => found !== undefined)
  }
  return undefined
}

/**
 * Where a request asks to be called back: the first value in its JSON body, query or headers that
 * is one of our webhook URLs (`.../vendor-webhook/<vendor>...`).
 *
 * @category helpers
 */
export const findWebhookUrl = (request: StubServer.Received): string | undefined => {
  const query = Object.fromEntries(new URL(request.url, "http://localhost").searchParams)
  return findIn(jsonBody(request)) ?? findIn(query) ?? findIn(request.headers)
}

const toResponse = (answer: Reply): HttpServerResponse.HttpServerResponse =>
  answer.json === undefined
    ? StubServer.respond({ status: answer.status, body: answer.text, headers: answer.headers })
    : HttpServerResponse.jsonUnsafe(answer.json, {
        status: answer.status,
        ...(answer.headers === undefined ? {} : { headers: answer.headers })
      })

const defaultErrorReply = (error: ErrorAnswer): Reply => ({
  status: error.status,
  json: { error: error.code, message: error.message },
  headers: error.headers
})

// A fault with the words it was written in, as the records show it.
interface Labelled<A> {
  readonly fault: A
  readonly label: string
}

const labelOf = (fault: Fault): string =>
  fault._tag === "Reply" ? String(fault.reply.status) : fault._tag === "Delay" ? `delay:${fault.millis}` : "drop"

// A scripted answer as a fault, or undefined for the normal answer.
const fromScript = (
  fault: FaultScript.AnswerFault,
  name: string,
  errorReply: (error: ErrorAnswer) => Reply
): Fault | undefined => {
  switch (fault._tag) {
    case "Ok":
      return undefined
    case "Slow":
      return delay(fault.millis)
    case "Garbage":
      return reply(200, {
        text: "<html><body><h1>Service Temporarily Unavailable</h1></body></html>",
        headers: { "content-type": "text/html" }
      })
    case "Deep":
      return reply(200, { text: FaultScript.deepJson })
    case "Huge":
      return reply(200, { text: `{"filler":"${"x".repeat(FaultScript.hugeBytes)}"}` })
    case "Status":
      return {
        _tag: "Reply",
        reply: errorReply(
          fault.status === 429
            ? {
                status: 429,
                code: "rate_limited",
                message: `${name}: rate limit exceeded (scripted)`,
                headers: { "retry-after": String(fault.retryAfterSeconds ?? 1) }
              }
            : { status: fault.status, code: "scripted_fault", message: `${name}: scripted ${fault.status}` }
        )
      }
  }
}

const inFlightRefusal = (name: string, cap: MaxInFlight): ErrorAnswer => ({
  status: cap.status,
  code: "too_many_in_flight",
  message: `${name}: more than ${cap.limit} calls in flight`,
  ...(cap.status === 429 ? { headers: { "retry-after": "1" } } : {})
})

const fromInjected: Record<CallbackFault, "drop" | "duplicate" | "hold"> = {
  Drop: "drop",
  Duplicate: "duplicate",
  Hold: "hold"
}

/**
 * Starts a simulator for the life of the scope; callbacks go out with undici and are interrupted
 * when the scope closes.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options = {}
): Effect.fn.Return<Simulator, HttpServerError.ServeError, Scope.Scope> {
  const scope = yield* Effect.scope
  const client = yield* Layer.build(NodeHttpClient.layerUndici)
  const name = options.name ?? "vendor simulator"
  const errorReply = options.errorReply ?? defaultErrorReply
  const records: Records = {
    requests: LocalServer.makeRecorder(),
    arrivals: LocalServer.makeRecorder(),
    callbacks: LocalServer.makeRecorder()
  }
  const window = RateLimit.makeWindow(options.rateLimit)
  const answers = FaultScript.makeDealer(options.faults)
  const callbackSteps = FaultScript.makeDealer(options.callbackFaults)
  let firstArrival: number | undefined
  let inFlight = 0
  let faults: Array<Fault> = []
  let callbackFaults: Array<CallbackFault> = []
  let held: Array<{ readonly jobId: string | undefined; readonly send: Effect.Effect<void> }> = []
  const secret = options.secret ?? defaultSecret

  const send = (callback: Callback, body: string, jobId: string | undefined, fault: string | undefined) =>
    Effect.gen(function* () {
      const outcome = yield* Callbacks.send({
        url: callback.url,
        body,
        secret,
        scheme: options.scheme,
        retry: options.callbackRetry ?? { times: 0, baseDelayMs: 0 },
        timeout: options.callbackTimeout,
        signOnce: options.signOnce
      }).pipe(Effect.provide(client))
      if (outcome.outcome === "failed") {
        yield* Effect.logWarning(
          `${name}: callback for ${jobId ?? callback.url} failed after ${outcome.attempts} attempts`
        )
      }
      yield* records.callbacks.add({
        at: yield* Clock.currentTimeMillis,
        url: callback.url,
        body,
        ...(jobId === undefined ? {} : { jobId }),
        ...outcome,
        ...(fault === undefined ? {} : { fault })
      })
    })

  // The job's held callbacks, sent in the order they were held, once its next one has gone.
  const releaseHeld = (jobId: string) =>
    Effect.suspend(() => {
      const waiting = held.filter((entry) => entry.jobId === jobId)
      held = held.filter((entry) => entry.jobId !== jobId)
      return Effect.forEach(waiting, (entry) => entry.send, { discard: true })
    })

  const dispatch = (
    made: Callback | Effect.Effect<Callback | undefined>,
    jobId: string | undefined,
    step: Labelled<FaultScript.CallbackFault> | undefined
  ) =>
    Effect.gen(function* () {
      if (options.callbackDelayMs !== undefined) {
        yield* Effect.sleep(yield* LocalServer.drawMillis(options.callbackDelayMs))
      }
      const callback = Effect.isEffect(made) ? yield* made : made
      if (callback === undefined) return
      const fault = step?.fault
      const label = fault === undefined || fault === "ok" ? undefined : step?.label
      const body = JSON.stringify(callback.body)
      if (typeof fault === "object") yield* Effect.sleep(fault.millis)
      switch (fault) {
        case "drop": {
          const at = yield* Clock.currentTimeMillis
          return yield* records.callbacks.add({
            at,
            sentAt: at,
            url: callback.url,
            body,
            ...(jobId === undefined ? {} : { jobId }),
            attempts: 0,
            status: null,
            outcome: "dropped",
            fault: label
          })
        }
        case "hold":
          return void held.push({ jobId, send: send(callback, body, jobId, label) })
        case "duplicate":
          yield* send(callback, body, jobId, label)
          yield* send(callback, body, jobId, label)
          break
        case "deep":
          yield* send(callback, callback.deepBody ?? FaultScript.deepJson, jobId, label)
          break
        default:
          yield* send(callback, body, jobId, label)
      }
      if (jobId !== undefined) yield* releaseHeld(jobId)
    })

  const answerNormally = (
    request: StubServer.Received,
    jobId: string | undefined,
    advertised: Readonly<Record<string, string>> | undefined
  ) =>
    Effect.gen(function* () {
      if (options.latencyMs !== undefined) yield* Effect.sleep(yield* LocalServer.drawMillis(options.latencyMs))
      const given = options.respond?.(request) ?? { status: 200, json: {} }
      const answer = Effect.isEffect(given) ? yield* given : given
      const callback = answer.status >= 200 && answer.status < 300 ? options.callback?.(request) : undefined
      if (callback !== undefined) {
        // Dealt now, in the order calls are answered, whatever each callback's delay.
        const injected = callbackFaults.shift()
        const step =
          injected !== undefined
            ? { fault: fromInjected[injected], label: fromInjected[injected] }
            : jobId === undefined
              ? undefined
              : callbackSteps.next(jobId)
        yield* Effect.forkIn(dispatch(callback, jobId, step), scope)
      }
      return toResponse(
        advertised === undefined ? answer : { ...answer, headers: { ...advertised, ...answer.headers } }
      )
    })

  // The next fault for a call: injected ones first, then the job's script.
  const nextFault = (jobId: string | undefined): Labelled<Fault> | undefined => {
    const injected = faults.shift()
    if (injected !== undefined) return { fault: injected, label: labelOf(injected) }
    const step = jobId === undefined ? undefined : answers.next(jobId)
    const fault = step === undefined ? undefined : fromScript(step.fault, name, errorReply)
    return fault === undefined || step === undefined ? undefined : { fault, label: step.label }
  }

  const handler = Effect.gen(function* () {
    const request = yield* StubServer.receive
    if (options.keepRequests !== false) yield* records.requests.add(request)
    const jobId = options.jobId?.(request)
    let arrival: Omit<Arrival, "status"> = {
      at: request.at,
      jobId: jobId ?? null,
      idempotencyKey: request.headers["idempotency-key"] ?? null
    }
    let dropped = false
    const answer = Effect.gen(function* () {
      // Every arrival counts against the limit, as at a real vendor's gateway.
      const admission = window.admitAt(request.at)
      if (admission._tag === "Limited") return toResponse(errorReply(RateLimit.refusal(name, admission)))
      const cap = options.maxInFlight
      if (cap !== undefined && inFlight >= cap.limit) {
        arrival = { ...arrival, fault: "in-flight" }
        return toResponse(errorReply(inFlightRefusal(name, cap)))
      }
      inFlight++
      return yield* admitted(request, jobId, admission.headers).pipe(Effect.ensuring(Effect.sync(() => inFlight--)))
    })
    const admitted = (
      request: StubServer.Received,
      jobId: string | undefined,
      advertised: Readonly<Record<string, string>> | undefined
    ) =>
      Effect.gen(function* () {
        firstArrival ??= request.at
        const outage = FaultScript.outageAt(options.outages ?? [], request.at - firstArrival)
        if (outage !== undefined) {
          arrival = { ...arrival, fault: `outage:${outage.status}` }
          if (outage.delayMs > 0) yield* Effect.sleep(outage.delayMs)
          return toResponse(
            errorReply({ status: outage.status, code: "outage", message: `${name}: down (scripted outage)` })
          )
        }
        const next = nextFault(jobId)
        if (next !== undefined) arrival = { ...arrival, fault: next.label }
        switch (next?.fault._tag) {
          case "Drop": {
            dropped = true
            const incoming = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest)
            incoming.socket?.destroy()
            // Written to a destroyed socket, which Node discards; waiting for an interrupt instead
            // would hang the server's shutdown.
            return StubServer.respond({ status: 204 })
          }
          case "Reply":
            return toResponse(next.fault.reply)
          case "Delay":
            yield* Effect.sleep(next.fault.millis)
        }
        return yield* answerNormally(request, jobId, advertised)
      })
    return yield* answer.pipe(
      Effect.tap((response) => records.arrivals.add({ ...arrival, status: dropped ? 0 : response.status })),
      Effect.onInterrupt(() => records.arrivals.add({ ...arrival, status: 499 }))
    )
  })

  const router = yield* HttpRouter.make
  yield* router.addAll([
    ...(options.routes?.(records) ?? []),
    HttpRouter.route(options.endpoint?.method ?? "*", options.endpoint?.path ?? "*", handler)
  ])
  const address = yield* LocalServer.listen(router.asHttpEffect(), options)
  return {
    ...address,
    requests: records.requests.all,
    arrivals: records.arrivals.all,
    callbacks: records.callbacks.all,
    inject: (...more) => Effect.sync(() => void faults.push(...more)),
    injectCallbacks: (...more) => Effect.sync(() => void callbackFaults.push(...more)),
    held: Effect.sync(() => held.length),
    release: (order = "arrival") =>
      Effect.suspend(() => {
        const sending = order === "reverse" ? held.slice().reverse() : held.slice()
        held = []
        return Effect.forEach(sending, (entry) => entry.send, { discard: true })
      }),
    clearArrivals: records.arrivals.clear,
    clearCallbacks: records.callbacks.clear,
    clear: Effect.all([records.requests.clear, records.arrivals.clear, records.callbacks.clear]).pipe(
      Effect.andThen(
        Effect.sync(() => {
          faults = []
          callbackFaults = []
          held = []
        })
      )
    )
  }
})

/**
 * A vendor simulator: a real local HTTP server that answers like a vendor and misbehaves on cue,
 * for adapter tests. It records every request; answers with `respond` (or 200 `{}`); and, for an
 * async vendor, posts signed callbacks to the webhook URL it was given.
 *
 * Scripted faults apply to the next requests in order: a reply of any status, headers and body
 * (`tooManyRequests(2)` is 429 with `Retry-After: 2`, `garbage("<html>")` a 200 that is not JSON),
 * a delay (a vendor slower than the adapter's timeout), or a dropped connection. Callback faults
 * apply to the next callbacks: dropped (never sent), duplicated (sent twice), or held until
 * `release`, which sends the held ones in arrival or reverse order (out-of-order callbacks).
 *
 * @since 0.1.0
 */
import { NodeHttpClient, NodeHttpServerRequest } from "@effect/platform-node"
import { WebhookSignature } from "@vendorflow/core"
import { Clock, Effect, Option, type Scope } from "effect"
import { type HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Callbacks from "./Callbacks.ts"
import * as LocalServer from "./LocalServer.ts"
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
 * A scripted misbehaviour for one callback.
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
}

/**
 * A callback the simulator sent (or dropped), with how it went.
 *
 * @category models
 */
export interface CallbackRecord {
  readonly at: number
  readonly url: string
  readonly body: string
  readonly attempts: number
  readonly status: number | null
  readonly outcome: "delivered" | "failed" | "dropped"
}

/**
 * How the simulator behaves.
 *
 * @category models
 */
export interface Options {
  /** The vendor's normal answer; default 200 `{}`. */
  readonly respond?: ((request: StubServer.Received) => Reply | Effect.Effect<Reply>) | undefined
  /** Added before every normal answer; default none. */
  readonly latencyMs?: LocalServer.MillisRange | undefined
  /** Async vendors: the callback an answered (2xx) request leads to, if any. */
  readonly callback?: ((request: StubServer.Received) => Callback | undefined) | undefined
  /** Default none. */
  readonly callbackDelayMs?: LocalServer.MillisRange | undefined
  /** What callbacks are signed with; default {@link defaultSecret}. */
  readonly secret?: string | undefined
  readonly scheme?: WebhookSignature.Scheme | undefined
  readonly callbackRetry?: Callbacks.Retry | undefined
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
  /** Forgets requests, callbacks and pending faults. */
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

/**
 * Starts a simulator on a free loopback port for the life of the scope; callbacks go out with
 * undici and are interrupted when the scope closes.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options = {}
): Effect.fn.Return<Simulator, HttpServerError.ServeError, Scope.Scope> {
  const scope = yield* Effect.scope
  const requests = LocalServer.makeRecorder<StubServer.Received>()
  const callbacks = LocalServer.makeRecorder<CallbackRecord>()
  let faults: Array<Fault> = []
  let callbackFaults: Array<CallbackFault> = []
  let held: Array<Callback> = []
  const secret = options.secret ?? defaultSecret

  const send = (callback: Callback) =>
    Effect.gen(function* () {
      const body = JSON.stringify(callback.body)
      const outcome = yield* Callbacks.send({
        url: callback.url,
        body,
        secret,
        scheme: options.scheme,
        retry: options.callbackRetry ?? { times: 0, baseDelayMs: 0 }
      })
      yield* callbacks.add({ at: yield* Clock.currentTimeMillis, url: callback.url, body, ...outcome })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))

  const dispatch = (callback: Callback) =>
    Effect.gen(function* () {
      if (options.callbackDelayMs !== undefined)
        yield* Effect.sleep(yield* LocalServer.drawMillis(options.callbackDelayMs))
      const fault = callbackFaults.shift()
      switch (fault) {
        case "Drop":
          return yield* callbacks.add({
            at: yield* Clock.currentTimeMillis,
            url: callback.url,
            body: JSON.stringify(callback.body),
            attempts: 0,
            status: null,
            outcome: "dropped"
          })
        case "Hold":
          return void held.push(callback)
        case "Duplicate":
          yield* send(callback)
          return yield* send(callback)
        case undefined:
          return yield* send(callback)
      }
    })

  const answerNormally = (request: StubServer.Received) =>
    Effect.gen(function* () {
      if (options.latencyMs !== undefined) yield* Effect.sleep(yield* LocalServer.drawMillis(options.latencyMs))
      const given = options.respond?.(request) ?? { status: 200, json: {} }
      const answer = Effect.isEffect(given) ? yield* given : given
      const callback = answer.status >= 200 && answer.status < 300 ? options.callback?.(request) : undefined
      if (callback !== undefined) yield* Effect.forkIn(dispatch(callback), scope)
      return answer
    })

  const handler = Effect.gen(function* () {
    const request = yield* StubServer.receive
    yield* requests.add(request)
    const fault = faults.shift()
    if (fault?._tag === "Drop") {
      const incoming = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest)
      incoming.socket?.destroy()
      // Written to a destroyed socket, which Node discards; waiting for an interrupt instead would
      // hang the server's shutdown.
      return StubServer.respond({ status: 204 })
    }
    if (fault?._tag === "Reply") return toResponse(fault.reply)
    if (fault?._tag === "Delay") yield* Effect.sleep(fault.millis)
    return toResponse(yield* answerNormally(request))
  })

  const address = yield* LocalServer.listen(handler)
  return {
    ...address,
    requests: requests.all,
    callbacks: callbacks.all,
    inject: (...more) => Effect.sync(() => void faults.push(...more)),
    injectCallbacks: (...more) => Effect.sync(() => void callbackFaults.push(...more)),
    held: Effect.sync(() => held.length),
    release: (order = "arrival") =>
      Effect.suspend(() => {
        const sending = order === "reverse" ? held.slice().reverse() : held.slice()
        held = []
        return Effect.forEach(sending, send, { discard: true })
      }),
    clear: Effect.all([requests.clear, callbacks.clear]).pipe(
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

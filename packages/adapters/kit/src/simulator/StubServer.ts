/**
 * A bare HTTP server for tests: it records every request with its raw body and answers whatever
 * the test says. Tests use it as a webhook receiver, or as a misbehaving vendor (5xx, garbage).
 *
 * @since 0.1.0
 */
import { Clock, Effect, type Scope } from "effect"
import { type HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as LocalServer from "./LocalServer.ts"

/**
 * A request as it arrived: lower-cased headers and the exact body.
 *
 * @category models
 */
export interface Received {
  readonly at: number
  readonly method: string
  /** The path and query, e.g. `/vendor-webhook/acme?token=...`. */
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
}

/**
 * What to answer; the body is sent as it is.
 *
 * @category models
 */
export interface Answer {
  readonly status: number
  readonly body?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A running stub.
 *
 * @category models
 */
export interface StubServer {
  /** `http://127.0.0.1:port`, no trailing slash. */
  readonly url: string
  readonly received: Effect.Effect<ReadonlyArray<Received>>
}

/**
 * Reads the request in context as a {@link Received}.
 *
 * @category models
 */
export const receive: Effect.Effect<Received, never, HttpServerRequest.HttpServerRequest> = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const body = yield* Effect.orElseSucceed(request.text, () => "")
  return {
    at: yield* Clock.currentTimeMillis,
    method: request.method,
    url: request.url,
    // A plain copy: Effect's `Headers` redacts credentials when printed, and tests look for them.
    headers: Object.fromEntries(Object.entries(request.headers)),
    body
  }
})

/**
 * An {@link Answer} as a server response (JSON content type unless the answer says otherwise).
 *
 * @category models
 */
export const respond = (answer: Answer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(answer.body ?? "", {
    status: answer.status,
    ...(answer.headers === undefined ? {} : { headers: answer.headers }),
    contentType: answer.headers?.["content-type"] ?? "application/json"
  })

/**
 * Starts a stub on a free loopback port for the life of the scope. `answer` sees each request and
 * how many came before it, so a test can fail the first few and then succeed.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  answer: (request: Received, index: number) => Answer | Effect.Effect<Answer>
): Effect.fn.Return<StubServer, HttpServerError.ServeError, Scope.Scope> {
  const received = LocalServer.makeRecorder<Received>()
  let count = 0
  const handler = Effect.gen(function* () {
    const entry = yield* receive
    yield* received.add(entry)
    const given = answer(entry, count++)
    return respond(Effect.isEffect(given) ? yield* given : given)
  })
  const { url } = yield* LocalServer.listen(handler)
  return { url, received: received.all }
})

/**
 * The hot path: `POST /jobs` and `GET /jobs/{id}`, nearly all of the API's traffic, answered
 * straight from Node's `request` event instead of through the router, middleware and request
 * adaption that every request takes in the full app. Profiled under load, that machinery cost more
 * CPU per request than storing and queueing the job did (see `docs/benchmarks.md`).
 *
 * Only the plain case is taken: `POST /jobs` with no query string, no `Idempotency-Key`,
 * `Content-Type: application/json` and a `Content-Length` within the body limit; `GET /jobs/{id}`
 * with no query string and a well-formed job id. Every other request, on these routes too, goes to
 * the full app as before. What the hot path answers is what the full app answers, status, headers
 * and body: it runs the same code (`Http.decodeUtf8`, `Http.parseJsonObject`, `Http.submitJob`,
 * `Http.readJob`) and renders problems as the API declares them. `Http.test.ts` runs with the hot
 * path on, and `HotPath.test.ts` sends the same requests to a server with it off and one with it on
 * and compares. The API contract, and so the OpenAPI document, is unchanged.
 *
 * With API keys on, the hot path checks and counts the key as the full app's `Authorization`
 * middleware does (`Access`, `Http.accessProblem`) and answers with the same `RateLimit` headers.
 *
 * Each request runs as a fiber in the server's scope, interrupted when the client goes away, as the
 * full app's are.
 *
 * @since 0.1.0
 */
import { type IncomingMessage, Server, type ServerResponse } from "node:http"
import { Access, Api, Job, Jobs } from "@vendorflow/core"
import { Cause, Effect, Exit, Fiber, Result, Schema } from "effect"
import { HttpServerRespondable, type HttpServerResponse } from "effect/http"
import * as Http from "./Http.ts"

/**
 * Answers a request itself and returns `true`, or returns `false` and leaves it to the full app.
 *
 * @category models
 */
export type Handler = (request: IncomingMessage, response: ServerResponse) => boolean

const isJobId = Schema.is(Job.JobId)

const jobPathPrefix = "/jobs/"

// What the full app answers for a defect (see `Http.problems`).
const internalError = new Api.InternalError({ detail: "The server failed; the error is logged." })

type Headers = Readonly<Record<string, string>>

/** Writes an `HttpServerResponse` built by the shared handlers (a body of bytes, or none). */
const write = (response: ServerResponse, answer: HttpServerResponse.HttpServerResponse, extra: Headers = {}): void => {
  const body = answer.body
  if (body._tag === "Uint8Array") {
    response.writeHead(answer.status, {
      ...answer.headers,
      ...extra,
      "content-type": body.contentType,
      "content-length": String(body.body.byteLength)
    })
    response.end(body.body)
    return
  }
  response.writeHead(answer.status, { ...answer.headers, ...extra })
  response.end()
}

const writeJson = (response: ServerResponse, status: number, value: unknown, extra: Headers): void => {
  const text = JSON.stringify(value)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...extra
  })
  response.end(text)
}

// The headers the API declares on a problem (`Api.*WithHeaders`), which the full app's encoder adds.
const problemHeaders = (problem: HttpServerRespondable.Respondable): Headers => {
  if (problem instanceof Api.ServiceUnavailable) return { "retry-after": String(problem.retry_after) }
  if (problem instanceof Api.Unauthorized) return { "www-authenticate": Api.bearerChallenge }
  if (problem instanceof Api.TooManyRequests) {
    return { "retry-after": String(problem.retry_after), ...Api.exhaustedRateLimitHeaders(problem) }
  }
  return {}
}

/**
 * Makes the handler over the `Jobs` service in context; its fibers run in the current scope.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: { readonly maxBodyBytes: number }) {
  const jobs = yield* Jobs.Jobs
  const access = yield* Access.Access
  const context = yield* Effect.context<never>()
  const scope = yield* Effect.scope
  const runFork = Effect.runForkWith(context)

  // A problem as the API renders it, with the headers the API declares on it.
  const writeProblem = (response: ServerResponse, problem: HttpServerRespondable.Respondable) =>
    write(response, Effect.runSync(HttpServerRespondable.toResponse(problem)), problemHeaders(problem))

  // Checks and counts the request's key first, as the full app's `Authorization` middleware does,
  // then runs `use` as its owner; answers `use`'s value with the `RateLimit` headers of a keyed call.
  const authorized = <A, E>(request: IncomingMessage, use: (owner: string | undefined) => Effect.Effect<A, E>) =>
    access.authorize(Access.credentialOf(request.headers)).pipe(
      Effect.mapError(Http.accessProblem),
      Effect.flatMap(({ caller, quota }) =>
        Effect.map(use(caller.owner), (value) => ({
          value,
          headers: quota === undefined ? {} : Api.rateLimitHeaders(quota)
        }))
      )
    )

  /** Runs `effect` for one request and answers with `onSuccess`, a problem, or a logged 500. */
  const run = <A, E extends HttpServerRespondable.Respondable>(
    request: IncomingMessage,
    response: ServerResponse,
    effect: Effect.Effect<A, E>,
    onSuccess: (value: A) => void
  ) => {
    const fiber = runFork(effect)
    Fiber.runIn(fiber, scope)
    fiber.addObserver((exit) => {
      if (response.writableEnded || response.destroyed) return
      if (Exit.isSuccess(exit)) return onSuccess(exit.value)
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") return writeProblem(response, error.value)
      if (Cause.hasInterruptsOnly(exit.cause)) return
      const logged = runFork(Effect.logError(`${request.method} ${request.url} failed`, exit.cause))
      Fiber.runIn(logged, scope)
      writeProblem(response, internalError)
    })
    if (fiber.pollUnsafe() === undefined) {
      response.on("close", () => {
        if (!response.writableEnded) fiber.interruptUnsafe()
      })
    }
  }

  const submit = (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const text = Http.decodeUtf8(chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(chunks))
      const payload = Result.flatMap(text, Http.parseJsonObject)
      const submitted = authorized(request, (owner) =>
        Effect.flatMap(Effect.fromResult(payload), (body) => Http.submitJob(jobs, { payload: body, owner }))
      )
      run(request, response, submitted, ({ value, headers }) => writeJson(response, 200, value, headers))
    })
  }

  const read = (request: IncomingMessage, response: ServerResponse, id: Job.JobId) => {
    const ifNoneMatch = request.headers["if-none-match"]
    const answer = authorized(request, (owner) => Http.readJob(jobs, id, { ifNoneMatch, owner }))
    run(request, response, answer, ({ value, headers }) => write(response, value, headers))
  }

  const handler: Handler = (request, response) => {
    const { headers, method, url } = request
    if (method === "POST") {
      if (url !== "/jobs" || headers["idempotency-key"] !== undefined || headers["expect"] !== undefined) return false
      if (headers["content-type"] !== "application/json" || headers["transfer-encoding"] !== undefined) return false
      const declared = Number(headers["content-length"])
      if (!(declared > 0 && declared <= options.maxBodyBytes)) return false
      submit(request, response)
      return true
    }
    if (method === "GET" && url !== undefined && url.startsWith(jobPathPrefix)) {
      const id = url.slice(jobPathPrefix.length)
      if (!isJobId(id)) return false
      read(request, response, id)
      return true
    }
    return false
  }
  return handler
})

/**
 * A Node HTTP server whose `request` events go to `hot` first; what it leaves goes to the
 * `request` listeners as usual (the full app's, which `NodeHttpServer` adds).
 *
 * @category constructors
 */
export class HotServer extends Server {
  readonly hot: Handler

  constructor(hot: Handler) {
    super()
    this.hot = hot
  }

  override emit(event: string, ...args: Array<unknown>): boolean {
    if (event === "request" && this.hot(args[0] as IncomingMessage, args[1] as ServerResponse)) return true
    return super.emit(event, ...args)
  }
}

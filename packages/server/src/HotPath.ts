/**
 * The hot path: `POST /jobs` and `GET /jobs/{id}`, nearly all of the API's traffic, answered
 * straight from Node's `request` event instead of through the router, middleware and request
 * adaption that every request takes in the full app. Profiled under load, that machinery cost more
 * CPU per request than storing and queueing the job did (see `docs/benchmarks.md`).
 *
 * Only the plain case is taken: `POST /jobs` with no query string, no `Idempotency-Key`,
 * `Content-Type: application/json` and a `Content-Length` within the body limit; `GET /jobs/{id}`
 * with no query string and a well-formed job id; neither with a `traceparent` to continue. Every
 * other request, on these routes too, goes to the full app as before. What the hot path answers is
 * what the full app answers, status, headers and body: it runs the same code (`Http.decodeUtf8`,
 * `Http.parseJsonObject`, and `Http.submitJobs` and `Http.readJobs`, which answer each job as
 * `Http.submitJob` and `Http.readJob` do) and renders problems as the API declares them.
 * `Http.test.ts` runs with the hot path on, and `HotPath.test.ts` sends the same requests to a
 * server with it off and one with it on and compares. The API contract, and so the OpenAPI
 * document, is unchanged.
 *
 * With API keys on, the hot path checks and counts the key as the full app's `Authorization`
 * middleware does (`Access`, `Http.accessProblem`) and answers with the same `RateLimit` headers.
 *
 * No request can end the process: whatever throws while the hot path handles a request (a defect
 * in a service, a value that cannot be written, an error it cannot render) is logged and answered
 * with the full app's 500 problem, rendered once at start-up; a batch that fails so answers each of
 * its requests, and the next request is served as usual.
 *
 * A request whose key check waits for the rate limiter's store is checked as a fiber in the
 * server's scope, interrupted when the client goes away, as the full app's are; a check decided at
 * once (keys off) needs no fiber. Then the requests that arrive in one turn of the event loop are
 * handled together, in one fiber: the submissions stored with one store write and queued with one queue
 * write per vendor (`Jobs.submitMany`), the reads read with one store read (`Jobs.getMany`). Under
 * load that takes the per-request work of storing, queueing and reading, which profiles showed was
 * most of a request's CPU, down to a share of one call; a request waits at most that turn for it.
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

const utf8 = new TextDecoder()

// What the full app answers for a defect (see `Http.problems`).
const internalError = new Api.InternalError({ detail: "The server failed; the error is logged." })

type Headers = Readonly<Record<string, string>>

type Respondable = HttpServerRespondable.Respondable

/** A batched request's outcome: its answer, or the problem the API answers. */
type Outcome<A> = Result.Result<A, Respondable>

// The most requests handled together; more in one turn of the event loop make more batches.
const maxBatch = 256

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
    // As text, Node sends the head and the body in one write; bytes take a `writev` (3-5% of a GET).
    response.end(utf8.decode(body.body))
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

// An effect that is already its outcome (`Effect.succeed` and `Effect.fail` make `Exit`s).
const isDecided = <A, E>(effect: Effect.Effect<A, E>): effect is Exit.Exit<A, E> => Exit.isExit(effect)

// A job read back (`Http.jobAnswer`): the view as JSON, or a 304 with no body.
const writeAnswer = (response: ServerResponse, answer: Http.JobAnswer, extra: Headers): void => {
  if (answer.view !== undefined) return writeJson(response, answer.status, answer.view, { ...answer.headers, ...extra })
  response.writeHead(answer.status, { ...answer.headers, ...extra })
  response.end()
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

  // Rendered now, so that answering a defect needs nothing that might be what failed.
  const internalErrorResponse = Effect.runSync(HttpServerRespondable.toResponse(internalError))

  const logDefect = (what: string, cause: Cause.Cause<unknown>) =>
    Fiber.runIn(runFork(Effect.logError(`${what} failed`, cause)), scope)

  // Runs one step of handling a request. What it throws is a defect: logged, and answered with the
  // 500 problem (or, past the headers, by closing the connection), never left to end the process.
  const guarded = (what: string, response: ServerResponse, step: () => void): void => {
    try {
      step()
    } catch (defect) {
      if (response.headersSent) response.destroy()
      else if (!response.writableEnded) write(response, internalErrorResponse)
      try {
        logDefect(what, Cause.die(defect))
      } catch {
        console.error(`${what} failed`, defect)
      }
    }
  }

  const requestName = (request: IncomingMessage) => `${request.method} ${request.url}`

  /** Runs `effect` for one request and answers with `onSuccess`, a problem, or a logged 500. */
  const run = <A, E extends HttpServerRespondable.Respondable>(
    request: IncomingMessage,
    response: ServerResponse,
    effect: Effect.Effect<A, E>,
    onSuccess: (value: A) => void
  ) => {
    const fiber = runFork(effect)
    Fiber.runIn(fiber, scope)
    fiber.addObserver((exit) =>
      guarded(requestName(request), response, () => {
        if (response.writableEnded || response.destroyed) return
        if (Exit.isSuccess(exit)) return onSuccess(exit.value)
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "Some") return writeProblem(response, error.value)
        if (Cause.hasInterruptsOnly(exit.cause)) return
        logDefect(requestName(request), exit.cause)
        writeProblem(response, internalError)
      })
    )
    if (fiber.pollUnsafe() === undefined) {
      response.on("close", () => {
        if (!response.writableEnded) fiber.interruptUnsafe()
      })
    }
  }

  // Checks and counts the request's key first, as the full app's `Authorization` middleware does,
  // then goes on with its owner and the `RateLimit` headers of a keyed call. A check already decided
  // (an `Exit`: keys off) goes on at once; one that waits for the rate limiter runs as a fiber.
  const authorized = (
    request: IncomingMessage,
    response: ServerResponse,
    use: (owner: string | undefined, headers: Headers) => void
  ) => {
    const authorization = access.authorize(Access.credentialOf(request.headers))
    const proceed = ({ caller, quota }: Effect.Success<typeof authorization>) =>
      use(caller.owner, quota === undefined ? {} : Api.rateLimitHeaders(quota))
    if (isDecided(authorization) && Exit.isSuccess(authorization)) return proceed(authorization.value)
    run(request, response, Effect.mapError(authorization, Http.accessProblem), proceed)
  }

  // Collects what came in this turn of the event loop and `process`es it together at its end, as
  // one fiber (at most `maxBatch` at once): `Jobs.submitMany` stores a turn's submissions with one
  // store write and queues them with one queue write per vendor, `Jobs.getMany` reads a turn's jobs
  // with one store read, where a fiber and its store and queue calls for each request cost more CPU
  // than the rest of the request did. Each item is answered with its own outcome, or the batch's
  // problem when the batch failed.
  const batched = <I, A>(
    what: string,
    process: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Outcome<A>>, Respondable>
  ) => {
    let batch: Array<{ readonly item: I; readonly answer: (outcome: Outcome<A>) => void }> = []
    let scheduled = false
    const processBatch = () => {
      scheduled = false
      if (batch.length === 0) return
      const processing = batch
      batch = []
      const answerAll = (outcome: Outcome<A>) => {
        for (const { answer } of processing) answer(outcome)
      }
      try {
        const fiber = runFork(process(processing.map(({ item }) => item)))
        Fiber.runIn(fiber, scope)
        fiber.addObserver((exit) => {
          if (Exit.isSuccess(exit)) return exit.value.forEach((outcome, i) => processing[i]?.answer(outcome))
          const error = Cause.findErrorOption(exit.cause)
          if (error._tag === "None" && !Cause.hasInterruptsOnly(exit.cause)) logDefect(what, exit.cause)
          answerAll(Result.fail(error._tag === "Some" ? error.value : internalError))
        })
      } catch (defect) {
        logDefect(what, Cause.die(defect))
        answerAll(Result.fail(internalError))
      }
    }
    return (item: I, answer: (outcome: Outcome<A>) => void) => {
      batch.push({ item, answer })
      if (batch.length >= maxBatch) processBatch()
      else if (!scheduled) {
        scheduled = true
        setImmediate(processBatch)
      }
    }
  }
  const submitLater = batched("POST /jobs", (submissions: ReadonlyArray<Jobs.Submission>) =>
    Http.submitJobs(jobs, submissions)
  )
  const readLater = batched("GET /jobs/{id}", (reads: ReadonlyArray<Http.JobRead>) => Http.readJobs(jobs, reads))

  // Answers a batched item on its response, unless the client has gone.
  const answerWith =
    <A>(request: IncomingMessage, response: ServerResponse, headers: Headers, onSuccess: (value: A) => void) =>
    (outcome: Outcome<A>) =>
      guarded(requestName(request), response, () => {
        if (response.writableEnded || response.destroyed) return
        if (Result.isSuccess(outcome)) onSuccess(outcome.success)
        else writeProblem(response, outcome.failure)
      })

  // The key is checked before a byte of the body is read, as the full app does: a caller without
  // one costs no reading or parsing of up to the body limit.
  const submit = (request: IncomingMessage, response: ServerResponse) =>
    authorized(request, response, (owner, headers) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () =>
        guarded(requestName(request), response, () => {
          const text = Http.decodeUtf8(chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(chunks))
          const payload = Result.flatMap(text, Http.parseJsonObject)
          if (Result.isFailure(payload)) return writeProblem(response, payload.failure)
          submitLater(
            { payload: payload.success, owner },
            answerWith(request, response, headers, (submitted) => writeJson(response, 200, submitted, headers))
          )
        })
      )
    })

  const read = (request: IncomingMessage, response: ServerResponse, id: Job.JobId) => {
    const ifNoneMatch = request.headers["if-none-match"]
    authorized(request, response, (owner, headers) =>
      readLater(
        { id, owner, ifNoneMatch },
        answerWith(request, response, headers, (answer) => writeAnswer(response, answer, headers))
      )
    )
  }

  const take: Handler = (request, response) => {
    const { headers, method, url } = request
    // The full app continues an incoming trace (its request span); the hot path makes no such span.
    if (headers["traceparent"] !== undefined) return false
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
  // A request that throws while being taken is the hot path's: it answers it.
  const handler: Handler = (request, response) => {
    let taken = true
    guarded(requestName(request), response, () => {
      taken = take(request, response)
    })
    return taken
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

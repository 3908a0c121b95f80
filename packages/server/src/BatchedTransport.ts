/**
 * The batched transport: the plain `POST /jobs` and `GET /jobs/{id}`, nearly all of the API's
 * traffic, answered straight from Node's `request` event rather than through the HttpApi app's
 * router, middleware and request adaption, which cost more CPU per request than storing and
 * queueing the job. It runs the endpoints' own descriptions (`SubmitJob.ts`, `ReadJob.ts`,
 * `Authorization.ts`) and writes their problems as the API declares them, so its answers are the
 * HttpApi app's: the shared HTTP case table runs against both.
 *
 * Only the plain case is taken: `POST /jobs` with no query string, no `Idempotency-Key`,
 * `Content-Type: application/json` and a `Content-Length` within the body limit; `GET /jobs/{id}`
 * with no query string and a well-formed job id; neither with a `traceparent` to continue (the
 * HttpApi app's request span does that). Everything else goes to the HttpApi app.
 *
 * The key is checked and counted before a byte of the body is read. A check decided at once
 * (keys off) goes on without a fiber; one that waits for the rate limiter's store runs as a fiber
 * in the server's scope, interrupted when the client goes away. Then the requests that arrive in
 * one turn of the event loop are handled together, in one fiber: the submissions stored with one
 * store write and queued with one queue write per vendor (`JobService.submitMany`), the reads read with
 * one store read (`JobService.getMany`). A request waits at most that turn for its batch.
 *
 * No request can end the process: whatever throws while a request is handled (a defect in a
 * service, a value that cannot be written) is logged and answered with the API's 500 problem, or,
 * past the headers, by closing the connection; a batch that fails so answers each of its requests.
 *
 * @since 0.1.0
 */
import { type IncomingMessage, Server, type ServerResponse } from "node:http"
import { Access, Job, JobService } from "@vendorflow/core"
import { Cause, Effect, Exit, Fiber, Result, type Scope, Schema } from "effect"
import * as Authorization from "./Authorization.ts"
import * as Problems from "./Problems.ts"
import * as ReadJob from "./ReadJob.ts"
import * as SubmitJob from "./SubmitJob.ts"

/**
 * Answers a request itself and returns `true`, or returns `false` and leaves it to the HttpApi app.
 *
 * @category models
 */
export type Handler = (request: IncomingMessage, response: ServerResponse) => boolean

type Headers = Readonly<Record<string, string>>

/** Renders an endpoint's declared problem; `undefined` for anything else. */
type RenderProblem = (problem: unknown) => Problems.Rendered | undefined

/** A batched request's outcome: its answer, or its problem. */
type Outcome<A> = Result.Result<A, unknown>

// The most requests handled together; more in one turn of the event loop make more batches. 32
// took `POST` about 15% further in interleaved rounds, but the known rate limit drew a 429 in its
// first second in both full bench runs with it: docs/benchmarks.md, "Tried and not kept".
const maxBatch = 256

const submitPath = SubmitJob.endpoint.path
const readPath = ReadJob.endpoint.path.slice(0, ReadJob.endpoint.path.indexOf(":"))
const isJobId = Schema.is(Job.JobId)

// ---------------------------------------------------------------------------------------------
// Writing answers
// ---------------------------------------------------------------------------------------------

// As text, Node sends the head and the body in one write; bytes would take a `writev`.
const writeJson = (response: ServerResponse, status: number, value: unknown, headers: Headers): void => {
  const text = JSON.stringify(value)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...headers
  })
  response.end(text)
}

const writeRendered = (response: ServerResponse, { body, headers, status }: Problems.Rendered): void => {
  response.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) })
  response.end(body)
}

// A job read back: the view as JSON, or a 304 with no body.
const writeRead = (response: ServerResponse, answer: ReadJob.Answer, headers: Headers): void => {
  if (answer.view !== undefined)
    return writeJson(response, answer.status, answer.view, { ...answer.headers, ...headers })
  response.writeHead(answer.status, { ...answer.headers, ...headers })
  response.end()
}

// ---------------------------------------------------------------------------------------------
// Running effects for requests
// ---------------------------------------------------------------------------------------------

/** What every step needs: where fibers run and how a defect is logged. */
interface Runtime {
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly scope: Scope.Scope
}

const requestName = (request: IncomingMessage) => `${request.method} ${request.url}`

const logDefect = (runtime: Runtime, what: string, cause: Cause.Cause<unknown>): void => {
  try {
    Fiber.runIn(runtime.runFork(Effect.logError(`${what} failed`, cause)), runtime.scope)
  } catch {
    console.error(`${what} failed`, Cause.squash(cause))
  }
}

/**
 * Runs one step of handling a request. What it throws is a defect: logged, and answered with the
 * 500 problem, never left to end the process.
 */
const guarded = (runtime: Runtime, request: IncomingMessage, response: ServerResponse, step: () => void): void => {
  try {
    step()
  } catch (defect) {
    if (response.headersSent) response.destroy()
    else if (!response.writableEnded) writeRendered(response, Problems.internalErrorRendered)
    logDefect(runtime, requestName(request), Cause.die(defect))
  }
}

/** Answers a request with its problem: one its endpoint declares, else the logged 500. */
const answerProblem = (
  runtime: Runtime,
  request: IncomingMessage,
  response: ServerResponse,
  render: RenderProblem,
  problem: unknown
): void => {
  const rendered = render(problem)
  if (rendered !== undefined) return writeRendered(response, rendered)
  logDefect(runtime, requestName(request), Cause.fail(problem))
  writeRendered(response, Problems.internalErrorRendered)
}

/** Answers an exit: its value with `onSuccess`, its problem, or a logged 500 for a defect. */
const answerExit = <A>(
  runtime: Runtime,
  request: IncomingMessage,
  response: ServerResponse,
  render: RenderProblem,
  exit: Exit.Exit<A, unknown>,
  onSuccess: (value: A) => void
): void =>
  guarded(runtime, request, response, () => {
    if (response.writableEnded || response.destroyed) return
    if (Exit.isSuccess(exit)) return onSuccess(exit.value)
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "Some") return answerProblem(runtime, request, response, render, error.value)
    if (Cause.hasInterruptsOnly(exit.cause)) return
    logDefect(runtime, requestName(request), exit.cause)
    writeRendered(response, Problems.internalErrorRendered)
  })

/** Runs `effect` for one request as a fiber, interrupted when the client goes away. */
const runFor = <A, E>(
  runtime: Runtime,
  request: IncomingMessage,
  response: ServerResponse,
  render: RenderProblem,
  effect: Effect.Effect<A, E>,
  onSuccess: (value: A) => void
): void => {
  const fiber = runtime.runFork(effect)
  Fiber.runIn(fiber, runtime.scope)
  fiber.addObserver((exit) => answerExit(runtime, request, response, render, exit, onSuccess))
  if (fiber.pollUnsafe() === undefined) {
    response.on("close", () => {
      if (!response.writableEnded) fiber.interruptUnsafe()
    })
  }
}

// An effect that is already its outcome (`Effect.succeed` and `Effect.fail` make `Exit`s).
const isDecided = <A, E>(effect: Effect.Effect<A, E>): effect is Exit.Exit<A, E> => Exit.isExit(effect)

/**
 * Checks and counts the request's key (`Authorization.check`), then goes on with its owner and
 * the headers its answer carries.
 */
const authorized = (
  runtime: Runtime,
  access: Access.Access["Service"],
  request: IncomingMessage,
  response: ServerResponse,
  render: RenderProblem,
  use: (owner: string | undefined, headers: Headers) => void
): void => {
  const check = Authorization.check(access, request.headers)
  const proceed = (grant: Authorization.Grant) => use(grant.caller.owner, Authorization.headersFor(grant))
  if (isDecided(check) && Exit.isSuccess(check)) return proceed(check.value)
  runFor(runtime, request, response, render, Effect.mapError(check, Authorization.problemFor), proceed)
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

/** Adds an item to the current batch; its answer comes with the batch's outcome. */
type Batch<I, A> = (item: I, answer: (outcome: Outcome<A>) => void) => void

/**
 * Collects what comes in this turn of the event loop and `process`es it together at its end, as
 * one fiber, or at once when `maxBatch` items have come. Each item is answered with its own
 * outcome, or the batch's problem when the batch failed.
 */
const makeBatch = <I, A>(
  runtime: Runtime,
  what: string,
  process: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Outcome<A>>, unknown>
): Batch<I, A> => {
  let batch: Array<{ readonly item: I; readonly answer: (outcome: Outcome<A>) => void }> = []
  let scheduled = false
  const processBatch = () => {
    if (batch.length === 0) return
    const processing = batch
    batch = []
    const answerAll = (outcome: Outcome<A>) => {
      for (const { answer } of processing) answer(outcome)
    }
    try {
      const fiber = runtime.runFork(process(processing.map(({ item }) => item)))
      Fiber.runIn(fiber, runtime.scope)
      fiber.addObserver((exit) => {
        if (Exit.isSuccess(exit)) return exit.value.forEach((outcome, i) => processing[i]?.answer(outcome))
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "None" && !Cause.hasInterruptsOnly(exit.cause)) logDefect(runtime, what, exit.cause)
        answerAll(Result.fail(error._tag === "Some" ? error.value : Problems.internalError))
      })
    } catch (defect) {
      logDefect(runtime, what, Cause.die(defect))
      answerAll(Result.fail(Problems.internalError))
    }
  }
  return (item, answer) => {
    batch.push({ item, answer })
    if (batch.length >= maxBatch) processBatch()
    // The turn's one `setImmediate` processes what is left at its end.
    else if (!scheduled) {
      scheduled = true
      setImmediate(() => {
        scheduled = false
        processBatch()
      })
    }
  }
}

/** Answers a batched item on its response, unless the client has gone. */
const answerOutcome =
  <A>(
    runtime: Runtime,
    request: IncomingMessage,
    response: ServerResponse,
    render: RenderProblem,
    onSuccess: (value: A) => void
  ) =>
  (outcome: Outcome<A>) =>
    guarded(runtime, request, response, () => {
      if (response.writableEnded || response.destroyed) return
      if (Result.isSuccess(outcome)) onSuccess(outcome.success)
      else answerProblem(runtime, request, response, render, outcome.failure)
    })

// ---------------------------------------------------------------------------------------------
// The endpoints
// ---------------------------------------------------------------------------------------------

/**
 * Makes the handler over the `Jobs` and `Access` services in context; its fibers run in the
 * current scope.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: { readonly maxBodyBytes: number }) {
  const jobs = yield* JobService.JobService
  const access = yield* Access.Access
  const runtime: Runtime = { runFork: Effect.runForkWith(yield* Effect.context<never>()), scope: yield* Effect.scope }
  const submitLater = makeBatch(runtime, "POST /jobs", (submissions: ReadonlyArray<JobService.Submission>) =>
    SubmitJob.submitMany(jobs, submissions)
  )
  const readLater = makeBatch(runtime, "GET /jobs/{id}", (reads: ReadonlyArray<ReadJob.Read>) =>
    ReadJob.readMany(jobs, reads)
  )

  const submit = (request: IncomingMessage, response: ServerResponse) =>
    authorized(runtime, access, request, response, SubmitJob.renderProblem, (owner, headers) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () =>
        guarded(runtime, request, response, () => {
          const payload = SubmitJob.decodeBody(
            chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(chunks)
          )
          if (Result.isFailure(payload)) {
            return answerProblem(runtime, request, response, SubmitJob.renderProblem, payload.failure)
          }
          submitLater(
            { payload: payload.success, owner },
            answerOutcome(runtime, request, response, SubmitJob.renderProblem, (submitted) =>
              writeJson(response, 200, submitted, headers)
            )
          )
        })
      )
    })

  const read = (request: IncomingMessage, response: ServerResponse, id: Job.JobId) =>
    authorized(runtime, access, request, response, ReadJob.renderProblem, (owner, headers) =>
      readLater(
        { id, owner, ifNoneMatch: request.headers["if-none-match"] },
        answerOutcome(runtime, request, response, ReadJob.renderProblem, (answer) =>
          writeRead(response, answer, headers)
        )
      )
    )

  const take: Handler = (request, response) => {
    const { headers, method, url } = request
    if (headers["traceparent"] !== undefined) return false
    if (method === "POST") {
      if (url !== submitPath || headers["idempotency-key"] !== undefined || headers["expect"] !== undefined)
        return false
      if (headers["content-type"] !== "application/json" || headers["transfer-encoding"] !== undefined) return false
      const declared = Number(headers["content-length"])
      if (!(declared > 0 && declared <= options.maxBodyBytes)) return false
      submit(request, response)
      return true
    }
    if (method === "GET" && url !== undefined && url.startsWith(readPath)) {
      const id = url.slice(readPath.length)
      if (!isJobId(id)) return false
      read(request, response, id)
      return true
    }
    return false
  }
  // A request that throws while being taken is this transport's: it answers it.
  const handler: Handler = (request, response) => {
    let taken = true
    guarded(runtime, request, response, () => {
      taken = take(request, response)
    })
    return taken
  }
  return handler
})

/**
 * A Node HTTP server whose `request` events go to the batched transport first; what it leaves
 * goes to the `request` listeners as usual (the HttpApi app's, which `NodeHttpServer` adds).
 *
 * @category constructors
 */
export class BatchingServer extends Server {
  readonly batched: Handler

  constructor(batched: Handler) {
    super()
    this.batched = batched
  }

  override emit(event: string, ...args: Array<unknown>): boolean {
    if (event === "request" && this.batched(args[0] as IncomingMessage, args[1] as ServerResponse)) return true
    return super.emit(event, ...args)
  }
}

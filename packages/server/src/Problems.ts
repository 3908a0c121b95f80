/**
 * RFC 9457 problems: the ones every endpoint shares (a store or queue that is down, a request
 * parameter that fails its schema, a bug), each problem rendered as core's `Api` declares it on
 * its endpoint (status, headers, body) for the batched transport, and, for the HttpApi app, a
 * problem for every error answer the API itself does not give (an unknown route, a wrong method,
 * a body the platform refused, a defect).
 *
 * Offers {@link requestValidation} (core's `Api.RequestValidation` middleware) and
 * {@link layerWith} (the router's fallback).
 *
 * @since 0.1.0
 */
import { Api, type JobQueue, type JobService, type JobStore } from "@vendorflow/core"
import { ByteSize, Cause, Effect, Layer, Schema, SchemaIssue } from "effect"
import {
  FindMyWay,
  HttpIncomingMessage,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerRespondable,
  HttpServerResponse,
  ProblemDetails
} from "effect/http"
import { HttpApi, type HttpApiEndpoint, HttpApiMiddleware } from "effect/http-api"
import * as RequestBody from "./RequestBody.ts"

// ---------------------------------------------------------------------------------------------
// Shared problems
// ---------------------------------------------------------------------------------------------

/**
 * The `Retry-After` of a 503, in seconds: a degraded store or queue usually recovers within
 * seconds, and clients should not hammer it.
 *
 * @category problems
 */
export const retryAfterSeconds = 5

/**
 * A store or queue error as the API answers it: unavailable is a 503 (logged); anything else
 * (a duplicate id, a forbidden transition) is our bug, not the client's: a defect, so a 500.
 *
 * @category problems
 */
export const serviceUnavailable = (error: JobStore.JobStoreError | JobQueue.JobQueueError) =>
  error.reason === "Unavailable"
    ? Effect.logWarning("answering 503", error).pipe(
        Effect.andThen(
          Effect.fail(
            new Api.ServiceUnavailable({
              detail: "The job store or queue is unavailable; retry later.",
              retry_after: retryAfterSeconds
            })
          )
        )
      )
    : Effect.die(error)

/**
 * A job that is not there, or not the caller's.
 *
 * @category problems
 */
export const jobNotFound = (error: JobService.JobNotFound): Api.JobNotFound =>
  new Api.JobNotFound({ detail: error.message, job_id: error.id })

/**
 * The 500 answered for a defect; what failed is logged, never sent.
 *
 * @category problems
 */
export const internalError = new Api.InternalError({ detail: "The server failed; the error is logged." })

const issues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const key = typeof segment === "object" ? segment.key : segment
  return typeof key === "number" ? key : String(key)
}

/**
 * Answers a path parameter, query parameter or header that fails its schema with
 * `Api.InvalidRequest`, listing each failed check.
 *
 * @category middleware
 */
export const requestValidation: Layer.Layer<Api.RequestValidation> = HttpApiMiddleware.layerSchemaErrorTransform(
  Api.RequestValidation,
  (error) => {
    // A response that fails its own schema is our bug; it stays a defect (500).
    if (error.kind === "Body" || error.kind === "ResponseHeaders") return Effect.fail(error)
    const slot = error.kind.toLowerCase()
    const errors = issues(error.cause.issue).issues.map((issue) => ({
      path: [slot, ...(issue.path ?? []).map(pathSegment)],
      message: issue.message
    }))
    const first = errors[0]
    const detail =
      first === undefined
        ? `The request's ${slot} failed validation.`
        : `Invalid ${first.path.join(".")}: ${first.message}`
    return Effect.fail(new Api.InvalidRequest({ detail, errors }))
  }
)

// ---------------------------------------------------------------------------------------------
// Problems as an endpoint declares them
// ---------------------------------------------------------------------------------------------

/**
 * A problem as the API answers it: its status, the headers the API declares on it, and its body
 * as JSON text.
 *
 * @category rendering
 */
export interface Rendered {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

type Encoded = { readonly status: number }

// A problem declared with headers (`Api.*WithHeaders`) encodes to `{ body, headers }`.
interface WithHeaders {
  readonly body: Encoded
  readonly headers: Readonly<Record<string, string>>
}

const isWithHeaders = (encoded: Encoded | WithHeaders): encoded is WithHeaders =>
  "body" in encoded && "headers" in encoded

// The API's problems need no services to encode.
type ProblemSchema = Schema.Codec<unknown, unknown>

const render = (schema: ProblemSchema, problem: unknown): Rendered => {
  const encoded = Schema.encodeUnknownSync(schema)(problem) as Encoded | WithHeaders
  const { body, headers } = isWithHeaders(encoded) ? encoded : { body: encoded, headers: {} }
  return {
    status: body.status,
    headers: { ...headers, "content-type": ProblemDetails.contentType },
    body: JSON.stringify(body)
  }
}

/**
 * {@link internalError}, rendered once so that answering a defect needs nothing that might be
 * what failed.
 *
 * @category rendering
 */
export const internalErrorRendered: Rendered = render(Api.InternalError, internalError)

// The error schemas of a middleware key (`Api.Authorization` declares 401 and 429).
const middlewareErrors = (key: object): ReadonlyArray<ProblemSchema> =>
  "error" in key && key.error instanceof Set ? [...(key.error as ReadonlySet<ProblemSchema>)] : []

/**
 * Renders the problems `endpoint` declares, its own and its middleware's, exactly as the HttpApi
 * app encodes them, and the 500 of a defect; `undefined` for anything else, which is a defect.
 *
 * @category rendering
 */
export const declaredBy = (
  endpoint: Pick<HttpApiEndpoint.Top, "error" | "middlewares">
): ((problem: unknown) => Rendered | undefined) => {
  const own = endpoint.error as ReadonlySet<ProblemSchema>
  const schemas = [...own, ...[...endpoint.middlewares].flatMap(middlewareErrors), Api.InternalError]
  const declared = schemas.map((schema) => ({
    schema,
    is: Schema.is(schema)
  }))
  return (problem) => {
    const found = declared.find(({ is }) => is(problem))
    return found === undefined ? undefined : render(found.schema, problem)
  }
}

// ---------------------------------------------------------------------------------------------
// Problems outside the API
// ---------------------------------------------------------------------------------------------

const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const

const isRoutePath = (path: string): path is FindMyWay.PathInput => path.startsWith("/")

/** Every route this server answers, to tell a wrong method (405) from an unknown path (404). */
const makeRouteTable = () => {
  const table = FindMyWay.make<true>()
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      if (isRoutePath(endpoint.path)) table.on(endpoint.method, endpoint.path, true)
    }
  })
  table.on("GET", "/openapi.json", true)
  table.on("GET", "/docs", true)
  table.on("GET", "/ui", true)
  table.on("GET", "/ui/*", true)
  return table
}

const isProblem = (response: HttpServerResponse.HttpServerResponse): boolean =>
  response.body._tag !== "Empty" &&
  response.body._tag !== "FormData" &&
  response.body.contentType === ProblemDetails.contentType

const statusTitles: Readonly<Record<number, string>> = {
  400: "Bad request",
  404: "Not found",
  408: "Request timeout",
  411: "Length required",
  413: "Payload too large",
  415: "Unsupported media type",
  500: "Internal server error",
  503: "Service unavailable"
}

/**
 * Renders any error response that is not a problem yet (the router's empty 404, a body the
 * platform could not parse, a defect's empty 500) as one.
 */
const toProblem = (
  table: FindMyWay.Router<true>,
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse,
  maxBodyBytes: number
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const path = request.url.split("?")[0] ?? request.url
  // Keeps what the platform set, e.g. `connection: close` on a 413.
  const respond = (problem: HttpServerRespondable.Respondable) =>
    Effect.map(HttpServerRespondable.toResponse(problem), HttpServerResponse.setHeaders(response.headers))
  switch (response.status) {
    case 404: {
      const routes = (method: string) => table.find(method, request.url) !== undefined
      // The router answers HEAD with the GET route.
      const allowed = methods.filter((method) => routes(method) || (method === "HEAD" && routes("GET")))
      if (allowed.length === 0) {
        return respond(new Api.RouteNotFound({ detail: `No route for ${request.method} ${path}.` }))
      }
      return respond(new Api.MethodNotAllowed({ detail: `${path} does not accept ${request.method}.`, allowed })).pipe(
        Effect.map(HttpServerResponse.setHeader("allow", allowed.join(", ")))
      )
    }
    case 413:
      return respond(RequestBody.tooLarge(maxBodyBytes))
    case 500:
      return respond(internalError)
    default:
      return Effect.succeed(
        ProblemDetails.toResponse({
          type: ProblemDetails.blankType,
          status: response.status,
          title: statusTitles[response.status] ?? `HTTP ${response.status}`,
          detail: `${request.method} ${path} failed with status ${response.status}.`
        })
      ).pipe(Effect.map(HttpServerResponse.setHeaders(response.headers)))
  }
}

/**
 * Global router middleware: sets the body limit for every request, and turns every error
 * response that is not a problem into one. A defect is logged here, with its cause, and the
 * client gets a 500 problem without a stack trace.
 *
 * @category middleware
 */
export const layerWith = (options: { readonly maxBodyBytes: number }) => {
  const table = makeRouteTable()
  const maxBodySize = ByteSize.bytes(options.maxBodyBytes)
  return HttpRouter.middleware(
    (httpEffect) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const problemFor = (response: HttpServerResponse.HttpServerResponse) =>
          response.status < 400 || response.status === 499 || isProblem(response)
            ? Effect.succeed(response)
            : toProblem(table, request, response, options.maxBodyBytes)
        return httpEffect.pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBodySize),
          Effect.flatMap(problemFor),
          Effect.catchCause((cause) => {
            // Client aborts and shutdown keep the platform's own handling.
            if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
            return HttpServerError.causeResponse(cause).pipe(
              Effect.flatMap(([response]) =>
                response.status >= 500
                  ? Effect.logError(`${request.method} ${request.url} failed`, cause).pipe(
                      Effect.andThen(problemFor(response))
                    )
                  : problemFor(response)
              )
            )
          })
        )
      }),
    { global: true }
  )
}

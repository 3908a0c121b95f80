/**
 * The HTTP routes: core's `Api` implemented over the `Jobs` service, `GET /openapi.json`,
 * interactive docs at `GET /docs`, and RFC 9457 problems for everything the API itself does not
 * answer (an unknown route, a wrong method, an oversize or unreadable body, a bug).
 *
 * `POST /jobs` and the webhook read the raw body themselves: the job endpoint to control each
 * status exactly (415, 413, 400, 422) and to stay cheap on the hot path, the webhook because its
 * signature covers the exact bytes. No endpoint buffers more than the body limit.
 *
 * Offers {@link layer} (limit from `MAX_BODY_BYTES`) and {@link layerWith}.
 *
 * @since 0.1.0
 */
import {
  Access,
  Api,
  Health,
  Job,
  Jobs,
  JobQueue,
  type JobStore,
  Metrics,
  Stats,
  type Vendor,
  VendorCircuit,
  VendorRegistry,
  WebhookSignature,
  Workers
} from "@vendorflow/core"
import { ByteSize, Cause, Config, Effect, Layer, type Option, Result, SchemaIssue } from "effect"
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
import { HttpApi, HttpApiBuilder, HttpApiMiddleware, HttpApiScalar } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { CircuitBreaker } from "effect/persistence"
import * as Dashboard from "./Dashboard.ts"

/**
 * The largest request body accepted by default: 1 MiB.
 *
 * @category config
 */
export const defaultMaxBodyBytes = 1024 * 1024

/**
 * The body limit from `MAX_BODY_BYTES` (bytes, default 1 MiB).
 *
 * @category config
 */
export const maxBodyBytesConfig: Config.Config<number> = Config.Int("MAX_BODY_BYTES").pipe(
  Config.withDefault(defaultMaxBodyBytes)
)

/**
 * Options of {@link layerWith}.
 *
 * @category models
 */
export interface Options {
  /** The largest request body accepted, in bytes. */
  readonly maxBodyBytes: number
  /** Origins a browser may call the API from (CORS); none by default, so CORS is off. */
  readonly corsOrigins?: ReadonlyArray<string> | undefined
  /** `/ready` answers 503 while fewer workers than this beat; 0 (the default): workers don't count. */
  readonly readyMinWorkers?: number | undefined
}

/**
 * The CORS origins from `CORS_ORIGINS` (comma-separated, e.g. `https://ops.example.com`; `*` for
 * any); empty by default, and then no CORS headers are sent.
 *
 * @category config
 */
export const corsOriginsConfig: Config.Config<ReadonlyArray<string>> = Config.String("CORS_ORIGINS").pipe(
  Config.withDefault(""),
  Config.map((text) =>
    text
      .split(",")
      .map((origin) => origin.trim())
      .filter((origin) => origin !== "")
  )
)

// What a browser client may send and read across origins.
const corsHeaders = {
  allowedHeaders: ["content-type", "authorization", "x-api-key", "idempotency-key", "if-none-match"],
  exposedHeaders: ["ratelimit", "ratelimit-policy", "retry-after", "etag", "www-authenticate"]
}

// A degraded store or queue usually recovers within seconds; clients should not hammer it.
const retryAfterSeconds = 5

const serviceUnavailable = (error: JobStore.JobStoreError | JobQueue.JobQueueError) =>
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
    : // Duplicate ids and forbidden transitions are our bugs, not the client's: a 500.
      Effect.die(error)

// ---------------------------------------------------------------------------------------------
// Reading bodies
// ---------------------------------------------------------------------------------------------

const tooLarge = (maxBodyBytes: number) =>
  new Api.PayloadTooLarge({ detail: `The body is larger than ${maxBodyBytes} bytes.`, max_bytes: maxBodyBytes })

const isBodyTooLarge = (error: HttpServerError.HttpServerError): boolean =>
  error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"

/**
 * Reads the body as text, at most `maxBodyBytes`: a declared `content-length` over the limit is
 * refused before a byte is read, and a chunked body is cut off as soon as it passes the limit.
 */
const readText = (request: HttpServerRequest.HttpServerRequest, maxBodyBytes: number) => {
  const declared = Number(request.headers["content-length"])
  if (declared > maxBodyBytes) return Effect.fail(tooLarge(maxBodyBytes))
  return request.arrayBuffer.pipe(
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
    Effect.mapError((error) =>
      isBodyTooLarge(error) ? tooLarge(maxBodyBytes) : new Api.MalformedJson({ detail: "The body could not be read." })
    ),
    Effect.flatMap((bytes) => Effect.fromResult(decodeUtf8(new Uint8Array(bytes))))
  )
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * A body's bytes as text; bytes that are not UTF-8 are a 400, not replacement characters in a
 * stored payload.
 *
 * @category handlers
 */
export const decodeUtf8 = (bytes: Uint8Array): Result.Result<string, Api.MalformedJson> =>
  Result.try({
    try: () => utf8.decode(bytes),
    catch: () => new Api.MalformedJson({ detail: "The body is not valid UTF-8." })
  })

const hasBody = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.headers["transfer-encoding"] !== undefined ||
  (request.headers["content-length"] !== undefined && request.headers["content-length"] !== "0")

// `application/json` and structured-syntax types such as `application/merge-patch+json`.
const jsonMediaType = /^application\/(?:[a-z0-9!#$&^_.-]+\+)?json$/

/** Why a content type is not accepted as JSON, or `undefined` when it is. */
const contentTypeProblem = (header: string): string | undefined => {
  const [mediaType = "", ...parameters] = header.split(";")
  if (!jsonMediaType.test(mediaType.trim().toLowerCase())) {
    return `Content type ${mediaType.trim()} is not JSON; send application/json.`
  }
  for (const parameter of parameters) {
    const [name = "", value = ""] = parameter.split("=")
    const charset = value.trim().replace(/^"|"$/g, "").toLowerCase()
    if (name.trim().toLowerCase() === "charset" && charset !== "utf-8" && charset !== "utf8") {
      return `Charset ${charset} is not supported; JSON is sent as UTF-8.`
    }
  }
  return undefined
}

const isJsonObject = (value: unknown): value is Job.JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const describeJson = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`

/** The body of `POST /jobs` as a JSON object, or the problem that explains why not. */
const readJsonObject = Effect.fnUntraced(function* (
  request: HttpServerRequest.HttpServerRequest,
  maxBodyBytes: number
) {
  const contentType = request.headers["content-type"]
  if (contentType === undefined) {
    return yield* hasBody(request)
      ? new Api.UnsupportedMediaType({ detail: "The request has no content type; send application/json." })
      : new Api.MalformedJson({ detail: "The body is empty; send a JSON object." })
  }
  const unsupported = contentTypeProblem(contentType)
  if (unsupported !== undefined) return yield* new Api.UnsupportedMediaType({ detail: unsupported })
  const text = yield* readText(request, maxBodyBytes)
  return yield* Effect.fromResult(parseJsonObject(text))
})

/**
 * The text of a `POST /jobs` body as a JSON object, or the problem that explains why not (400 for
 * an empty or malformed body, 422 for JSON that is not an object or names a vendor that is not a
 * string). Shared by the full route and the hot path (`HotPath.ts`).
 *
 * @category handlers
 */
export const parseJsonObject = (
  text: string
): Result.Result<Job.JsonObject, Api.MalformedJson | Api.InvalidPayload> => {
  if (text.trim() === "")
    return Result.fail(new Api.MalformedJson({ detail: "The body is empty; send a JSON object." }))
  return Result.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) =>
      new Api.MalformedJson({
        detail: `The body is not well-formed JSON: ${error instanceof Error ? error.message : String(error)}.`
      })
  }).pipe(
    Result.flatMap((value): Result.Result<Job.JsonObject, Api.MalformedJson | Api.InvalidPayload> => {
      if (!isJsonObject(value)) {
        return Result.fail(new Api.InvalidPayload({ detail: `Expected a JSON object, got ${describeJson(value)}.` }))
      }
      if (value["vendor"] !== undefined && typeof value["vendor"] !== "string") {
        return Result.fail(new Api.InvalidPayload({ detail: "The payload's vendor must be a string." }))
      }
      if (Job.nestsDeeperThan(value)) {
        return Result.fail(
          new Api.InvalidPayload({ detail: `The payload nests deeper than ${Job.maxJsonDepth} levels.` })
        )
      }
      return Result.succeed(value)
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/**
 * How a job read back is answered: its view with status 200, or no body with 304; and the
 * caching headers.
 *
 * @category handlers
 */
export interface JobAnswer {
  readonly status: 200 | 304
  readonly headers: Readonly<Record<string, string>>
  /** Absent for a 304. */
  readonly view?: Api.JobView | undefined
}

/**
 * A job read back, with HTTP caching where it is safe: a complete job never changes again, so it
 * carries a strong `ETag` and may be cached for a year; a failed job can still be sent round again
 * by an operator, so it carries an `ETag` but must be revalidated; a pending or processing job is
 * never cached. `If-None-Match` with the current `ETag` answers 304.
 *
 * @category handlers
 */
export const jobAnswer = (job: Job.JobSummary, ifNoneMatch: string | undefined): JobAnswer => {
  if (!Job.isFinished(job.status)) {
    return { status: 200, headers: { "cache-control": "no-store" }, view: Api.toJobView(job) }
  }
  const etag = `"${job.id}.${job.version}"`
  const headers = {
    etag,
    "cache-control": job.status === "complete" ? "private, max-age=31536000, immutable" : "private, no-cache"
  }
  const matches = ifNoneMatch !== undefined && ifNoneMatch.split(",").some((tag) => tag.trim() === etag)
  return matches ? { status: 304, headers } : { status: 200, headers, view: Api.toJobView(job) }
}

/**
 * {@link jobAnswer} as the full app's response.
 *
 * @category handlers
 */
export const cachedView = (
  job: Job.JobSummary,
  ifNoneMatch: string | undefined
): HttpServerResponse.HttpServerResponse => {
  const { headers, status, view } = jobAnswer(job, ifNoneMatch)
  return view === undefined
    ? HttpServerResponse.empty({ status, headers })
    : HttpServerResponse.jsonUnsafe(view, { status, headers })
}

/**
 * The problem the API answers for a submission the service refused.
 *
 * @category handlers
 */
export const submissionProblem = (
  error: VendorRegistry.UnknownVendor | Jobs.Backlogged | Jobs.IdempotencyConflict
): Api.UnknownVendor | Api.ServiceUnavailable | Api.IdempotencyConflict => {
  switch (error._tag) {
    case "UnknownVendor":
      return new Api.UnknownVendor({ detail: error.message, vendor: error.vendor, known_vendors: error.known })
    case "Backlogged":
      return new Api.ServiceUnavailable({ detail: error.message, retry_after: retryAfterSeconds })
    case "IdempotencyConflict":
      return new Api.IdempotencyConflict({
        detail: error.message,
        idempotency_key: error.idempotencyKey,
        request_id: error.id
      })
  }
}

const submitted = (job: Job.Job): Api.Submitted => ({ request_id: job.id })

/**
 * Submits a job and answers `{ request_id }`, or fails with the problem the API answers for the
 * service's error. The full route's way; the hot path batches with {@link submitJobs}.
 *
 * @category handlers
 */
export const submitJob = (
  jobs: Jobs.Jobs["Service"],
  options: {
    readonly payload: Job.JsonObject
    readonly vendor?: string | undefined
    readonly idempotencyKey?: string | undefined
    readonly owner?: string | undefined
  }
) =>
  jobs.submit(options).pipe(
    Effect.map(submitted),
    Effect.catchTags({
      UnknownVendor: (error) => Effect.fail(submissionProblem(error)),
      Backlogged: (error) => Effect.fail(submissionProblem(error)),
      IdempotencyConflict: (error) => Effect.fail(submissionProblem(error)),
      JobStoreError: serviceUnavailable,
      JobQueueError: serviceUnavailable
    })
  )

/**
 * Submits plain jobs together (`Jobs.submitMany`): each answer is `{ request_id }` or the problem
 * the API answers for that submission, as {@link submitJob} would; a store or queue that fails
 * fails them all with its problem.
 *
 * @category handlers
 */
export const submitJobs = (jobs: Jobs.Jobs["Service"], submissions: ReadonlyArray<Jobs.Submission>) =>
  jobs.submitMany(submissions).pipe(
    Effect.map((outcomes) =>
      outcomes.map((outcome) => Result.mapBoth(outcome, { onSuccess: submitted, onFailure: submissionProblem }))
    ),
    Effect.catchTags({ JobStoreError: serviceUnavailable, JobQueueError: serviceUnavailable })
  )

/**
 * Reads a job back as {@link cachedView} answers it, or fails with the problem the API answers.
 * Shared by the full route and the hot path (`HotPath.ts`).
 *
 * @category handlers
 */
export const readJob = (
  jobs: Jobs.Jobs["Service"],
  id: Job.JobId,
  options: { readonly ifNoneMatch: string | undefined; readonly owner: string | undefined }
) =>
  // As one read of a batch: `getMany` leaves the payload out, which the view does not show.
  jobs.getMany([{ id, owner: options.owner }]).pipe(
    Effect.flatMap(([outcome]) => Effect.fromResult(outcome ?? Result.fail(new Jobs.JobNotFound({ id })))),
    Effect.map((job) => cachedView(job, options.ifNoneMatch)),
    Effect.catchTags({
      JobNotFound: (error) => Effect.fail(notFound(error)),
      JobStoreError: serviceUnavailable
    })
  )

const notFound = (error: Jobs.JobNotFound) => new Api.JobNotFound({ detail: error.message, job_id: error.id })

/**
 * One read of {@link readJobs}: the job, its reader, and the validators the client already holds.
 *
 * @category handlers
 */
export interface JobRead extends Jobs.Read {
  readonly ifNoneMatch: string | undefined
}

/**
 * Reads jobs together (`Jobs.getMany`): each answer is what {@link readJob} answers for that read
 * (as a {@link JobAnswer}, which the hot path writes itself); a store that fails fails them all
 * with its problem.
 *
 * @category handlers
 */
export const readJobs = (jobs: Jobs.Jobs["Service"], reads: ReadonlyArray<JobRead>) =>
  jobs.getMany(reads).pipe(
    Effect.map((outcomes) =>
      outcomes.map((outcome, i) =>
        Result.mapBoth(outcome, { onSuccess: (job) => jobAnswer(job, reads[i]?.ifNoneMatch), onFailure: notFound })
      )
    ),
    Effect.catchTag("JobStoreError", serviceUnavailable)
  )

/**
 * The handlers of `POST /jobs` and `GET /jobs/{id}`.
 *
 * @category handlers
 */
export const jobsHandlers = (options: Options) =>
  HttpApiBuilder.group(
    Api.Api,
    "jobs",
    Effect.fnUntraced(function* (handlers) {
      const jobs = yield* Jobs.Jobs
      return handlers
        .handleRaw("submit", ({ headers, query, request }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) =>
            readJsonObject(request, options.maxBodyBytes).pipe(
              Effect.flatMap((payload) =>
                submitJob(jobs, { payload, vendor: query.vendor, idempotencyKey: headers["idempotency-key"], owner })
              )
            )
          )
        )
        .handle("list", ({ query }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) =>
            jobs
              .list({
                status: query.status,
                vendor: query.vendor,
                owner,
                limit: query.limit ?? 50,
                after: query.cursor === undefined ? undefined : Api.decodeCursor(query.cursor)
              })
              .pipe(
                Effect.map((page): Api.JobList => ({
                  jobs: page.jobs.map(Api.toJobView),
                  ...(page.next === undefined ? {} : { next_cursor: Api.encodeCursor(page.next) })
                })),
                Effect.catchTag("JobStoreError", serviceUnavailable)
              )
          )
        )
        .handle("retry", ({ params }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) => jobs.retry(params.id, owner)).pipe(
            Effect.map(Api.toJobView),
            Effect.catchTags({
              JobNotFound: (error) => Effect.fail(new Api.JobNotFound({ detail: error.message, job_id: error.id })),
              NotRetryable: (error) =>
                Effect.fail(
                  new Api.NotRetryable({ detail: error.message, job_id: error.id, job_status: error.status })
                ),
              JobStoreError: serviceUnavailable,
              JobQueueError: serviceUnavailable
            })
          )
        )
        .handleRaw("get", ({ params, request }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) =>
            readJob(jobs, params.id, { ifNoneMatch: request.headers["if-none-match"], owner })
          )
        )
    })
  )

const webhookProblem = (error: Vendor.WebhookError) =>
  error.reason === "Malformed"
    ? new Api.MalformedWebhook({ detail: error.message })
    : new Api.InvalidSignature({ detail: error.message })

/**
 * The handler of `POST /vendor-webhook/{vendor}`: the vendor's adapter verifies the raw body.
 *
 * @category handlers
 */
export const webhooksHandlers = (options: Options) =>
  HttpApiBuilder.group(
    Api.Api,
    "webhooks",
    Effect.fnUntraced(function* (handlers) {
      const jobs = yield* Jobs.Jobs
      const registry = yield* VendorRegistry.VendorRegistry
      const webhookVendors = registry.vendors
        .filter((vendor) => vendor.parseWebhook !== undefined)
        .map((vendor) => vendor.name)
      return handlers.handleRaw("receive", ({ params, request }) =>
        readText(request, options.maxBodyBytes).pipe(
          Effect.catchTag("MalformedJson", (error) => Effect.fail(new Api.MalformedWebhook({ detail: error.detail }))),
          // Node lower-cases header names already; the adapter contract relies on it.
          Effect.flatMap((body) =>
            jobs.receiveWebhook(params.vendor, {
              headers: request.headers,
              body,
              callbackToken: WebhookSignature.callbackTokenOf(request.url)
            })
          ),
          Effect.map(Api.toJobView),
          Effect.catchTags({
            UnknownVendor: (error) =>
              Effect.fail(
                new Api.VendorNotFound({
                  detail: `No vendor named "${error.vendor}" takes webhooks.`,
                  vendor: error.vendor,
                  known_vendors: webhookVendors
                })
              ),
            WebhookError: (error) =>
              Metrics.count(Metrics.webhooksRejected, { vendor: params.vendor, reason: error.reason }).pipe(
                Effect.andThen(Effect.fail(webhookProblem(error)))
              ),
            JobNotFound: (error) => Effect.fail(new Api.JobNotFound({ detail: error.message, job_id: error.id })),
            CallbackNotApplied: (error) =>
              Metrics.count(Metrics.webhooksRejected, { vendor: params.vendor, reason: "NotApplied" }).pipe(
                Effect.andThen(Effect.fail(new Api.CallbackNotApplied({ detail: error.message, job_id: error.id })))
              ),
            JobStoreError: serviceUnavailable
          })
        )
      )
    })
  )

/**
 * The handlers of `GET /health` and `GET /ready`: the backends' checks, each vendor's circuit, and
 * the live workers.
 *
 * @category handlers
 */
export const systemHandlers = (options: Options) =>
  HttpApiBuilder.group(
    Api.Api,
    "system",
    Effect.fnUntraced(function* (handlers) {
      const registry = yield* VendorRegistry.VendorRegistry
      const health = yield* Health.Health
      const vendors = registry.vendors.map((vendor) => vendor.name)
      const breaker = yield* Effect.serviceOption(CircuitBreaker.CircuitBreaker)
      const circuitOf = circuitState(breaker)
      // Each vendor's circuit as the shared store has it (when this process has a breaker).
      const circuits = Effect.forEach(breaker._tag === "Some" ? vendors : [], (vendor) =>
        Effect.map(circuitOf(vendor), (state) => [vendor, state] as const)
      ).pipe(Effect.map((entries) => Object.fromEntries(entries)))
      const workers = yield* Workers.Workers
      const readyMinWorkers = options.readyMinWorkers ?? 0
      // The workers are read once a request: listed in the report, and, when asked to, counted for
      // readiness (an API without workers still takes jobs).
      const report = Effect.gen(function* () {
        const read = yield* Effect.result(workers.alive)
        if (read._tag === "Failure") yield* Effect.logWarning("cannot read the workers' heartbeats", read.failure)
        const beats = read._tag === "Success" ? read.success : []
        const workersCheck: ReadonlyArray<Health.Check> =
          readyMinWorkers > 0
            ? [
                {
                  name: "workers",
                  check:
                    read._tag === "Failure"
                      ? Effect.fail(read.failure)
                      : beats.length >= readyMinWorkers
                        ? Effect.void
                        : Effect.fail({
                            message: `${beats.length} live worker(s), READY_MIN_WORKERS is ${readyMinWorkers}`
                          })
                }
              ]
            : []
        const checked = Health.Health.of({ checks: [...health.checks, ...workersCheck] })
        const result = yield* Health.report.pipe(Effect.provideService(Health.Health, checked))
        return { ...result, circuits: yield* circuits, workers: beats }
      })
      return handlers
        .handle("health", () => Effect.map(report, (result) => ({ ...result, vendors })))
        .handle("ready", () =>
          Effect.flatMap(report, (result) =>
            result.status === "ok"
              ? Effect.succeed({ ...result, vendors })
              : Effect.fail(
                  new Api.NotReady({
                    detail: `not ready: ${Object.entries(result.checks)
                      .filter(([, check]) => check.status === "down")
                      .map(([name]) => name)
                      .join(", ")} down`,
                    checks: result.checks
                  })
                )
          )
        )
    })
  )

/** A vendor's circuit as the breaker's store has it: `Closed`, `Open`, `HalfOpen`, or `Unknown`. */
const circuitState =
  (breaker: Option.Option<CircuitBreaker.CircuitBreaker>) =>
  (vendor: string): Effect.Effect<string> =>
    breaker._tag === "Some"
      ? breaker.value.state(VendorCircuit.key(vendor)).pipe(
          Effect.map((state): string => state._tag),
          Effect.orElseSucceed(() => "Unknown")
        )
      : Effect.succeed("Unknown")

/**
 * The handler of `GET /stats`: the process's collector (`Stats`), with each vendor's backlog and
 * circuit read from the queue and breaker this process shares with the workers.
 *
 * @category handlers
 */
export const statsHandlers = HttpApiBuilder.group(
  Api.Api,
  "stats",
  Effect.fnUntraced(function* (handlers) {
    const registry = yield* VendorRegistry.VendorRegistry
    const queue = yield* Effect.serviceOption(JobQueue.JobQueue)
    const collector = yield* Stats.Stats
    const circuit = circuitState(yield* Effect.serviceOption(CircuitBreaker.CircuitBreaker))
    const vendors = registry.vendors.map((vendor) => ({
      name: vendor.name,
      mode: vendor.mode,
      rateLimit: vendor.rateLimit
    }))
    const backlog = (vendor: string): Effect.Effect<number | undefined> =>
      queue._tag === "Some"
        ? queue.value.depth(vendor).pipe(Effect.orElseSucceed(() => undefined))
        : Effect.succeed(undefined)
    const report = Stats.report({ vendors, backlog, circuit }).pipe(Effect.provideService(Stats.Stats, collector))
    return handlers.handle("stats", () => report)
  })
)

/**
 * The problem the API answers for an access refusal. Shared by the middleware and the hot path.
 *
 * @category middleware
 */
export const accessProblem = (error: Access.Unauthorized | Access.RateLimited) =>
  error._tag === "Unauthorized"
    ? new Api.Unauthorized({ detail: error.message })
    : new Api.TooManyRequests({
        detail: error.message,
        limit: error.limit,
        window_seconds: error.windowSeconds,
        retry_after: error.retryAfterSeconds
      })

/**
 * Implements {@link Api.Authorization} over the `Access` service: the request's key is checked
 * and counted, the caller provided to the handler, and a keyed answer carries the `RateLimit`
 * headers.
 *
 * @category middleware
 */
export const authorization: Layer.Layer<Api.Authorization, never, Access.Access> = Layer.effect(
  Api.Authorization,
  Effect.gen(function* () {
    const access = yield* Access.Access
    return Api.Authorization.of((httpEffect) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        access.authorize(Access.credentialOf(request.headers)).pipe(
          Effect.mapError(accessProblem),
          Effect.flatMap(({ caller, quota }) => {
            const handled = Effect.provideService(httpEffect, Api.CurrentCaller, caller)
            return quota === undefined
              ? handled
              : Effect.map(handled, HttpServerResponse.setHeaders(Api.rateLimitHeaders(quota)))
          })
        )
      )
    )
  })
)

const issues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const key = typeof segment === "object" ? segment.key : segment
  return typeof key === "number" ? key : String(key)
}

/**
 * Answers a path parameter, query parameter or header that fails its schema with
 * {@link Api.InvalidRequest}, listing each failed check.
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
  const render = (problem: HttpServerRespondable.Respondable) =>
    Effect.map(HttpServerRespondable.toResponse(problem), HttpServerResponse.setHeaders(response.headers))
  switch (response.status) {
    case 404: {
      const routes = (method: string) => table.find(method, request.url) !== undefined
      // The router answers HEAD with the GET route.
      const allowed = methods.filter((method) => routes(method) || (method === "HEAD" && routes("GET")))
      if (allowed.length === 0) {
        return render(new Api.RouteNotFound({ detail: `No route for ${request.method} ${path}.` }))
      }
      return render(new Api.MethodNotAllowed({ detail: `${path} does not accept ${request.method}.`, allowed })).pipe(
        Effect.map(HttpServerResponse.setHeader("allow", allowed.join(", ")))
      )
    }
    case 413:
      return render(tooLarge(maxBodyBytes))
    case 500:
      return render(new Api.InternalError({ detail: "The server failed; the error is logged." }))
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
export const problems = (options: Options) => {
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

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/**
 * Every route: the API, `GET /openapi.json`, `GET /docs`, the dashboard at `GET /ui/`, and problem
 * answers for the rest.
 * Serve it with `HttpRouter.serve` (see `Server.ts`).
 *
 * @category layers
 */
export const layerWith = (options: Options) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(Api.Api, { openapiPath: "/openapi.json" }).pipe(
      Layer.provide(
        Layer.mergeAll(jobsHandlers(options), webhooksHandlers(options), systemHandlers(options), statsHandlers).pipe(
          Layer.provide([requestValidation, authorization])
        )
      )
    ),
    HttpApiScalar.layer(Api.Api, { path: "/docs" }),
    PrometheusMetrics.layerHttp({ path: "/metrics" }),
    Dashboard.layer,
    problems(options),
    options.corsOrigins === undefined || options.corsOrigins.length === 0
      ? Layer.empty
      : HttpRouter.cors({ allowedOrigins: options.corsOrigins, ...corsHeaders })
  )

/**
 * {@link layerWith} with the body limit from `MAX_BODY_BYTES`.
 *
 * @category layers
 */
export const layer = Layer.unwrap(Effect.map(maxBodyBytesConfig, (maxBodyBytes) => layerWith({ maxBodyBytes })))

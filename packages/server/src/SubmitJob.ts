/**
 * `POST /jobs`, described once for both transports: how the body is decoded into a JSON object,
 * how the job is submitted over the `JobService`, and which problem answers each refusal. The
 * HttpApi app (`JobRoutes.ts`) submits one request at a time, with or without an
 * `Idempotency-Key`; the batched transport (`BatchedTransport.ts`) submits the plain requests of
 * one turn of the event loop together (`JobService.submitMany`), each answered as if alone.
 *
 * The body is read by hand rather than by the endpoint's payload schema, to answer each status
 * exactly (415, 413, 400, 422) and to stay cheap.
 *
 * @since 0.1.0
 */
import { Api, Job, type JobService, type VendorRegistry } from "@vendorflow/core"
import { Effect, Result } from "effect"
import type { HttpServerRequest } from "effect/http"
import * as Problems from "./Problems.ts"
import * as RequestBody from "./RequestBody.ts"

/**
 * The endpoint in core's `Api`.
 *
 * @category description
 */
export const endpoint = Api.JobsGroup.endpoints.submit

/**
 * The endpoint's problems as the API declares them (for a transport that writes its own answers).
 *
 * @category description
 */
export const renderProblem = Problems.declaredBy(endpoint)

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const isJsonObject = (value: unknown): value is Job.JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const describeJson = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`

const emptyBody = () => new Api.MalformedJson({ detail: "The body is empty; send a JSON object." })

/**
 * The text of a body as a JSON object, or the problem that explains why not: 400 for an empty or
 * malformed body, 422 for JSON that is not an object, names a vendor that is not a string, or
 * nests too deep.
 *
 * @category decoding
 */
export const parseJsonObject = (
  text: string
): Result.Result<Job.JsonObject, Api.MalformedJson | Api.InvalidPayload> => {
  if (text.trim() === "") return Result.fail(emptyBody())
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

/**
 * A body's bytes as a JSON object (see {@link parseJsonObject}); bytes that are not UTF-8 are a 400.
 *
 * @category decoding
 */
export const decodeBody = (bytes: Uint8Array): Result.Result<Job.JsonObject, Api.MalformedJson | Api.InvalidPayload> =>
  Result.flatMap(RequestBody.decodeUtf8(bytes), parseJsonObject)

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

const hasBody = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.headers["transfer-encoding"] !== undefined ||
  (request.headers["content-length"] !== undefined && request.headers["content-length"] !== "0")

/**
 * Reads and decodes the body of any request to the endpoint: its content type must be JSON in
 * UTF-8 (415 otherwise), its size within the limit (413).
 *
 * @category decoding
 */
export const readBody = Effect.fnUntraced(function* (
  request: HttpServerRequest.HttpServerRequest,
  maxBodyBytes: number
) {
  const contentType = request.headers["content-type"]
  if (contentType === undefined) {
    return yield* hasBody(request)
      ? new Api.UnsupportedMediaType({ detail: "The request has no content type; send application/json." })
      : emptyBody()
  }
  const unsupported = contentTypeProblem(contentType)
  if (unsupported !== undefined) return yield* new Api.UnsupportedMediaType({ detail: unsupported })
  return yield* Effect.fromResult(decodeBody(yield* RequestBody.readBytes(request, maxBodyBytes)))
})

// ---------------------------------------------------------------------------------------------
// Handling
// ---------------------------------------------------------------------------------------------

/**
 * The problem the API answers for a submission the service refused.
 *
 * @category handling
 */
export const problemFor = (
  error: VendorRegistry.UnknownVendor | JobService.Backlogged | JobService.IdempotencyConflict
): Api.UnknownVendor | Api.ServiceUnavailable | Api.IdempotencyConflict => {
  switch (error._tag) {
    case "UnknownVendor":
      return new Api.UnknownVendor({ detail: error.message, vendor: error.vendor, known_vendors: error.known })
    case "Backlogged":
      return new Api.ServiceUnavailable({ detail: error.message, retry_after: Problems.retryAfterSeconds })
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
 * Submits one job, with or without an `Idempotency-Key`: `{ request_id }`, or the problem the API
 * answers.
 *
 * @category handling
 */
export const submitOne = (
  jobs: JobService.JobService["Service"],
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
      UnknownVendor: (error) => Effect.fail(problemFor(error)),
      Backlogged: (error) => Effect.fail(problemFor(error)),
      IdempotencyConflict: (error) => Effect.fail(problemFor(error)),
      JobStoreError: Problems.serviceUnavailable,
      JobQueueError: Problems.serviceUnavailable
    })
  )

/**
 * Submits plain jobs together (`JobService.submitMany`): each answer in its place is what
 * {@link submitOne} would answer; a store or queue that fails fails them all with its problem.
 *
 * @category handling
 */
export const submitMany = (jobs: JobService.JobService["Service"], submissions: ReadonlyArray<JobService.Submission>) =>
  jobs.submitMany(submissions).pipe(
    Effect.map((outcomes) =>
      outcomes.map((outcome) => Result.mapBoth(outcome, { onSuccess: submitted, onFailure: problemFor }))
    ),
    Effect.catchTags({ JobStoreError: Problems.serviceUnavailable, JobQueueError: Problems.serviceUnavailable })
  )

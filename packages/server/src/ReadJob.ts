/**
 * `GET /jobs/{id}`, described once for both transports: the jobs are read over the `JobService`
 * (`JobService.getMany`, which leaves out the payload the view does not show), each answered with its
 * view and HTTP caching headers, or the problem the API declares. The HttpApi app
 * (`JobRoutes.ts`) reads one at a time, the batched transport (`BatchedTransport.ts`) the reads of
 * one turn of the event loop together.
 *
 * @since 0.1.0
 */
import { Api, Job, JobService } from "@vendorflow/core"
import { Effect, Result } from "effect"
import { HttpServerResponse } from "effect/http"
import * as Problems from "./Problems.ts"

/**
 * The endpoint in core's `Api`.
 *
 * @category description
 */
export const endpoint = Api.JobsGroup.endpoints.get

/**
 * The endpoint's problems as the API declares them (for a transport that writes its own answers).
 *
 * @category description
 */
export const renderProblem = Problems.declaredBy(endpoint)

/**
 * One read: the job, its reader, and the validator the client already holds.
 *
 * @category models
 */
export interface Read extends JobService.Read {
  readonly ifNoneMatch: string | undefined
}

/**
 * How a job read back is answered: its view with status 200, or no body with 304; and the caching
 * headers.
 *
 * @category models
 */
export interface Answer {
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
 * @category handling
 */
export const answer = (job: Job.JobSummary, ifNoneMatch: string | undefined): Answer => {
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
 * Reads jobs together: each answer in its place, or its problem; a store that fails fails them
 * all with its problem.
 *
 * @category handling
 */
export const readMany = (jobs: JobService.JobService["Service"], reads: ReadonlyArray<Read>) =>
  jobs.getMany(reads).pipe(
    Effect.map((outcomes) =>
      outcomes.map((outcome, i) =>
        Result.mapBoth(outcome, {
          onSuccess: (job) => answer(job, reads[i]?.ifNoneMatch),
          onFailure: Problems.jobNotFound
        })
      )
    ),
    Effect.catchTag("JobStoreError", Problems.serviceUnavailable)
  )

/**
 * Reads one job, as {@link readMany} reads each.
 *
 * @category handling
 */
export const readOne = (jobs: JobService.JobService["Service"], read: Read) =>
  Effect.flatMap(readMany(jobs, [read]), ([outcome]) =>
    Effect.fromResult(outcome ?? Result.fail(Problems.jobNotFound(new JobService.JobNotFound({ id: read.id }))))
  )

/**
 * An {@link Answer} as an `HttpServerResponse`.
 *
 * @category handling
 */
export const toResponse = ({ headers, status, view }: Answer): HttpServerResponse.HttpServerResponse =>
  view === undefined
    ? HttpServerResponse.empty({ status, headers })
    : HttpServerResponse.jsonUnsafe(view, { status, headers })

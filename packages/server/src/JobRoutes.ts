/**
 * Core's `jobs` group served by the HttpApi app: `POST /jobs` (`SubmitJob.ts`) and
 * `GET /jobs/{id}` (`ReadJob.ts`) as their descriptions say, `GET /jobs?status=` (a page of jobs,
 * the dead letters among them) and `POST /jobs/{id}/retry`. The caller comes from the
 * `Authorization` middleware, which has checked the key before any handler reads the body.
 *
 * @since 0.1.0
 */
import { Api, JobService } from "@vendorflow/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import * as Problems from "./Problems.ts"
import * as ReadJob from "./ReadJob.ts"
import * as SubmitJob from "./SubmitJob.ts"

/**
 * The handlers of the `jobs` group, reading bodies up to `maxBodyBytes`.
 *
 * @category handlers
 */
export const handlers = (options: { readonly maxBodyBytes: number }) =>
  HttpApiBuilder.group(
    Api.Api,
    "jobs",
    Effect.fnUntraced(function* (handlers) {
      const jobs = yield* JobService.JobService
      return handlers
        .handleRaw("submit", ({ headers, query, request }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) =>
            SubmitJob.readBody(request, options.maxBodyBytes).pipe(
              Effect.flatMap((payload) =>
                SubmitJob.submitOne(jobs, {
                  payload,
                  vendor: query.vendor,
                  idempotencyKey: headers["idempotency-key"],
                  owner
                })
              )
            )
          )
        )
        .handleRaw("get", ({ params, request }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) =>
            ReadJob.readOne(jobs, { id: params.id, owner, ifNoneMatch: request.headers["if-none-match"] })
          ).pipe(Effect.map(ReadJob.toResponse))
        )
        .handle("list", ({ query }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) =>
            jobs.list({
              status: query.status,
              vendor: query.vendor,
              owner,
              limit: query.limit ?? 50,
              after: query.cursor === undefined ? undefined : Api.decodeCursor(query.cursor)
            })
          ).pipe(
            Effect.map((page): Api.JobList => ({
              jobs: page.jobs.map(Api.toJobView),
              ...(page.next === undefined ? {} : { next_cursor: Api.encodeCursor(page.next) })
            })),
            Effect.catchTag("JobStoreError", Problems.serviceUnavailable)
          )
        )
        .handle("retry", ({ params }) =>
          Effect.flatMap(Api.CurrentCaller, ({ owner }) => jobs.retry(params.id, owner)).pipe(
            Effect.map(Api.toJobView),
            Effect.catchTags({
              JobNotFound: (error) => Effect.fail(Problems.jobNotFound(error)),
              NotRetryable: (error) =>
                Effect.fail(
                  new Api.NotRetryable({ detail: error.message, job_id: error.id, job_status: error.status })
                ),
              JobStoreError: Problems.serviceUnavailable,
              JobQueueError: Problems.serviceUnavailable
            })
          )
        )
    })
  )

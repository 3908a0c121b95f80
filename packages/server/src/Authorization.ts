/**
 * Who may call the jobs and stats endpoints (`Access`), decided once for both transports: the
 * request's key is checked and counted before anything else of the request is read, a refusal is
 * answered with the API's 401 or 429, and a keyed answer carries the `RateLimit` headers.
 *
 * Offers {@link layer}, core's `Api.Authorization` middleware for the HttpApi app; the batched
 * transport (`BatchedTransport.ts`) calls {@link check}, {@link problemFor} and
 * {@link headersFor} itself, to go on without a fiber when the check is decided at once.
 *
 * @since 0.1.0
 */
import { Access, Api } from "@vendorflow/core"
import { Effect, Layer } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"

/**
 * What a check grants: the caller, and where its key stands against its rate limit.
 *
 * @category models
 */
export type Grant = Effect.Success<ReturnType<Access.Access["Service"]["authorize"]>>

/**
 * Checks and counts the key that `headers` carry.
 *
 * @category checking
 */
export const check = (
  access: Access.Access["Service"],
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
): Effect.Effect<Grant, Access.Unauthorized | Access.RateLimited> => access.authorize(Access.credentialOf(headers))

/**
 * The problem the API answers for a refusal.
 *
 * @category checking
 */
export const problemFor = (error: Access.Unauthorized | Access.RateLimited): Api.Unauthorized | Api.TooManyRequests =>
  error._tag === "Unauthorized"
    ? new Api.Unauthorized({ detail: error.message })
    : new Api.TooManyRequests({
        detail: error.message,
        limit: error.limit,
        window_seconds: error.windowSeconds,
        retry_after: error.retryAfterSeconds
      })

const noHeaders: Readonly<Record<string, string>> = {}

/**
 * The headers every answer to a granted request carries: the `RateLimit` headers of a keyed call,
 * none when keys are off or the key has no limit.
 *
 * @category checking
 */
export const headersFor = (grant: Grant): Readonly<Record<string, string>> =>
  grant.quota === undefined ? noHeaders : Api.rateLimitHeaders(grant.quota)

/**
 * Implements `Api.Authorization` over the `Access` service: the caller is provided to the handler,
 * and the answer carries {@link headersFor}.
 *
 * @category layers
 */
export const layer: Layer.Layer<Api.Authorization, never, Access.Access> = Layer.effect(
  Api.Authorization,
  Effect.gen(function* () {
    const access = yield* Access.Access
    return Api.Authorization.of((httpEffect) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        check(access, request.headers).pipe(
          Effect.mapError(problemFor),
          Effect.flatMap((grant) => {
            const handled = Effect.provideService(httpEffect, Api.CurrentCaller, grant.caller)
            return grant.quota === undefined
              ? handled
              : Effect.map(handled, HttpServerResponse.setHeaders(headersFor(grant)))
          })
        )
      )
    )
  })
)

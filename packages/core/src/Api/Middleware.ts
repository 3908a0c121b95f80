/**
 * The middleware the API's groups declare and the server provides: request validation, and the
 * API key check with the caller it finds. Re-exported by `Api`.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import { HttpApiMiddleware } from "effect/http-api"
import type * as Access from "../Access.ts"
import { InvalidRequest, TooManyRequestsWithHeaders, UnauthorizedWithChallenge } from "./Problems.ts"

/**
 * Turns request validation failures (params, query, headers) into {@link InvalidRequest}.
 * Declared on the groups whose endpoints take parameters; the server provides it.
 *
 * @category middleware
 */
export class RequestValidation extends HttpApiMiddleware.Service<RequestValidation>()(
  "@vendorflow/core/Api/RequestValidation",
  { error: InvalidRequest }
) {}

/**
 * The caller of a request, as {@link Authorization} found it (`Access`).
 *
 * @category middleware
 */
export class CurrentCaller extends Context.Service<CurrentCaller, Access.Caller>()(
  "@vendorflow/core/Api/CurrentCaller"
) {}

/**
 * Checks the request's API key and counts it against the key's rate limit (`Access`); provides
 * {@link CurrentCaller}. Declared on the groups a client calls (jobs, stats); webhooks and the
 * system endpoints need no key. The server provides it.
 *
 * @category middleware
 */
export class Authorization extends HttpApiMiddleware.Service<Authorization, { provides: CurrentCaller }>()(
  "@vendorflow/core/Api/Authorization",
  { error: [UnauthorizedWithChallenge, TooManyRequestsWithHeaders] }
) {}

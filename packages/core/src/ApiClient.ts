/**
 * A typed client for the vendorflow HTTP API, derived from {@link Api}: every endpoint is a
 * method whose arguments, answer and problems are typed.
 *
 * It needs an `HttpClient` from the caller: `FetchHttpClient.layer` from `effect/http` (Node's
 * `fetch`, nothing to install), or `NodeHttpClient.layerUndici` from `@effect/platform-node`.
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const client = yield* ApiClient.make("http://127.0.0.1:8000", { apiKey: "s3cr3t" })
 *   const { request_id } = yield* client.jobs.submit({ payload: { company: "Acme" }, query: {}, headers: {} })
 *   return yield* client.jobs.get({ params: { id: request_id } })
 * })
 * Effect.runPromise(program.pipe(Effect.provide(FetchHttpClient.layer)))
 * ```
 *
 * @since 0.1.0
 */
import type { Effect, Redacted } from "effect"
import { type HttpClient, HttpClient as Client_, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { Api } from "./Api.ts"

/**
 * The client's type: `client.jobs.submit`, `client.jobs.get`, `client.webhooks.receive`,
 * `client.system.health`.
 *
 * @category models
 */
export type Client = HttpApiClient.ForApi<typeof Api>

/**
 * How the client calls the server.
 *
 * @category models
 */
export interface Options {
  /** The API key, sent as `Authorization: Bearer <key>` (when the server has `API_KEYS`). */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
}

/**
 * A client for the server at `baseUrl` (e.g. `http://127.0.0.1:8000`).
 *
 * @category constructors
 */
export const make = (
  baseUrl: string | URL,
  options: Options = {}
): Effect.Effect<Client, never, HttpClient.HttpClient> => {
  const { apiKey } = options
  return HttpApiClient.make(Api, {
    baseUrl,
    ...(apiKey === undefined ? {} : { transformClient: Client_.mapRequest(HttpClientRequest.bearerToken(apiKey)) })
  })
}

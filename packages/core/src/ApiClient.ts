/**
 * A typed client for the vendorflow HTTP API, derived from {@link Api}: every endpoint is a
 * method whose arguments, answer and problems are typed.
 *
 * It needs an `HttpClient` from the caller (e.g. `FetchHttpClient.layer`, or
 * `NodeHttpClient.layerUndici` from `@effect/platform-node`).
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { HttpClient } from "effect/http"
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
 * A client for the server at `baseUrl` (e.g. `http://127.0.0.1:8000`).
 *
 * @category constructors
 */
export const make = (baseUrl: string | URL): Effect.Effect<Client, never, HttpClient.HttpClient> =>
  HttpApiClient.make(Api, { baseUrl })

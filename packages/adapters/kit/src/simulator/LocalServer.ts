/**
 * The plumbing every local test vendor shares: serving an `HttpServerRequest` handler on
 * `node:http` for the life of a scope, in-memory records that tests read and clear (and the routes
 * that show them over HTTP), and random latencies (and their text form, `"100-500"`).
 *
 * `StubServer`, `VendorSimulator` and the reference mock vendors are built on it.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { VendorDefinition } from "@vendorflow/core"
import { Effect, Random, Schema, type Scope } from "effect"
import { HttpRouter, type HttpServerError, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { NetAddress } from "effect/net"

/**
 * The host a local server binds when none is given: loopback only.
 *
 * @category constants
 */
export const defaultHost = "127.0.0.1"

/**
 * Where a local server listens.
 *
 * @category models
 */
export interface Address {
  /** `http://host:port`, no trailing slash. */
  readonly url: string
  readonly port: number
}

/**
 * Serves `handler` on `node:http` for the life of the scope and tells where; port 0 (the default)
 * picks a free one.
 *
 * @category constructors
 */
export const listen = Effect.fnUntraced(function* <E>(
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, HttpServerRequest.HttpServerRequest | Scope.Scope>,
  options: { readonly host?: string | undefined; readonly port?: number | undefined } = {}
): Effect.fn.Return<Address, HttpServerError.ServeError, Scope.Scope> {
  const server = yield* NodeHttpServer.make(() => createServer(), {
    host: options.host ?? defaultHost,
    port: options.port ?? 0,
    // Answers take at most seconds, so a short drain is enough and tests end fast.
    gracefulShutdownTimeout: "2 seconds"
  })
  yield* server.serve(handler)
  const address = server.address
  // Always an inet address: we listen on a host and port, never on a unix socket.
  return NetAddress.isInetAddress(address)
    ? { url: NetAddress.formatUrlUnsafe(address).replace(/\/$/, ""), port: address.port }
    : { url: NetAddress.formatSocketAddress(address), port: 0 }
})

/**
 * An in-memory, append-only record (arrivals, callbacks) that tests read and clear.
 *
 * @category records
 */
export interface Recorder<A> {
  readonly add: (entry: A) => Effect.Effect<void>
  readonly all: Effect.Effect<ReadonlyArray<A>>
  readonly clear: Effect.Effect<void>
}

/**
 * An empty {@link Recorder}.
 *
 * @category records
 */
export const makeRecorder = <A>(): Recorder<A> => {
  let entries: Array<A> = []
  return {
    add: (entry) => Effect.sync(() => void entries.push(entry)),
    all: Effect.sync(() => entries.slice()),
    clear: Effect.sync(() => {
      entries = []
    })
  }
}

/**
 * `GET <path>` answering a recorder's entries as a JSON array, and `DELETE <path>` clearing it.
 *
 * @category records
 */
export const recorderRoutes = <A>(
  path: `/${string}`,
  recorder: Recorder<A>,
  /** What each entry looks like over HTTP; default as it is. */
  show: (entry: A) => unknown = (entry) => entry
) =>
  [
    HttpRouter.route(
      "GET",
      path,
      Effect.map(recorder.all, (entries) => HttpServerResponse.jsonUnsafe(entries.map(show)))
    ),
    HttpRouter.route("DELETE", path, Effect.as(recorder.clear, HttpServerResponse.empty({ status: 204 })))
  ] as const

/**
 * A range of milliseconds; each use draws uniformly from `[min, max]`.
 *
 * @category timing
 */
export interface MillisRange {
  readonly min: number
  readonly max: number
}

/**
 * A uniform draw from `range`, in whole milliseconds.
 *
 * @category timing
 */
export const drawMillis = (range: MillisRange): Effect.Effect<number> => Random.nextIntBetween(range.min, range.max)

/**
 * Reads `"100-500"` (a range) or `"250"` (a fixed value) as milliseconds.
 *
 * @category timing
 */
export const parseMillisRange = (text: string): MillisRange | undefined => {
  const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(text)
  if (match === null) return undefined
  const min = Number(match[1])
  const max = match[2] === undefined ? min : Number(match[2])
  return max < min ? undefined : { min, max }
}

/**
 * A {@link MillisRange} decoded from its env form (`"100-500"` or `"0"`), for `Config.schema`.
 *
 * @category timing
 */
export const MillisRangeFromString: Schema.Codec<MillisRange, string> = VendorDefinition.fromEnvString({
  type: Schema.Struct({ min: Schema.Number, max: Schema.Number }),
  parse: parseMillisRange,
  format: (range) => (range.min === range.max ? `${range.min}` : `${range.min}-${range.max}`),
  expected: `milliseconds like "100-500" or "0"`
})

/**
 * What the reference vendors share on top of the kit's `VendorSimulator`, which does everything a
 * vendor does or does wrong (its rate limit, outages, scripted faults, callbacks, the records of
 * what arrived): their wire shapes (the `POST /process` body, `{ success: false, error }` answers,
 * fake answer data with stray whitespace for the cleaner), their settings from env, and running as
 * a process. Routes: `POST /process`, `GET /health`, `GET|DELETE /arrivals`.
 *
 * The sync and async mock servers are thin layers over {@link serve}; a third mock vendor would be too.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { FaultScript, LocalServer, RateLimit, VendorSimulator } from "@vendorflow/adapter-kit/simulator"
import { Port, Shutdown } from "@vendorflow/core"
import { Clock, Config, type Context, Effect, Layer, Option, Random, Schema, type Scope } from "effect"
import { HttpRouter, type HttpServerError, HttpServerResponse } from "effect/http"

/**
 * A range of milliseconds; each use draws uniformly from `[min, max]`.
 *
 * @category models
 */
export type MillisRange = LocalServer.MillisRange

/**
 * The fields every `POST /process` body has.
 *
 * @category requests
 */
export const ProcessFields = {
  job_id: Schema.NonEmptyString,
  payload: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
}

/**
 * A JSON error answer: `{ success: false, error: { code, message } }`.
 *
 * @category responses
 */
export const errorReply = (error: VendorSimulator.ErrorAnswer): VendorSimulator.Reply => ({
  status: error.status,
  json: { success: false, error: { code: error.code, message: error.message } },
  headers: error.headers
})

const people = [
  { first: "Jane", last: "Doe" },
  { first: "John", last: "Smith" },
  { first: "Ana", last: "García" },
  { first: "Wei", last: "Chen" },
  { first: "Priya", last: "Patel" },
  { first: "Olu", last: "Adeyemi" }
] as const

// Leading and trailing junk a sloppy vendor leaves in its strings; the cleaner must trim it.
const paddings = ["  ", " ", "\n", "\t", " \n"] as const

const pick = <A>(items: ReadonlyArray<A>): Effect.Effect<A> =>
  Effect.map(Random.nextIntBetween(0, items.length - 1), (index) => items[index] as A)

const padded = (text: string): Effect.Effect<string> =>
  Effect.map(Effect.all([pick(paddings), pick(["", ...paddings])]), ([before, after]) => `${before}${text}${after}`)

/**
 * A vendor's answer data. `user_info` (PII the cleaner must remove, padded with stray whitespace)
 * appears with probability `userInfoProbability`.
 *
 * @category data
 */
export const makeData = Effect.fnUntraced(function* (options: {
  readonly vendorType: "sync" | "async"
  readonly jobId: string
  readonly payload?: Readonly<Record<string, Schema.Json>> | undefined
  readonly processingTimeMs: number
  readonly userInfoProbability: number
}) {
  const now = yield* Clock.currentTimeMillis
  const result = {
    status: "completed",
    data_points: yield* Random.nextIntBetween(1, 1000),
    confidence_score: Math.round((yield* Random.next) * 1000) / 1000,
    processing_time_ms: Math.round(options.processingTimeMs),
    metadata: {
      source: `mock-${options.vendorType}-vendor`,
      version: "1.0.0",
      job_id: options.jobId,
      region: yield* pick(["us-east-1", "eu-west-1", "ap-southeast-2"]),
      payload_keys: Object.keys(options.payload ?? {})
    }
  }
  const data: Record<string, Schema.Json> = {
    vendor_type: options.vendorType,
    processed_at: new Date(now).toISOString(),
    result
  }
  if ((yield* Random.next) < options.userInfoProbability) {
    const person = yield* pick(people)
    const number = yield* Random.nextIntBetween(100, 9999)
    data.user_info = {
      name: yield* padded(`${person.first} ${person.last}`),
      email: yield* padded(`${person.first}.${person.last}${number}@example.com`.toLowerCase()),
      phone: yield* padded(`+1-555-${String(number).padStart(4, "0")}`)
    }
  }
  return data
})

/**
 * How often an answer carries `user_info` by default.
 *
 * @category constants
 */
export const defaultUserInfoProbability = 0.3

/**
 * A vendor at work: waits a draw from `within`, then makes the job's data (see {@link makeData}),
 * reporting the wait as its processing time.
 *
 * @category data
 */
export const work = Effect.fnUntraced(function* (options: {
  readonly vendorType: "sync" | "async"
  readonly within: MillisRange
  readonly body: { readonly job_id: string; readonly payload?: Readonly<Record<string, Schema.Json>> | undefined }
  readonly userInfoProbability?: number | undefined
}) {
  const millis = yield* LocalServer.drawMillis(options.within)
  yield* Effect.sleep(millis)
  return yield* makeData({
    vendorType: options.vendorType,
    jobId: options.body.job_id,
    payload: options.body.payload,
    processingTimeMs: millis,
    userInfoProbability: options.userInfoProbability ?? defaultUserInfoProbability
  })
})

/**
 * What every mock vendor server can be told.
 *
 * @category models
 */
export interface ServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** 0 picks a free port; default 0. */
  readonly port?: number | undefined
  /** Default none. */
  readonly rateLimit?: RateLimit.RateLimit | undefined
  /** Its cap on calls in flight; default none. */
  readonly maxInFlight?: VendorSimulator.MaxInFlight | undefined
  /** How often an answer carries `user_info`; default 0.3. */
  readonly userInfoProbability?: number | undefined
  /** Scripted faults for `POST /process` (see `FaultScript`); default none. */
  readonly faults?: FaultScript.Plan<FaultScript.AnswerFault> | undefined
  /** Vendor-wide 5xx windows (see `FaultScript`); default none. */
  readonly outages?: ReadonlyArray<FaultScript.Outage> | undefined
}

/**
 * Where a mock vendor listens and what it has seen.
 *
 * @category models
 */
export interface Running {
  /** `http://host:port`, no trailing slash. */
  readonly url: string
  readonly port: number
  readonly arrivals: Effect.Effect<ReadonlyArray<VendorSimulator.Arrival>>
  readonly clearArrivals: Effect.Effect<void>
}

/**
 * A mock vendor's settings from env: `HOST` (default 127.0.0.1), `PORT` (default `defaultPort`; 0
 * picks a free port), `<prefix>_<timingName>` (a {@link MillisRange}), `<prefix>_RATE_LIMIT` (a
 * `RateLimit`, default none; hidden unless `<prefix>_RATE_LIMIT_HEADERS=true` advertises it on every
 * answer; `<prefix>_RATE_LIMIT_LATER="20/1s@30s"` lowers it 30 s after the first call),
 * `<prefix>_MAX_IN_FLIGHT` (a cap on calls in flight, answered `<prefix>_MAX_IN_FLIGHT_STATUS`, 429
 * or 503, default 429), `<prefix>_USER_INFO_PROBABILITY`, `<prefix>_FAULTS` (a
 * `FaultScript` answer plan, default none) and `<prefix>_OUTAGES` (`FaultScript` outages, default none).
 *
 * @category config
 */
export const serverConfig = (options: {
  readonly prefix: string
  readonly defaultPort: number
  readonly timingName: string
  readonly defaultTiming: MillisRange
}) =>
  Config.all({
    host: Config.String("HOST").pipe(Config.withDefault(LocalServer.defaultHost)),
    port: Port.config("PORT", options.defaultPort),
    timing: Config.schema(LocalServer.MillisRangeFromString, `${options.prefix}_${options.timingName}`).pipe(
      Config.withDefault(options.defaultTiming)
    ),
    rateLimit: rateLimitConfig(options.prefix),
    maxInFlight: maxInFlightConfig(options.prefix),
    userInfoProbability: Config.schema(
      Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
      `${options.prefix}_USER_INFO_PROBABILITY`
    ).pipe(Config.withDefault(defaultUserInfoProbability)),
    faults: optional(FaultScript.AnswerPlanFromString, `${options.prefix}_FAULTS`),
    outages: optional(FaultScript.OutagesFromString, `${options.prefix}_OUTAGES`)
  })

/**
 * An optional setting from the env variable `name`, read with `schema`.
 *
 * @category config
 */
export const optional = <A>(schema: Schema.Codec<A, string>, name: string): Config.Config<A | undefined> =>
  Config.option(Config.schema(schema, name)).pipe(Config.map(Option.getOrUndefined))

/**
 * An optional `RateLimit` from `<prefix>_RATE_LIMIT`, `<prefix>_RATE_LIMIT_HEADERS` and
 * `<prefix>_RATE_LIMIT_LATER`.
 *
 * @category config
 */
export const rateLimitConfig = (prefix: string): Config.Config<RateLimit.RateLimit | undefined> =>
  Config.all({
    limit: optional(RateLimit.FromString, `${prefix}_RATE_LIMIT`),
    advertise: Config.Boolean(`${prefix}_RATE_LIMIT_HEADERS`).pipe(Config.withDefault(false)),
    later: optional(RateLimit.LaterFromString, `${prefix}_RATE_LIMIT_LATER`)
  }).pipe(
    Config.map(({ advertise, later, limit }) =>
      limit === undefined ? undefined : { ...limit, ...(advertise ? { advertise } : {}), ...(later ? { later } : {}) }
    )
  )

/**
 * An optional cap on calls in flight from `<prefix>_MAX_IN_FLIGHT` and `<prefix>_MAX_IN_FLIGHT_STATUS`.
 *
 * @category config
 */
export const maxInFlightConfig = (prefix: string): Config.Config<VendorSimulator.MaxInFlight | undefined> =>
  Config.all({
    limit: optional(Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThan(0)), `${prefix}_MAX_IN_FLIGHT`),
    status: Config.Literals([429, 503], `${prefix}_MAX_IN_FLIGHT_STATUS`).pipe(Config.withDefault(429 as const))
  }).pipe(Config.map(({ limit, status }) => (limit === undefined ? undefined : { limit, status })))

// The job a call is for: its body's `job_id`, if it has one.
const jobIdOf = (request: Parameters<NonNullable<VendorSimulator.Options["jobId"]>>[0]): string | undefined => {
  const json = VendorSimulator.jsonBody(request)
  const id = typeof json === "object" && json !== null ? (json as { readonly job_id?: unknown }).job_id : undefined
  return typeof id === "string" && id !== "" ? id : undefined
}

/**
 * Starts a mock vendor for the life of the scope: a `VendorSimulator` answering `POST /process`
 * (400 when the body is not JSON or fails `body`, otherwise whatever `process` answers) after its
 * rate limit, outages and scripted faults have had their say, and showing what arrived.
 *
 * @category constructors
 */
export const serve = Effect.fnUntraced(function* <B>(
  options: ServerOptions &
    Pick<VendorSimulator.Options, "callbackFaults" | "secret" | "callbackRetry" | "callbackTimeout" | "signOnce"> & {
      readonly name: string
      readonly body: Schema.Decoder<B>
      readonly process: (body: B) => Effect.Effect<VendorSimulator.Reply>
      /** Async vendors: the callback an accepted job leads to. */
      readonly callback?: ((body: B) => Effect.Effect<VendorSimulator.Callback>) | undefined
      readonly routes?: VendorSimulator.Options["routes"]
    }
): Effect.fn.Return<VendorSimulator.Simulator, HttpServerError.ServeError, Scope.Scope> {
  const decodeBody = Schema.decodeUnknownResult(options.body)
  const decode = (request: Parameters<typeof jobIdOf>[0]) => {
    const json = VendorSimulator.jsonBody(request)
    return json === undefined ? undefined : decodeBody(json)
  }
  const { callback } = options
  return yield* VendorSimulator.make({
    name: options.name,
    host: options.host,
    port: options.port,
    rateLimit: options.rateLimit,
    maxInFlight: options.maxInFlight,
    outages: options.outages,
    faults: options.faults,
    callbackFaults: options.callbackFaults,
    secret: options.secret,
    callbackRetry: options.callbackRetry,
    callbackTimeout: options.callbackTimeout,
    signOnce: options.signOnce,
    keepRequests: false,
    endpoint: { method: "POST", path: "/process" },
    jobId: jobIdOf,
    errorReply,
    respond: (request) => {
      const body = decode(request)
      if (body === undefined)
        return errorReply({ status: 400, code: "invalid_json", message: "the body is not valid JSON" })
      if (body._tag === "Failure") {
        return errorReply({ status: 400, code: "invalid_request", message: body.failure.message })
      }
      return options.process(body.success)
    },
    callback:
      callback === undefined
        ? undefined
        : (request) => {
            const body = decode(request)
            return body?._tag === "Success" ? callback(body.success) : undefined
          },
    routes: (records) => [
      HttpRouter.route("GET", "/health", HttpServerResponse.jsonUnsafe({ status: "ok" })),
      ...LocalServer.recorderRoutes("/arrivals", records.arrivals),
      ...(options.routes?.(records) ?? [])
    ]
  })
})

/**
 * Runs a mock vendor as the whole process: logs its URL once it listens and stops cleanly on
 * SIGINT/SIGTERM (closing its scope, which interrupts whatever it still has pending).
 *
 * @category running
 */
export const runMain = <I, E>(options: {
  readonly name: string
  readonly server: Context.Key<I, Running>
  readonly layer: Layer.Layer<I, E>
}): void =>
  NodeRuntime.runMain(
    Layer.launch(
      Layer.effectDiscard(
        Effect.flatMap(options.server, (server) => Effect.log(`${options.name} listening on ${server.url}`))
      ).pipe(Layer.provide(options.layer))
    ),
    { teardown: Shutdown.teardown }
  )

/**
 * What the reference vendors share: a real HTTP server with its own rate limit, an arrivals record,
 * `GET /health`, `GET|DELETE /arrivals`, the `POST /process` pipeline (read, rate-limit, scripted
 * faults, validate, answer, record), fake answer data with stray whitespace for the cleaner, and the env formats for
 * latencies (`"100-500"`) and rate limits (`"5/1s"`). Serving and recording come from the kit's
 * `LocalServer`, the env formats from `VendorDefinition`.
 *
 * The sync and async mock servers are thin layers over {@link serve}; a third mock vendor would be too.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { LocalServer } from "@vendorflow/adapter-kit/simulator"
import { Port, Shutdown, VendorDefinition } from "@vendorflow/core"
import { Clock, Config, type Context, Duration, Effect, Layer, Option, Random, Schema, type Scope } from "effect"
import {
  HttpClient,
  HttpClientResponse,
  HttpRouter,
  type HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import * as FaultScript from "./FaultScript.ts"

/**
 * A range of milliseconds; each use draws uniformly from `[min, max]`.
 *
 * @category models
 */
export type MillisRange = LocalServer.MillisRange

/**
 * Reads `"100-500"` (a range) or `"250"` (a fixed value) as milliseconds.
 *
 * @category parsing
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
 * @category parsing
 */
export const MillisRangeFromString: Schema.Codec<MillisRange, string> = VendorDefinition.fromEnvString({
  type: Schema.Struct({ min: Schema.Number, max: Schema.Number }),
  parse: parseMillisRange,
  format: (range) => (range.min === range.max ? `${range.min}` : `${range.min}-${range.max}`),
  expected: `milliseconds like "100-500" or "0"`
})

/**
 * A server-side rate limit: at most `limit` admitted requests in any `windowMs` (sliding window).
 *
 * @category models
 */
export interface RateLimit {
  readonly limit: number
  readonly windowMs: number
}

/**
 * Reads `"5/1s"`, `"5/s"`, `"100/500ms"`, `"60/1m"` or a bare `"5"` (per second) as a {@link RateLimit}
 * (the format of `VendorDefinition.parseRateLimit`, with the window in milliseconds).
 *
 * @category parsing
 */
export const parseRateLimit = (text: string): RateLimit | undefined => {
  const limit = VendorDefinition.parseRateLimit(text)
  return limit === undefined
    ? undefined
    : { limit: limit.limit, windowMs: Duration.toMillis(Duration.fromInputUnsafe(limit.window)) }
}

/**
 * A {@link RateLimit} decoded from its env form (`"5/1s"` or `"5"`), for `Config.schema`.
 *
 * @category parsing
 */
export const RateLimitFromString: Schema.Codec<RateLimit, string> = VendorDefinition.fromEnvString({
  type: Schema.Struct({ limit: Schema.Number, windowMs: Schema.Number }),
  parse: parseRateLimit,
  format: (limit) => `${limit.limit}/${limit.windowMs}ms`,
  expected: `a rate limit like "5/1s" or "5"`
})

/**
 * The verdict of a {@link RateWindow} for one request.
 *
 * @category rate limiting
 */
export type Admission = { readonly _tag: "Admitted" } | { readonly _tag: "Limited"; readonly retryAfterSeconds: number }

/**
 * A sliding-window log: a request is admitted when fewer than `limit` requests were admitted in the
 * last `windowMs`. Sliding rather than fixed so that a client keeping to the limit over any window
 * never sees a 429, and one bursting across a fixed-window boundary does; refused requests are not
 * counted, so a client that keeps knocking still gets through once the window moves on.
 *
 * @category rate limiting
 */
export interface RateWindow {
  /** The verdict for a request at `now` (ms). */
  readonly admitAt: (now: number) => Admission
  /** The verdict for a request now, by the clock. */
  readonly take: Effect.Effect<Admission>
}

/**
 * A {@link RateWindow} for `limit`; with no limit every request is admitted.
 *
 * @category rate limiting
 */
export const makeRateWindow = (limit: RateLimit | undefined): RateWindow => {
  if (limit === undefined) return { admitAt: () => ({ _tag: "Admitted" }), take: Effect.succeed({ _tag: "Admitted" }) }
  // Admission times, oldest first; never longer than `limit`.
  const admitted: Array<number> = []
  const admitAt = (now: number): Admission => {
    while (admitted.length > 0 && (admitted[0] ?? now) <= now - limit.windowMs) admitted.shift()
    if (admitted.length < limit.limit) {
      admitted.push(now)
      return { _tag: "Admitted" }
    }
    const freeAt = (admitted[0] ?? now) + limit.windowMs
    // Whole seconds, as HTTP has it, rounded up so a client that waits that long is admitted.
    return { _tag: "Limited", retryAfterSeconds: Math.max(1, Math.ceil((freeAt - now) / 1000)) }
  }
  return { admitAt, take: Effect.map(Clock.currentTimeMillis, admitAt) }
}

/**
 * An in-memory, append-only record (arrivals, callbacks) that tests read and clear.
 *
 * @category records
 */
export type Recorder<A> = LocalServer.Recorder<A>

/**
 * An empty {@link Recorder}.
 *
 * @category records
 */
export const makeRecorder = LocalServer.makeRecorder

/**
 * `GET <path>` answering a recorder's entries as a JSON array, and `DELETE <path>` clearing it.
 *
 * @category records
 */
export const recorderRoutes = LocalServer.recorderRoutes

/**
 * One `POST /process` as the vendor saw it. `status` is what it answered, or 499 when the client
 * hung up first; `fault`, the scripted fault it got (see `FaultScript`), if any. Records are kept
 * in the order answered; `at` is when the request arrived.
 *
 * @category records
 */
export const Arrival = Schema.Struct({
  at: Schema.Number,
  jobId: Schema.NullOr(Schema.String),
  idempotencyKey: Schema.NullOr(Schema.String),
  status: Schema.Int,
  fault: Schema.optionalKey(Schema.String)
})

/** @category records */
export type Arrival = typeof Arrival.Type

/**
 * Reads a running mock vendor's arrivals over HTTP, for tests that started it in another process.
 *
 * @category records
 */
export const readArrivals = (baseUrl: string) =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    client
      .get(`${baseUrl}/arrivals`)
      .pipe(
        Effect.flatMap(HttpClientResponse.filterStatusOk),
        Effect.flatMap(HttpClientResponse.schemaBodyJson(Schema.Array(Arrival)))
      )
  )

/**
 * The fields every `POST /process` body has.
 *
 * @category requests
 */
export const ProcessFields = {
  job_id: Schema.NonEmptyString,
  payload: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
}

const parseJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

const identify = Schema.decodeUnknownOption(Schema.Struct({ job_id: Schema.NonEmptyString }))

/**
 * A JSON error answer: `{ success: false, error: { code, message } }`.
 *
 * @category responses
 */
export const errorResponse = (status: number, code: string, message: string, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(
    { success: false, error: { code, message } },
    headers === undefined ? { status } : { status, headers }
  )

/**
 * A uniform draw from `range`, in whole milliseconds.
 *
 * @category timing
 */
export const drawMillis = LocalServer.drawMillis

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
  const millis = yield* drawMillis(options.within)
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
  readonly rateLimit?: RateLimit | undefined
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
  readonly arrivals: Effect.Effect<ReadonlyArray<Arrival>>
  readonly clearArrivals: Effect.Effect<void>
}

/**
 * The host a mock vendor binds when none is given: loopback only.
 *
 * @category constants
 */
export const defaultHost = LocalServer.defaultHost

/**
 * A mock vendor's settings from env: `HOST` (default 127.0.0.1), `PORT` (default `defaultPort`; 0
 * picks a free port), `<prefix>_<timingName>` (a {@link MillisRange}), `<prefix>_RATE_LIMIT` (a
 * {@link RateLimit}, default none), `<prefix>_USER_INFO_PROBABILITY`, `<prefix>_FAULTS` (a
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
    host: Config.String("HOST").pipe(Config.withDefault(defaultHost)),
    port: Port.config("PORT", options.defaultPort),
    timing: Config.schema(MillisRangeFromString, `${options.prefix}_${options.timingName}`).pipe(
      Config.withDefault(options.defaultTiming)
    ),
    rateLimit: rateLimitConfig(`${options.prefix}_RATE_LIMIT`),
    userInfoProbability: Config.schema(
      Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
      `${options.prefix}_USER_INFO_PROBABILITY`
    ).pipe(Config.withDefault(defaultUserInfoProbability)),
    faults: Config.option(Config.schema(FaultScript.AnswerPlanFromString, `${options.prefix}_FAULTS`)).pipe(
      Config.map(Option.getOrUndefined)
    ),
    outages: Config.option(Config.schema(FaultScript.OutagesFromString, `${options.prefix}_OUTAGES`)).pipe(
      Config.map(Option.getOrUndefined)
    )
  })

/**
 * An optional {@link RateLimit} from the env variable `name`.
 *
 * @category config
 */
export const rateLimitConfig = (name: string): Config.Config<RateLimit | undefined> =>
  Config.option(Config.schema(RateLimitFromString, name)).pipe(Config.map(Option.getOrUndefined))

/**
 * Starts a mock vendor for the life of the scope. `POST /process` reads the body, takes a slot of
 * the rate limit (every arrival counts, malformed or not, as at a real vendor's gateway), answers
 * 429 with `Retry-After` when over it, then the 5xx of an outage in force, else the job's next
 * scripted fault if `faults` has one, 400
 * when the body is not JSON or fails `body`, and otherwise whatever `process` answers; each arrival
 * is recorded with the status (and fault) it got.
 *
 * @category constructors
 */
export const serve = Effect.fnUntraced(function* <B>(options: {
  readonly name: string
  readonly host?: string | undefined
  /** 0 picks a free port. */
  readonly port?: number | undefined
  readonly rateLimit?: RateLimit | undefined
  readonly faults?: FaultScript.Plan<FaultScript.AnswerFault> | undefined
  readonly outages?: ReadonlyArray<FaultScript.Outage> | undefined
  readonly body: Schema.Decoder<B>
  readonly process: (body: B) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  readonly routes?: ReadonlyArray<HttpRouter.Route<never, never>> | undefined
}): Effect.fn.Return<Running, HttpServerError.ServeError, Scope.Scope> {
  const arrivals = makeRecorder<Arrival>()
  const window = makeRateWindow(options.rateLimit)
  const dealer = FaultScript.makeDealer(options.faults)
  let firstArrival: number | undefined
  const decodeBody = Schema.decodeUnknownEffect(options.body)

  const processRoute = HttpRouter.route("POST", "/process", (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function* () {
      const text = yield* Effect.option(request.text)
      // When the call counts, for the rate window and the arrivals record alike: once its body is
      // in (reading it takes a busy process a variable while, which would skew the record against
      // the window by as much).
      const at = yield* Clock.currentTimeMillis
      const json = text._tag === "Some" ? parseJson(text.value) : text
      const identified = json._tag === "Some" ? identify(json.value) : json
      const jobId = identified._tag === "Some" ? identified.value.job_id : null
      let arrival: Omit<Arrival, "status"> = {
        at,
        jobId,
        idempotencyKey: request.headers["idempotency-key"] ?? null
      }
      const answer = Effect.gen(function* () {
        const admission = window.admitAt(at)
        if (admission._tag === "Limited") {
          const seconds = admission.retryAfterSeconds
          return errorResponse(429, "rate_limited", `${options.name}: rate limit exceeded, retry in ${seconds}s`, {
            "retry-after": String(seconds)
          })
        }
        firstArrival ??= at
        const outage = FaultScript.outageAt(options.outages ?? [], at - firstArrival)
        if (outage !== undefined) {
          arrival = { ...arrival, fault: `outage:${outage.status}` }
          if (outage.delayMs > 0) yield* Effect.sleep(outage.delayMs)
          return errorResponse(outage.status, "outage", `${options.name}: down (scripted outage)`)
        }
        const step = jobId === null ? undefined : dealer.next(jobId)
        if (step !== undefined && step.fault._tag !== "Ok") {
          arrival = { ...arrival, fault: step.label }
          const faulty = yield* scripted(options.name, step.fault)
          if (faulty !== undefined) return faulty
        }
        if (json._tag === "None") return errorResponse(400, "invalid_json", "the body is not valid JSON")
        const body = yield* Effect.result(decodeBody(json.value))
        if (body._tag === "Failure") return errorResponse(400, "invalid_request", body.failure.message)
        return yield* options.process(body.success)
      })
      return yield* answer.pipe(
        Effect.tap((response) => arrivals.add({ ...arrival, status: response.status })),
        Effect.onInterrupt(() => arrivals.add({ ...arrival, status: 499 }))
      )
    })
  )

  const router = yield* HttpRouter.make
  const routes: ReadonlyArray<HttpRouter.Route<never, never>> = [
    processRoute,
    HttpRouter.route("GET", "/health", HttpServerResponse.jsonUnsafe({ status: "ok" })),
    ...recorderRoutes("/arrivals", arrivals),
    ...(options.routes ?? [])
  ]
  yield* router.addAll(routes)
  const { port, url } = yield* listen(router.asHttpEffect(), options)
  return { url, port, arrivals: arrivals.all, clearArrivals: arrivals.clear }
})

// A scripted fault's answer, or undefined when the normal answer follows (late, for `Slow`).
const scripted = (
  name: string,
  fault: FaultScript.AnswerFault
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
  switch (fault._tag) {
    case "Ok":
      return Effect.undefined
    case "Slow":
      return Effect.as(Effect.sleep(fault.millis), undefined)
    case "Garbage":
      return Effect.succeed(
        HttpServerResponse.text("<html><body><h1>Service Temporarily Unavailable</h1></body></html>", {
          status: 200,
          contentType: "text/html"
        })
      )
    case "Deep":
      return Effect.succeed(HttpServerResponse.text(FaultScript.deepJson, { contentType: "application/json" }))
    case "Huge":
      return Effect.succeed(
        HttpServerResponse.text(`{"filler":"${"x".repeat(FaultScript.hugeBytes)}"}`, {
          contentType: "application/json"
        })
      )
    case "Status":
      return Effect.succeed(
        fault.status === 429
          ? errorResponse(429, "rate_limited", `${name}: rate limit exceeded (scripted)`, {
              "retry-after": String(fault.retryAfterSeconds ?? 1)
            })
          : errorResponse(fault.status, "scripted_fault", `${name}: scripted ${fault.status}`)
      )
  }
}

/**
 * Serves `handler` on `node:http` for the life of the scope and tells where.
 *
 * @category constructors
 */
export const listen = LocalServer.listen

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

/**
 * The reference asynchronous vendor: a real HTTP server that accepts `POST /process` at once (202)
 * and, after a random delay, POSTs the data to the job's `webhook_url`, signed with the shared
 * secret. Failed deliveries are retried with exponential backoff (signed afresh each time, or, with
 * `signOnce`, the same bytes again); every outcome is recorded, with the data the callback carried.
 * Scripted faults (the kit's `FaultScript`) make it misbehave on cue: its answers (`MOCK_ASYNC_FAULTS`) and
 * its callbacks (`MOCK_ASYNC_CALLBACK_FAULTS`: dropped, duplicated, held back and sent out of order,
 * late, or nested far too deep).
 *
 * Routes: `POST /process` `{ job_id, payload, webhook_url }` → 202 `{ accepted: true, job_id }`
 * (429 over the limit, 400 on a bad body); `GET /health`; `GET|DELETE /arrivals`;
 * `GET|DELETE /callbacks`.
 *
 * Pending callbacks live in the server's scope: closing it interrupts them, timers included.
 *
 * Layers: {@link layer} (options in code, tests use port 0) and {@link layerConfig} (env, for `bin.ts`).
 *
 * @since 0.1.0
 */
import { Callbacks, FaultScript, LocalServer, type VendorSimulator } from "@vendorflow/adapter-kit/simulator"
import { MockVendorServer } from "@vendorflow/adapter-mock-sync"
import { Config, Context, type Duration, Effect, Layer, Redacted, Schema } from "effect"
import * as MockAsyncVendor from "./MockAsyncVendor.ts"

/**
 * How the server behaves.
 *
 * @category models
 */
export interface Options extends MockVendorServer.ServerOptions {
  /** How long after accepting a job its callback is sent; default uniform 2000–5000 ms. */
  readonly callbackDelayMs?: MockVendorServer.MillisRange | undefined
  /** Default `MockAsyncVendor.defaultWebhookSecret`. */
  readonly webhookSecret?: Redacted.Redacted<string> | string | undefined
  /** Retries after a failed delivery, `times` of them, the first after `baseDelayMs`, then doubling. */
  readonly webhookRetry?: { readonly times: number; readonly baseDelayMs: number } | undefined
  /** How long one delivery attempt may take; default 5 seconds. */
  readonly webhookTimeout?: Duration.Input | undefined
  /** Scripted fates for callbacks, the n-th step for a job's n-th callback; default none. */
  readonly callbackFaults?: FaultScript.Plan<FaultScript.CallbackFault> | undefined
  /** Sign each callback once and resend the same bytes and signature on every retry; default false. */
  readonly signOnce?: boolean | undefined
}

/**
 * The default callback delay: uniform 2000–5000 ms.
 *
 * @category constants
 */
export const defaultCallbackDelayMs: MockVendorServer.MillisRange = { min: 2000, max: 5000 }

/**
 * The default delivery retries: 4 more attempts, 500 ms, 1 s, 2 s, 4 s apart.
 *
 * @category constants
 */
export const defaultWebhookRetry = Callbacks.defaultRetry

/**
 * The port `bin.ts` listens on when `PORT` is unset.
 *
 * @category constants
 */
export const defaultPort = 8002

/**
 * One callback's fate: when its first attempt went out (`sentAt`) and when the last one ended
 * (`at`), the status our webhook last answered (none if it never answered), after how many
 * attempts, and whether it was delivered in the end (or `dropped`, never sent, by a scripted
 * fault); the data it carried (left out for a `deep` one); `fault`, the scripted fault it got, if
 * any.
 *
 * @category records
 */
export const CallbackRecord = Schema.Struct({
  at: Schema.Number,
  sentAt: Schema.Number,
  jobId: Schema.String,
  webhookUrl: Schema.String,
  data: Schema.optionalKey(Schema.Json),
  attempts: Schema.Int,
  status: Schema.NullOr(Schema.Int),
  outcome: Schema.Literals(["delivered", "failed", "dropped"]),
  fault: Schema.optionalKey(Schema.String)
})

/** @category records */
export type CallbackRecord = typeof CallbackRecord.Type

// A callback as this vendor shows it: the data it carried rather than the bytes, none for a `deep`
// one (which no record could hold).
const toRecord = (sent: VendorSimulator.CallbackRecord): CallbackRecord => ({
  at: sent.at,
  jobId: sent.jobId ?? "",
  webhookUrl: sent.url,
  ...(sent.fault === "deep" ? {} : { data: (JSON.parse(sent.body) as { readonly data: Schema.Json }).data }),
  sentAt: sent.sentAt,
  attempts: sent.attempts,
  status: sent.status,
  outcome: sent.outcome,
  ...(sent.fault === undefined ? {} : { fault: sent.fault })
})

/**
 * A running mock async vendor.
 *
 * @category services
 */
export class MockAsyncServer extends Context.Service<
  MockAsyncServer,
  MockVendorServer.Running & {
    readonly callbacks: Effect.Effect<ReadonlyArray<CallbackRecord>>
    readonly clearCallbacks: Effect.Effect<void>
  }
>()("@vendorflow/adapter-mock-async/MockAsyncServer") {}

const ProcessBody = Schema.Struct({
  ...MockVendorServer.ProcessFields,
  webhook_url: Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/))
})

/**
 * Starts the server for the life of the scope.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const secret = options.webhookSecret ?? MockAsyncVendor.defaultWebhookSecret
  const server = yield* MockVendorServer.serve({
    name: "mock-async",
    host: options.host,
    port: options.port,
    rateLimit: options.rateLimit,
    faults: options.faults,
    outages: options.outages,
    callbackFaults: options.callbackFaults,
    signOnce: options.signOnce,
    body: ProcessBody,
    process: (body) => Effect.succeed({ status: 202, json: { accepted: true, job_id: body.job_id } }),
    callback: (body) =>
      Effect.map(
        MockVendorServer.work({
          vendorType: "async",
          within: options.callbackDelayMs ?? defaultCallbackDelayMs,
          body,
          userInfoProbability: options.userInfoProbability
        }),
        (data) => ({
          url: body.webhook_url,
          body: { job_id: body.job_id, data },
          deepBody: `{"job_id":${JSON.stringify(body.job_id)},"data":${FaultScript.deepJson}}`
        })
      ),
    secret: Redacted.isRedacted(secret) ? Redacted.value(secret) : secret,
    callbackRetry: options.webhookRetry ?? defaultWebhookRetry,
    callbackTimeout: options.webhookTimeout,
    routes: (records) => LocalServer.recorderRoutes("/callbacks", records.callbacks, toRecord)
  })
  return MockAsyncServer.of({
    url: server.url,
    port: server.port,
    arrivals: server.arrivals,
    clearArrivals: server.clearArrivals,
    callbacks: Effect.map(server.callbacks, (all) => all.map(toRecord)),
    clearCallbacks: server.clearCallbacks
  })
})

/**
 * The server as a layer.
 *
 * @category layers
 */
export const layer = (options: Options = {}) => Layer.effect(MockAsyncServer, make(options))

/**
 * The options from env: `PORT` (default 8002), `HOST` (default 127.0.0.1), `MOCK_ASYNC_DELAY_MS`
 * (`"2000-5000"` or `"0"`), `MOCK_ASYNC_RATE_LIMIT` (`"5/1s"` or `"5"`),
 * `MOCK_ASYNC_USER_INFO_PROBABILITY`, `MOCK_ASYNC_FAULTS`, `MOCK_ASYNC_OUTAGES` and `MOCK_ASYNC_CALLBACK_FAULTS` (scripted
 * faults, see `FaultScript`), `MOCK_ASYNC_SIGN_ONCE` (`true`: a callback's retries resend the
 * first attempt's bytes and signature) and `WEBHOOK_SECRET`. `PORT` and `HOST` are the process's own, so this
 * suits a process that runs this vendor alone.
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  server: MockVendorServer.serverConfig({
    prefix: "MOCK_ASYNC",
    defaultPort,
    timingName: "DELAY_MS",
    defaultTiming: defaultCallbackDelayMs
  }),
  webhookSecret: MockAsyncVendor.webhookSecretConfig,
  callbackFaults: MockVendorServer.optional(FaultScript.CallbackPlanFromString, "MOCK_ASYNC_CALLBACK_FAULTS"),
  signOnce: Config.Boolean("MOCK_ASYNC_SIGN_ONCE").pipe(Config.withDefault(false))
}).pipe(
  Config.map(({ server: { timing, ...server }, webhookSecret, callbackFaults, signOnce }) => ({
    ...server,
    callbackDelayMs: timing,
    webhookSecret,
    callbackFaults,
    signOnce
  }))
)

/**
 * The server as a layer configured from env (see {@link config}); `overrides` win over env.
 *
 * @category layers
 */
export const layerConfig = (overrides: Options = {}) =>
  Layer.effect(
    MockAsyncServer,
    Effect.flatMap(config, (options) => make({ ...options, ...overrides }))
  )

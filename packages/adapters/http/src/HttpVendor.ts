/**
 * A generic JSON-over-HTTP vendor configured by data, so a REST vendor needs no code: where to send
 * (URL, method, path, query), what (headers with secrets from the environment, a JSON body built
 * from a template of the job), where the result is in the answer (a path like `data.result`), and
 * for an async vendor where the job id and the result are in its callback.
 *
 * Templates: a string that is exactly one placeholder takes the value as it is (a number stays a
 * number); placeholders inside longer strings are written as text. The placeholders are
 * `${payload.<path>}`, `${job.id}`, `${job.attempt}`, `${webhookUrl}` and `${secret.<NAME>}` (read
 * from `VENDOR_<VENDOR>_<NAME>`). A missing value is `null` (or empty inside text).
 *
 * The method defaults to POST with a body and GET without; the job id goes in `Idempotency-Key`
 * (or `idempotencyHeader`). Limits and timeouts given here are defaults the `VENDOR_<VENDOR>_*`
 * variables still override.
 *
 * ```json
 * { "adapter": "@vendorflow/adapter-http", "mode": "sync", "url": "https://api.example.com",
 *   "path": "/v1/lookup", "headers": { "authorization": "Bearer ${secret.API_KEY}" },
 *   "body": { "query": "${payload.company}", "reference": "${job.id}" },
 *   "result": "data.result", "piiKeys": ["national_id"], "rateLimit": "5/1s", "timeout": "10s" }
 * ```
 *
 * @since 0.1.0
 */
import { defineVendor, VendorDefinition, WebhookSignature } from "@vendorflow/adapter-kit"
import { Effect, Schema } from "effect"

const Method = Schema.Literals(["GET", "POST", "PUT", "PATCH", "DELETE"])
const Templates = Schema.Record(Schema.String, Schema.String)
const Path = Schema.String.annotate({ description: "a dotted path into JSON, e.g. data.result or items.0.id" })

/**
 * Where to ask an async vendor about an overdue job: the request (templated like the call's) and
 * where its result is; an answer without a value there means the vendor is still working.
 *
 * @category models
 */
export const StatusOptions = Schema.Struct({
  method: Schema.optionalKey(Method),
  path: Schema.optionalKey(Schema.String),
  query: Schema.optionalKey(Templates),
  result: Path
})

/**
 * The options of one vendor, as found under `vendors.<name>` in `vendorflow.config.json`.
 *
 * @category models
 */
export const Options = Schema.Struct({
  mode: Schema.optionalKey(Schema.Literals(["sync", "async"])),
  url: Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/)),
  method: Schema.optionalKey(Method),
  path: Schema.optionalKey(Schema.String),
  query: Schema.optionalKey(Templates),
  headers: Schema.optionalKey(Templates),
  body: Schema.optionalKey(Schema.Json),
  /** Where the job's result is in a 2xx answer (sync); the whole answer (an object) when empty. */
  result: Schema.optionalKey(Path),
  /** Async: a value a 2xx answer has when the vendor took the job, e.g. `ticket`; else any object. */
  accepted: Schema.optionalKey(Path),
  webhook: Schema.optionalKey(
    Schema.Struct({
      jobId: Path,
      result: Path,
      signatureHeader: Schema.optionalKey(Schema.String),
      toleranceSeconds: Schema.optionalKey(Schema.Int)
    })
  ),
  status: Schema.optionalKey(StatusOptions),
  idempotencyHeader: Schema.optionalKey(Schema.String),
  piiKeys: Schema.optionalKey(Schema.Array(Schema.String)),
  keepKeys: Schema.optionalKey(Schema.Array(Schema.String)),
  rateLimit: Schema.optionalKey(Schema.String),
  timeout: Schema.optionalKey(Schema.String),
  concurrency: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  maxAttempts: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  callbackDeadline: Schema.optionalKey(Schema.String),
  onCallbackTimeout: Schema.optionalKey(Schema.Literals(["resubmit", "fail"]))
})

/** @category models */
export type Options = typeof Options.Type

/**
 * The value at a dotted path (`data.items.0.id`), or undefined; the empty path is the value itself.
 *
 * @category templates
 */
export const valueAt = (value: unknown, path: string): unknown =>
  path === ""
    ? value
    : path.split(".").reduce<unknown>((at, key) => {
        if (Array.isArray(at) && /^\d+$/.test(key)) return at[Number(key)]
        return typeof at === "object" && at !== null && !Array.isArray(at) && Object.hasOwn(at, key)
          ? (at as Readonly<Record<string, unknown>>)[key]
          : undefined
      }, value)

const placeholder = /\$\{([a-zA-Z]+)(?:\.([^}]*))?\}/g
const whole = /^\$\{([a-zA-Z]+)(?:\.([^}]*))?\}$/

/**
 * The secret names a template refers to (`${secret.API_KEY}`).
 *
 * @category templates
 */
export const secretsIn = (template: unknown): ReadonlyArray<string> => [
  ...new Set(
    [...JSON.stringify(template ?? null).matchAll(placeholder)].filter((m) => m[1] === "secret").map((m) => m[2] ?? "")
  )
]

const lookup = (call: VendorDefinition.Call, source: string, path: string): unknown => {
  switch (source) {
    case "payload":
      return valueAt(call.payload, path)
    case "job":
      return path === "id" ? call.jobId : path === "attempt" ? call.attempt : undefined
    case "webhookUrl":
      return call.webhookUrl
    case "secret":
      return call.secret(path)
    default:
      return undefined
  }
}

const asText = (value: unknown): string =>
  value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value)

/**
 * A template filled in for one call: strings are rendered, objects and arrays recursively.
 *
 * @category templates
 */
export const render = (template: Schema.Json, call: VendorDefinition.Call): Schema.Json => {
  if (typeof template === "string") {
    const only = whole.exec(template)
    if (only !== null) return (lookup(call, only[1] ?? "", only[2] ?? "") ?? null) as Schema.Json
    return template.replace(placeholder, (_, source: string, path: string | undefined) =>
      asText(lookup(call, source, path ?? ""))
    )
  }
  if (Array.isArray(template)) return template.map((item) => render(item, call))
  if (typeof template === "object" && template !== null) {
    return Object.fromEntries(Object.entries(template).map(([key, item]) => [key, render(item, call)]))
  }
  return template
}

const renderText = (templates: Readonly<Record<string, string>> | undefined, call: VendorDefinition.Call) =>
  templates === undefined
    ? undefined
    : Object.fromEntries(Object.entries(templates).map(([key, value]) => [key, asText(render(value, call))]))

// A JSON answer that has a value where the result is said to be, so that an error page or an empty
// object is an invalid answer rather than an empty result.
const answerWith = (path: string) =>
  path === ""
    ? Schema.Record(Schema.String, Schema.Json)
    : Schema.Json.check(Schema.makeFilter((json) => valueAt(json, path) !== undefined || `no value at "${path}"`))

const toJson = (value: unknown): Schema.Json => (value === undefined ? null : (value as Schema.Json))

const decodeOptions = Schema.decodeUnknownEffect(Options)

/**
 * Makes the definition of vendor `name` from its options (the `configure` of this adapter package).
 *
 * @category constructors
 */
export const configure = (
  name: string,
  options: unknown
): Effect.Effect<VendorDefinition.VendorDefinition, VendorDefinition.InvalidDefinition> =>
  Effect.gen(function* () {
    const invalid = (message: string) => new VendorDefinition.InvalidDefinition({ vendor: name, message })
    const given = yield* decodeOptions(options, { onExcessProperty: "error" }).pipe(
      Effect.mapError((error) =>
        invalid(`${name}: the options of @vendorflow/adapter-http are wrong: ${error.message}`)
      )
    )
    const secrets = secretsIn([given.path, given.query, given.headers, given.body, given.status])
    const request = (call: VendorDefinition.Call) => ({
      method: given.method ?? (given.body === undefined ? "GET" : "POST"),
      path: asText(render(given.path ?? "", call)),
      query: renderText(given.query, call),
      headers: renderText(given.headers, call),
      body: given.body === undefined ? undefined : render(given.body, call)
    })
    const common = {
      name,
      url: given.url,
      secrets,
      request,
      idempotencyHeader: given.idempotencyHeader,
      piiKeys: given.piiKeys,
      keepKeys: given.keepKeys,
      defaults: {
        rateLimit: given.rateLimit,
        timeout: given.timeout,
        concurrency: given.concurrency,
        maxAttempts: given.maxAttempts,
        callbackDeadline: given.callbackDeadline,
        onCallbackTimeout: given.onCallbackTimeout
      }
    }
    if ((given.mode ?? "sync") === "sync") {
      const path = given.result ?? ""
      return defineVendor({
        ...common,
        mode: "sync",
        response: answerWith(path),
        result: (answer) => toJson(valueAt(answer, path))
      })
    }
    const webhook = given.webhook
    if (webhook === undefined) return yield* invalid(`${name}: an async vendor needs "webhook": { "jobId", "result" }`)
    const status = given.status
    const hookSchema = answerWith(webhook.result).check(
      Schema.makeFilter((json) => typeof valueAt(json, webhook.jobId) === "string" || `no job id at "${webhook.jobId}"`)
    )
    return defineVendor({
      ...common,
      mode: "async",
      response: answerWith(given.accepted ?? ""),
      webhook: {
        schema: hookSchema,
        jobId: (hook) => String(valueAt(hook, webhook.jobId)),
        result: (hook) => toJson(valueAt(hook, webhook.result)),
        signature:
          webhook.signatureHeader === undefined
            ? undefined
            : { ...WebhookSignature.hmacSha256, header: webhook.signatureHeader.toLowerCase() },
        toleranceSeconds: webhook.toleranceSeconds
      },
      checkStatus:
        status === undefined
          ? undefined
          : {
              request: (call) => ({
                method: status.method ?? "GET",
                path: asText(render(status.path ?? "", call)),
                query: renderText(status.query, call)
              }),
              response: Schema.Json,
              result: (answer) => {
                const found = valueAt(answer, status.result)
                return found === undefined || found === null ? undefined : toJson(found)
              }
            }
    })
  })

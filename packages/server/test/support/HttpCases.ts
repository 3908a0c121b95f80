/**
 * The shared HTTP case table's runner. A case is one request and what its answer must be: the
 * status, headers, the problem type (then the answer is checked as an RFC 9457 problem) and the
 * body's shape. {@link describeCases} runs a table against two real servers on one core, over
 * real sockets: one with `HOT_PATH=true` (the batched transport answers the plain job requests)
 * and one with `HOT_PATH=false` (the HttpApi app answers everything). Each case's answer from each
 * server is checked against the case, the two answers must be the same (status, the headers that
 * carry meaning, body), and an ordinary request must still succeed afterwards.
 */
import { assert, layer } from "@effect/vitest"
import { Api } from "@vendorflow/core"
import { ConfigProvider, Context, Effect, Layer, Logger, Schema } from "effect"
import { HttpServer } from "effect/http"
import { request as httpRequest, type IncomingHttpHeaders } from "node:http"
import * as Server from "../../src/Server.ts"
import type * as TestServer from "./TestServer.ts"

/**
 * One request, sent as given: a body goes with its `Content-Length` unless it is sent chunked.
 */
export interface Request {
  /** `GET`, or `POST` when there is a body. */
  readonly method?: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array
  /** Sent in 64 KiB chunks with no `Content-Length`. */
  readonly chunked?: boolean
}

/**
 * What an answer must be.
 */
export interface Expected {
  readonly status: number
  /** The problem's type after `Api.problemTypePrefix`: the answer is an RFC 9457 problem of it. */
  readonly problem?: string
  /** Headers by (lower-case) name: the value, a pattern it matches, or `null` for none. */
  readonly headers?: Readonly<Record<string, string | RegExp | null>>
  /** Members the JSON body has, each deep-equal. */
  readonly body?: Readonly<Record<string, unknown>>
  /** The JSON body's exact member names. */
  readonly keys?: ReadonlyArray<string>
  /** A schema the JSON body decodes with. */
  readonly schema?: Schema.Codec<unknown, unknown>
  /** Any further check of the JSON body. */
  readonly check?: (body: Record<string, unknown>) => void
  /** No body at all. */
  readonly empty?: boolean
}

/** Values a case's set-up hands to its request and its expectation (a job's id, a token). */
export type Given = Readonly<Record<string, string>>

/** The services a case's set-up may use: the core both servers run on. */
export type Core = Layer.Success<ReturnType<typeof TestServer.layerCore>>

/**
 * One case.
 */
export interface Case {
  readonly name: string
  /** What the case needs first (a job in some state, a key that used up its limit). */
  readonly given?: Effect.Effect<Given, unknown, Core>
  readonly request: Request | ((given: Given) => Request)
  readonly expect: Expected | ((given: Given) => Expected)
  /**
   * Whether the two servers' answers must be the same; `false` only where a value moves between
   * the two requests by nature (a rate limit's seconds to reset), and then says why.
   */
  readonly same?: boolean
}

/** `POST path` with a JSON content type (unless `headers` says otherwise). */
export const post = (body: string | Uint8Array, headers: Record<string, string> = {}, path = "/jobs"): Request => ({
  method: "POST",
  path,
  headers: { "content-type": "application/json", ...headers },
  body
})

/** An RFC 9457 problem of `type` with `status`, and whatever else is expected of it. */
export const problem = (status: number, type: string, more: Omit<Expected, "status" | "problem"> = {}): Expected => ({
  status,
  problem: type,
  ...more
})

/** A check that the body's `member` is an array. */
export const isArray = (member: string) => (body: Record<string, unknown>) => assert.isArray(body[member], member)

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** Sends one request on a connection of its own and reads the whole answer. */
export const send = (base: string, request: Request) =>
  Effect.callback<Answer, Error>((resume) => {
    const body =
      request.body === undefined
        ? undefined
        : typeof request.body === "string"
          ? Buffer.from(request.body)
          : Buffer.from(request.body)
    const headers: Record<string, string> = { ...request.headers }
    if (body !== undefined && request.chunked !== true) headers["content-length"] = String(body.byteLength)
    const url = new URL(base)
    let answered = false
    const outgoing = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: request.method ?? (body === undefined ? "GET" : "POST"),
        path: request.path,
        headers,
        agent: false
      },
      (response) => {
        answered = true
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () =>
          resume(
            Effect.succeed({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks).toString("utf8")
            })
          )
        )
      }
    )
    // A server that refuses an oversize body may close the connection while it is being sent.
    outgoing.on("error", (error) => {
      if (!answered) resume(Effect.fail(error))
    })
    if (body !== undefined && request.chunked === true) {
      for (let i = 0; i < body.length; i += 65536) outgoing.write(body.subarray(i, i + 65536))
    }
    outgoing.end(request.chunked === true ? undefined : body)
    return Effect.sync(() => outgoing.destroy())
  })

const Problem = Schema.StructWithRest(
  Schema.Struct({ type: Schema.String, title: Schema.String, status: Schema.Number, detail: Schema.String }),
  [Schema.Record(Schema.String, Schema.Unknown)]
)

const headerOf = (answer: Answer, name: string): string | undefined => {
  const value = answer.headers[name]
  return Array.isArray(value) ? value.join(", ") : value
}

const jsonOf = (answer: Answer, label: string): Record<string, unknown> => {
  const parsed: unknown = JSON.parse(answer.body)
  assert.isTrue(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed), `${label}: a JSON object`)
  return parsed as Record<string, unknown>
}

/** Asserts that `answer` is what `expected` says. */
export const check = (answer: Answer, expected: Expected, label: string): void => {
  assert.strictEqual(answer.status, expected.status, `${label}: status; body ${answer.body.slice(0, 300)}`)
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    const actual = headerOf(answer, name)
    if (value === null) assert.isUndefined(actual, `${label}: no ${name}`)
    else if (typeof value === "string") assert.strictEqual(actual, value, `${label}: ${name}`)
    else assert.match(actual ?? "", value, `${label}: ${name}`)
  }
  if (expected.empty === true) assert.strictEqual(answer.body, "", `${label}: no body`)
  const expectsJson = [expected.body, expected.keys, expected.schema, expected.check].some((c) => c !== undefined)
  if (expected.problem === undefined && !expectsJson) return
  const contentType = headerOf(answer, "content-type") ?? ""
  const body = jsonOf(answer, label)
  if (expected.problem !== undefined) {
    assert.match(contentType, /^application\/problem\+json/, `${label}: content-type`)
    const problem = Schema.decodeUnknownSync(Problem)(body)
    assert.strictEqual(problem.type, `${Api.problemTypePrefix}${expected.problem}`, `${label}: problem type`)
    assert.strictEqual(problem.status, expected.status, `${label}: problem status`)
    assert.isNotEmpty(problem.title, `${label}: problem title`)
    assert.isNotEmpty(problem.detail, `${label}: problem detail`)
  } else {
    assert.match(contentType, /^application\/json/, `${label}: content-type`)
  }
  for (const [name, value] of Object.entries(expected.body ?? {})) {
    assert.deepStrictEqual(body[name], value, `${label}: body.${name}`)
  }
  if (expected.keys !== undefined) assert.sameMembers(Object.keys(body), [...expected.keys], `${label}: members`)
  if (expected.schema !== undefined) Schema.decodeUnknownSync(expected.schema)(body)
  expected.check?.(body)
}

// The headers that carry meaning; Date and Keep-Alive come from Node either way, and the
// remaining count of `RateLimit` moves with every request.
const compared = [
  "content-type",
  "content-length",
  "cache-control",
  "etag",
  "retry-after",
  "allow",
  "www-authenticate",
  "ratelimit-policy"
]

/** The answer with what differs by nature (a new id) put in its place. */
const comparable = (answer: Answer) => ({
  status: answer.status,
  headers: Object.fromEntries(compared.map((name) => [name, headerOf(answer, name)])),
  body: answer.body.replace(/"request_id":"[0-9a-f-]{36}"/, '"request_id":"<id>"')
})

/** After a case, `ordinary` is answered 200, and a job it submits reads back pending. */
const stillServes = Effect.fnUntraced(function* (base: string, ordinary: Request, after: string) {
  const answer = yield* send(base, ordinary)
  assert.strictEqual(answer.status, 200, `${base} still serves after ${after}`)
  const id = jsonOf(answer, after)["request_id"]
  if (id === undefined) return
  const read = yield* send(base, { path: `/jobs/${String(id)}`, headers: ordinary.headers ?? {} })
  check(read, { status: 200, body: { status: "pending" } }, `${base} reads back after ${after}`)
})

/** The two servers of a table: their base URLs. */
class Servers extends Context.Service<Servers, { readonly batched: string; readonly httpApi: string }>()(
  "test/HttpCases/Servers"
) {}

// A server configured from the environment as `vendorflow-server` is, but for the given variables.
const serverOn = (env: Record<string, string>) =>
  Effect.gen(function* () {
    const options = yield* Server.config.parse(ConfigProvider.fromUnknown({ PORT: "0", HOST: "127.0.0.1", ...env }))
    const context = yield* Layer.build(Server.layerWith({ ...options, logAddress: false }))
    return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  })

const servers = Layer.effect(
  Servers,
  Effect.all({ batched: serverOn({ HOT_PATH: "true" }), httpApi: serverOn({ HOT_PATH: "false" }) })
)

/**
 * Runs `cases` against the two servers over `core`; after each, `ordinary` (a request answered
 * 200; a job it submits must read back) must still succeed on both. `quiet` silences the servers' logs (of 503s and defects the
 * cases cause on purpose).
 */
export const describeCases = <E>(
  name: string,
  core: Layer.Layer<Core, E>,
  cases: ReadonlyArray<Case>,
  options: { readonly ordinary?: Request | undefined; readonly quiet?: boolean | undefined } = {}
) => {
  const stack = servers.pipe(Layer.provideMerge(core))
  return layer(options.quiet === true ? stack.pipe(Layer.provide(Logger.layer([]))) : stack, {
    excludeTestServices: true,
    timeout: "60 seconds"
  })(name, (it) => {
    for (const testCase of cases) {
      it.effect(testCase.name, () =>
        Effect.gen(function* () {
          const { batched, httpApi } = yield* Servers
          const given = testCase.given === undefined ? {} : yield* testCase.given
          const request = typeof testCase.request === "function" ? testCase.request(given) : testCase.request
          const expected = typeof testCase.expect === "function" ? testCase.expect(given) : testCase.expect
          const fromBatched = yield* send(batched, request)
          const fromHttpApi = yield* send(httpApi, request)
          check(fromBatched, expected, `HOT_PATH=true, ${testCase.name}`)
          check(fromHttpApi, expected, `HOT_PATH=false, ${testCase.name}`)
          if (testCase.same !== false) {
            assert.deepStrictEqual(
              comparable(fromBatched),
              comparable(fromHttpApi),
              `the same answer: ${testCase.name}`
            )
          }
          if (options.ordinary !== undefined) {
            for (const base of [batched, httpApi]) yield* stillServes(base, options.ordinary, testCase.name)
          }
        })
      )
    }
  })
}

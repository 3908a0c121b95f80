/**
 * Hostile and broken input over real sockets: every request gets its documented 4xx in the
 * problem+json shape (431 for oversized headers comes from Node's HTTP parser, before any route),
 * nothing is stored, and the next ordinary request still succeeds.
 */
import { assert, layer } from "@effect/vitest"
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import { Api, Vendor, WebhookSignature } from "@vendorflow/core"
import { Effect } from "effect"
import { HttpServer } from "effect/http"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import * as TestServerLayer from "./support/TestServer.ts"

const secret = "bad-input-secret"

// An async vendor whose webhooks are checked by the reference adapter's own code.
const acme: Vendor.Vendor = {
  name: "acme",
  mode: "async",
  concurrency: 1,
  call: () => Effect.die(new Error("no consumer runs here")),
  parseWebhook: MockAsyncVendor.parseWebhook({ secret })
}

const TestServer = TestServerLayer.layer([acme])

const port = Effect.map(HttpServer.HttpServer, (server) =>
  Number(new URL(HttpServer.formatAddress(server.address)).port)
)

interface Answer {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** One raw HTTP request, bytes as given (no client-side validation in the way). */
const raw = (options: {
  readonly method: string
  readonly path: string
  readonly headers?: Record<string, string | number>
  readonly body?: Buffer | string
  readonly chunked?: boolean
}) =>
  Effect.flatMap(port, (at) =>
    Effect.callback<Answer, Error>((resume) => {
      const req = httpRequest(
        { host: "127.0.0.1", port: at, method: options.method, path: options.path, headers: options.headers },
        (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (chunk: Buffer) => chunks.push(chunk))
          res.on("end", () =>
            resume(
              Effect.succeed({
                status: res.statusCode ?? 0,
                contentType: String(res.headers["content-type"] ?? ""),
                body: Buffer.concat(chunks).toString("utf8")
              })
            )
          )
        }
      )
      req.on("error", (error) => resume(Effect.fail(error)))
      if (options.body !== undefined) {
        if (options.chunked === true) {
          const body = Buffer.from(options.body)
          for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536))
        } else req.write(options.body)
      }
      req.end()
    })
  )

const json = { "content-type": "application/json" }

const postJobs = (body: Buffer | string, headers: Record<string, string | number> = json, chunked = false) =>
  raw({ method: "POST", path: "/jobs", headers, body, chunked })

/** Asserts the status and the problem shape, then that an ordinary request still succeeds. */
const expectProblem = Effect.fnUntraced(function* (answer: Answer, status: number, type: string) {
  assert.strictEqual(answer.status, status, answer.body.slice(0, 300))
  assert.match(answer.contentType, /^application\/problem\+json/)
  const problem = JSON.parse(answer.body) as { type: string; status: number; detail: string }
  assert.strictEqual(problem.type, `${Api.problemTypePrefix}${type}`)
  assert.strictEqual(problem.status, status)
  const ordinary = yield* postJobs(JSON.stringify({ company: "still fine" }))
  assert.strictEqual(ordinary.status, 200)
})

const live = { excludeTestServices: true, timeout: "60 seconds" } as const

layer(TestServer, live)("bad input", (it) => {
  it.effect("malformed and truncated JSON: 400", () =>
    Effect.gen(function* () {
      yield* expectProblem(yield* postJobs('{"company": "acme",'), 400, "malformed-json")
      yield* expectProblem(yield* postJobs('{"company": "ac'), 400, "malformed-json")
      yield* expectProblem(yield* postJobs("{'single': 'quotes'}"), 400, "malformed-json")
    })
  )

  it.effect("a 10 MB body: 413, with and without Content-Length", () =>
    Effect.gen(function* () {
      const big = Buffer.from(`{"a":"${"x".repeat(10 * 1024 * 1024)}"}`)
      yield* expectProblem(yield* postJobs(big, { ...json, "content-length": big.length }), 413, "payload-too-large")
      yield* expectProblem(yield* postJobs(big, json, true), 413, "payload-too-large")
    })
  )

  it.effect("JSON nested 10 000 deep: 422", () =>
    Effect.gen(function* () {
      const deep = `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`
      yield* expectProblem(yield* postJobs(deep), 422, "invalid-payload")
    })
  )

  it.effect("a million-element array: 413 (past the body limit)", () =>
    Effect.gen(function* () {
      const million = `{"a":[${Array.from({ length: 1_000_000 }, () => "0").join(",")}]}`
      yield* expectProblem(yield* postJobs(million), 413, "payload-too-large")
    })
  )

  it.effect("invalid UTF-8: 400", () =>
    Effect.gen(function* () {
      const body = Buffer.concat([Buffer.from('{"company":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')])
      yield* expectProblem(yield* postJobs(body), 400, "malformed-json")
    })
  )

  it.effect("wrong content types: 415", () =>
    Effect.gen(function* () {
      for (const type of [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded"
      ]) {
        yield* expectProblem(yield* postJobs('{"a":1}', { "content-type": type }), 415, "unsupported-media-type")
      }
      yield* expectProblem(yield* postJobs('{"a":1}', {}), 415, "unsupported-media-type")
    })
  )

  it.effect("path traversal and operator injection in ids: 400, nothing read or stored", () =>
    Effect.gen(function* () {
      for (const path of ["/jobs/..%2F..%2Fetc%2Fpasswd", "/jobs/%7B%22%24gt%22%3A%22%22%7D", "/jobs/$where"]) {
        yield* expectProblem(yield* raw({ method: "GET", path }), 400, "invalid-request")
      }
      const body = JSON.stringify({ job_id: { $gt: "" }, data: {} })
      const signed = {
        ...json,
        [WebhookSignature.header]: WebhookSignature.sign({ secret, body, timestamp: Math.floor(Date.now() / 1000) })
      }
      yield* expectProblem(
        yield* raw({ method: "POST", path: "/vendor-webhook/acme", headers: signed, body }),
        400,
        "malformed-webhook"
      )
      yield* expectProblem(
        yield* raw({ method: "POST", path: "/vendor-webhook/..%2F..%2Fadmin", headers: json, body }),
        404,
        "vendor-not-found"
      )
    })
  )

  it.effect("oversized headers: 431 from the HTTP parser, and the server keeps serving", () =>
    Effect.gen(function* () {
      // Node's parser answers and closes the connection, so this is read off a bare socket.
      const statusLine = yield* Effect.flatMap(port, (at) =>
        Effect.callback<string, Error>((resume) => {
          const socket = connect(at, "127.0.0.1")
          let received = ""
          socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")))
          socket.on("close", () => resume(Effect.succeed(received.split("\r\n")[0] ?? "")))
          socket.on("error", () => resume(Effect.succeed(received.split("\r\n")[0] ?? "")))
          socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${"y".repeat(64 * 1024)}\r\n\r\n`)
        })
      )
      assert.match(statusLine, /^HTTP\/1\.1 431 /)
      const ordinary = yield* postJobs(JSON.stringify({ company: "still fine" }))
      assert.strictEqual(ordinary.status, 200)
    })
  )
})

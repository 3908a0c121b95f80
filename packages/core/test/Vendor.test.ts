/**
 * `Vendor.sendJson`'s exchange over real sockets, where it meets undici's handler API: an answer
 * after informational ones, a call given up (by its timeout or an interruption) whether it was on
 * the wire or still waiting for a connection, and one that never started leaves nothing behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Duration, Effect, Exit, Fiber, Schema } from "effect"
import { Pool } from "undici"
import * as Vendor from "../src/Vendor.ts"

// A vendor at 127.0.0.1 that hands each request to `handle`; `requests` are those it received,
// `connections` how many connections were opened to it, `closed` how many of its requests'
// connections have closed.
const vendorServer = (handle: (request: IncomingMessage, response: ServerResponse) => void) =>
  Effect.gen(function* () {
    const requests: Array<IncomingMessage> = []
    let connections = 0
    let closed = 0
    const server = createServer((request, response) => {
      requests.push(request)
      request.socket.once("close", () => closed++)
      handle(request, response)
    })
    server.on("connection", () => connections++)
    yield* Effect.acquireRelease(
      Effect.promise(() => new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))),
      () =>
        Effect.promise(() => {
          server.closeAllConnections()
          return new Promise((done) => server.close(done))
        })
    )
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return { url, requests, connections: () => connections, closed: () => closed }
  })

// One connection at most, so a second call waits for the first's.
const onePool = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Pool(url, { connections: 1 })),
    (pool) => Effect.promise(() => pool.destroy())
  )

const send = (url: string, pool: Pool, options: { readonly timeout?: Duration.Input; readonly key?: string } = {}) =>
  Vendor.sendJson({
    vendor: "edge",
    url: `${url}/process?x=1`,
    idempotencyKey: options.key ?? "job-1",
    schema: Schema.Struct({ ok: Schema.Boolean }),
    timeout: options.timeout ?? "5 seconds",
    body: { q: 1 },
    dispatcher: pool
  })

const until = (what: string, condition: () => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 5000
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(`not within 5 s: ${what}`)
      yield* Effect.sleep("10 millis")
    }
  })

const hang = () => {}

describe("Vendor.sendJson", () => {
  it.live("reads the answer that follows an informational one, sent to the path and query asked for", () =>
    Effect.gen(function* () {
      const server = yield* vendorServer((request, response) => {
        request.resume()
        request.on("end", () => {
          response.writeProcessing()
          response.writeHead(200, { "content-type": "application/json" })
          response.end('{"ok":true}')
        })
      })
      const answer = yield* send(server.url, yield* onePool(server.url))
      assert.deepStrictEqual(answer, { ok: true })
      assert.strictEqual(server.requests[0]?.url, "/process?x=1")
      assert.strictEqual(server.requests[0]?.headers["idempotency-key"], "job-1")
    })
  )

  it.live("a vendor that does not answer in time is Unavailable, and its connection is closed", () =>
    Effect.gen(function* () {
      const server = yield* vendorServer(hang)
      const error = yield* Effect.flip(send(server.url, yield* onePool(server.url), { timeout: "200 millis" }))
      assert.strictEqual(error.reason, "Unavailable")
      assert.match(error.message, /did not answer within 200ms/)
      yield* until("the connection closed", () => server.closed() === 1)
    })
  )

  it.live("an interrupted call closes its connection", () =>
    Effect.gen(function* () {
      const server = yield* vendorServer(hang)
      const call = yield* Effect.forkChild(send(server.url, yield* onePool(server.url)))
      yield* until("the request arrived", () => server.requests.length === 1)
      yield* Fiber.interrupt(call)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(call)))
      yield* until("the connection closed", () => server.closed() === 1)
    })
  )

  it.live("a call given up while it waits for a connection is never sent, and costs no connection", () =>
    Effect.gen(function* () {
      // The first call is held until released; any other is answered at once.
      let releaseFirst: (() => void) | undefined
      const server = yield* vendorServer((request, response) => {
        request.resume()
        const answer = () => {
          response.writeHead(200, { "content-type": "application/json" })
          response.end('{"ok":true}')
        }
        if (request.headers["idempotency-key"] === "first") releaseFirst = answer
        else request.on("end", answer)
      })
      const pool = yield* onePool(server.url)
      const first = yield* Effect.forkChild(send(server.url, pool, { key: "first" }))
      yield* until("the first request arrived", () => releaseFirst !== undefined)
      // The pool's one connection is busy: these two wait for it, and are given up on.
      const interrupted = yield* Effect.forkChild(send(server.url, pool, { key: "interrupted" }))
      const timedOut = yield* Effect.flip(send(server.url, pool, { key: "timed-out", timeout: "100 millis" }))
      assert.match(timedOut.message, /did not answer within 100ms/)
      yield* Fiber.interrupt(interrupted)
      releaseFirst?.()
      assert.deepStrictEqual(yield* Fiber.join(first), { ok: true })
      assert.deepStrictEqual(yield* send(server.url, pool, { key: "next" }), { ok: true })
      assert.deepStrictEqual(
        server.requests.map((request) => request.headers["idempotency-key"]),
        ["first", "next"]
      )
      // Taken out of the pool's queue, not started only to be aborted (which closes a connection).
      assert.strictEqual(server.connections(), 1)
    })
  )

  it.live("a URL undici cannot use is Unavailable with why, not a defect", () =>
    Effect.gen(function* () {
      const server = yield* vendorServer(hang)
      const error = yield* Effect.flip(
        Vendor.sendJson({
          vendor: "edge",
          url: "not a url",
          idempotencyKey: "job-1",
          schema: Schema.Unknown,
          timeout: "1 second",
          dispatcher: yield* onePool(server.url)
        })
      )
      assert.strictEqual(error.reason, "Unavailable")
      assert.match(error.message, /edge unreachable: .*URL/i)
    })
  )
})

/**
 * Hostile input that never reaches a route: headers too large for Node's HTTP parser get its 431
 * before either transport sees the request, and the server keeps serving. Every answer a route
 * gives to bad input (malformed, huge, deep, mistyped, not UTF-8, traversal and operator
 * injection in ids) is in the shared case table (HttpCases.test.ts), run on both transports.
 */
import { assert, layer } from "@effect/vitest"

import { Effect } from "effect"
import { HttpServer } from "effect/http"
import { connect } from "node:net"
import * as TestServerLayer from "./support/TestServer.ts"

const TestServer = TestServerLayer.layer([TestServerLayer.syncVendor("acme")])

const base = Effect.map(HttpServer.HttpServer, (server) => HttpServer.formatAddress(server.address))

layer(TestServer, { excludeTestServices: true })("bad input", (it) => {
  it.effect("oversized headers: 431 from the HTTP parser, and the server keeps serving", () =>
    Effect.gen(function* () {
      const url = new URL(yield* base)
      // Node's parser answers and closes the connection, so this is read off a bare socket.
      const statusLine = yield* Effect.callback<string, Error>((resume) => {
        const socket = connect(Number(url.port), url.hostname)
        let received = ""
        socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")))
        socket.on("close", () => resume(Effect.succeed(received.split("\r\n")[0] ?? "")))
        socket.on("error", () => resume(Effect.succeed(received.split("\r\n")[0] ?? "")))
        socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${"y".repeat(64 * 1024)}\r\n\r\n`)
      })
      assert.match(statusLine, /^HTTP\/1\.1 431 /)
      const ordinary = yield* Effect.promise(() =>
        fetch(`${url.origin}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ company: "still fine" })
        })
      )
      assert.strictEqual(ordinary.status, 200)
    })
  )
})

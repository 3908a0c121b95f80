import { assert, describe, it } from "@effect/vitest"
import { WebhookSignature } from "@vendorflow/core"
import { ChildProcess } from "@vendorflow/core/testing"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { request } from "node:http"
import { type AddressInfo, createServer, type Server } from "node:net"
import { fileURLToPath } from "node:url"

const entry = (name: string) => fileURLToPath(new URL(`../src/${name}`, import.meta.url))

// The environment of a server on the test Redis under a fresh prefix; the test's keys go with its scope.
const redisEnv = Effect.gen(function* () {
  const prefix = `test:${crypto.randomUUID().slice(0, 8)}:`
  const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      const keys = execFileSync("redis-cli", ["-u", redisUrl, "--scan", "--pattern", `${prefix}*`], {
        encoding: "utf8"
      })
        .split("\n")
        .filter((key) => key !== "")
      if (keys.length > 0) execFileSync("redis-cli", ["-u", redisUrl, "DEL", ...keys])
    })
  )
  return { PORT: "0", REDIS_URL: redisUrl, REDIS_PREFIX: prefix }
})

// One request on a connection of its own (fetch would keep one alive), so the kernel picks a process each time.
const send = (url: string, options: { readonly method: string; readonly body?: string }) =>
  Effect.callback<{ readonly status: number; readonly body: string }>((resume) => {
    const outgoing = request(url, { method: options.method, agent: false }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    outgoing.on("error", (error) => resume(Effect.die(error)))
    if (options.body !== undefined) outgoing.setHeader("content-type", "application/json")
    outgoing.end(options.body)
  })

describe("processes", () => {
  it.live("vendorflow-server answers /health and exits 0 on SIGTERM", () =>
    Effect.gen(function* () {
      const server = yield* ChildProcess.start(entry("bin.ts"), { PORT: "0" })
      const [, url] = yield* server.waitFor(/Listening on (http:\/\/\S+)/)
      const health = yield* Effect.promise(() => fetch(`${url}/health`))
      assert.strictEqual(health.status, 200)
      assert.strictEqual(yield* server.stop("SIGTERM"), 0)
    })
  )

  it.live("two vendorflow-server processes on one Redis apply a signed webhook once between them", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const env = yield* redisEnv
        const servers = yield* Effect.all([
          ChildProcess.start(entry("bin.ts"), env),
          ChildProcess.start(entry("bin.ts"), env)
        ])
        const urls = yield* Effect.forEach(servers, (server) =>
          Effect.map(server.waitFor(/Listening on (http:\/\/\S+)/), ([, url]) => url)
        )
        // No worker runs, so the job waits pending: its callback is applied all the same.
        const submitted = yield* send(`${urls[0]}/jobs`, { method: "POST", body: '{"vendor":"async"}' })
        const jobId = (JSON.parse(submitted.body) as { request_id: string }).request_id
        const body = JSON.stringify({ job_id: jobId, data: { n: 1 } })
        const timestamp = Math.floor(Date.now() / 1000)
        const headers = {
          "content-type": "application/json",
          [WebhookSignature.header]: WebhookSignature.sign({ secret: "vendorflow-dev-secret", body, timestamp })
        }
        const token = WebhookSignature.callbackToken({ secret: WebhookSignature.defaultCallbackSecret, jobId, run: 1 })
        const deliver = (url: string | undefined) =>
          Effect.promise(() =>
            fetch(`${url}/vendor-webhook/async?token=${token}`, { method: "POST", headers, body }).then(async (r) => ({
              status: r.status,
              body: (await r.json()) as { detail?: string; status?: string }
            }))
          )
        // The first server applies the delivery; the other refuses the same bytes as a replay.
        const applied = yield* deliver(urls[0])
        assert.deepInclude(applied, { status: 200 })
        assert.strictEqual(applied.body.status, "complete")
        const replayed = yield* deliver(urls[1])
        assert.strictEqual(replayed.status, 401)
        assert.strictEqual(replayed.body.detail, "this signed delivery was applied before")
        for (const server of servers) assert.strictEqual(yield* server.stop("SIGTERM"), 0)
      })
    )
  )

  it.live("SERVER_PROCESSES=2 serves one port from two processes on one Redis and exits 0 on SIGTERM", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const supervisor = yield* ChildProcess.start(entry("bin.ts"), { ...(yield* redisEnv), SERVER_PROCESSES: "2" })
        // Two processes bound the same address: each worker logs its own line.
        const [, url = ""] = yield* supervisor.waitFor(/Listening on (http:\/\/\S+)\n[\s\S]*Listening on \1\n/)
        const submitted = yield* Effect.forEach(
          Array.from({ length: 12 }),
          () => send(`${url}/jobs`, { method: "POST", body: '{"vendor":"sync"}' }),
          { concurrency: 4 }
        )
        for (const answer of submitted) assert.strictEqual(answer.status, 200, answer.body)
        const ids = submitted.map((answer) => (JSON.parse(answer.body) as { request_id: string }).request_id)
        const read = yield* Effect.forEach(ids, (id) => send(`${url}/jobs/${id}`, { method: "GET" }), {
          concurrency: 4
        })
        read.forEach((answer, i) => {
          assert.strictEqual(answer.status, 200, answer.body)
          assert.strictEqual((JSON.parse(answer.body) as { request_id: string }).request_id, ids[i])
        })
        assert.strictEqual(yield* supervisor.stop("SIGTERM"), 0)
      })
    )
  )

  it.live("SERVER_PROCESSES=2 without REDIS_URL exits 1 with one line naming REDIS_URL", () =>
    Effect.gen(function* () {
      const supervisor = yield* ChildProcess.start(entry("bin.ts"), { PORT: "0", SERVER_PROCESSES: "2", REDIS_URL: "" })
      assert.strictEqual(yield* supervisor.exited(), 1)
      const lines = supervisor.output().trim().split("\n")
      assert.strictEqual(lines.length, 1, supervisor.output())
      assert.match(lines[0] ?? "", /^vendorflow-server: .*REDIS_URL/)
    })
  )

  it.live("a port in use stops vendorflow-server with exit 1 and a line that says so", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const taken = yield* Effect.acquireRelease(
          Effect.callback<Server>((resume) => {
            const server = createServer()
            server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.sync(() => server.close())
        )
        const { port } = taken.address() as AddressInfo
        const server = yield* ChildProcess.start(entry("bin.ts"), { PORT: String(port) })
        assert.strictEqual(yield* server.exited(), 1)
        assert.match(server.output(), new RegExp(`vendorflow-server: listen EADDRINUSE.*:${port}\\n`))
      })
    )
  )

  it.live("with NODE_ENV=production a development secret stops vendorflow-server with one line naming it", () =>
    Effect.gen(function* () {
      const production = {
        NODE_ENV: "production",
        PORT: "0",
        VENDORFLOW_ADAPTERS: "@vendorflow/adapter-mock-sync,@vendorflow/adapter-mock-async"
      }
      for (const [env, setting] of [
        [{}, /^vendorflow-server: .*WEBHOOK_SECRET/m],
        [{ WEBHOOK_SECRET: "vendorflow-dev-secret" }, /^vendorflow-server: .*WEBHOOK_SECRET/m],
        [{ WEBHOOK_SECRET: "ours" }, /^vendorflow-server: CALLBACK_TOKEN_SECRET is the development default/m]
      ] as const) {
        const server = yield* ChildProcess.start(entry("bin.ts"), { ...production, ...env })
        assert.strictEqual(yield* server.exited("20 seconds"), 1, server.output())
        const lines = server
          .output()
          .split("\n")
          .filter((line) => line.startsWith("vendorflow-server: "))
        assert.strictEqual(lines.length, 1, server.output())
        assert.match(lines[0] ?? "", setting)
      }
    })
  )

  it.live("SERVER_PROCESSES=abc exits 1 with one line naming the setting", () =>
    Effect.gen(function* () {
      const supervisor = yield* ChildProcess.start(entry("bin.ts"), { PORT: "0", SERVER_PROCESSES: "abc" })
      assert.strictEqual(yield* supervisor.exited(), 1)
      const lines = supervisor.output().trim().split("\n")
      assert.strictEqual(lines.length, 1, supervisor.output())
      assert.match(lines[0] ?? "", /^vendorflow-server: SERVER_PROCESSES .*"abc"/)
    })
  )
})

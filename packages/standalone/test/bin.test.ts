import { assert, describe, it } from "@effect/vitest"
import { ChildProcess } from "@vendorflow/core/testing"
import { Effect, Schedule } from "effect"
import { afterAll } from "vitest"
import { type AddressInfo, createServer, type Server } from "node:net"
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

// The processes' database, in a folder the first one creates.
const folder = join(tmpdir(), `vendorflow-bin-${crypto.randomUUID()}`)
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const ports = {
  PORT: "0",
  MOCK_SYNC_PORT: "0",
  MOCK_ASYNC_PORT: "0",
  SQLITE_PATH: join(folder, "vendorflow.db")
}

// Starts the process with `env`, runs one job for `vendor` until it is finished, and stops the
// process with SIGTERM: the job's status, and the exit code.
const runOne = (vendor: "sync" | "async", env: Record<string, string>) =>
  Effect.gen(function* () {
    const all = yield* ChildProcess.start(bin, { ...ports, ...env })
    const [, url] = yield* all.waitFor(/at (http:\/\/\S+): API docs/)
    const submitted = yield* Effect.promise(() =>
      fetch(`${url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ vendor })
      }).then((r) => r.json() as Promise<{ request_id: string }>)
    )
    const read = Effect.promise(() =>
      fetch(`${url}/jobs/${submitted.request_id}`).then((r) => r.json() as Promise<{ status: string }>)
    )
    const job = yield* read.pipe(
      Effect.repeat({
        schedule: Schedule.spaced("20 millis"),
        until: (j) => j.status === "complete" || j.status === "failed",
        times: 500
      })
    )
    return { status: job.status, code: yield* all.stop("SIGTERM") }
  })

// A port some other process holds for the scope.
const takenPort = Effect.map(
  Effect.acquireRelease(
    Effect.callback<Server>((resume) => {
      const server = createServer()
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.sync(() => server.close())
  ),
  (server) => (server.address() as AddressInfo).port
)

// Starts the process with `env`, which must stop it at start-up: exit code 1 and its one line.
const failsToStart = (env: Record<string, string>) =>
  Effect.gen(function* () {
    const all = yield* ChildProcess.start(bin, { ...ports, ...env })
    assert.strictEqual(yield* all.exited("20 seconds"), 1, all.output())
    const lines = all.output().trim().split("\n")
    assert.strictEqual(lines.length, 1, all.output())
    return lines[0] ?? ""
  })

describe("the process", () => {
  it.live("vendorflow (npm start's all-in-one process) runs a sync job to completion and exits 0 on SIGTERM", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* runOne("sync", { MOCK_SYNC_LATENCY_MS: "0-20" }), { status: "complete", code: 0 })
    })
  )

  it.live("with CALLBACK_TOKEN_SECRET set it completes async jobs: tokens made and checked with it", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* runOne("async", { MOCK_ASYNC_DELAY_MS: "0-50", CALLBACK_TOKEN_SECRET: "a secret of our own" }),
        { status: "complete", code: 0 }
      )
    })
  )

  it.live("with NODE_ENV=production a development secret stops it with one line naming it", () =>
    Effect.gen(function* () {
      for (const [env, setting] of [
        [{ WEBHOOK_SECRET: "ours" }, /^vendorflow: CALLBACK_TOKEN_SECRET is the development default/m],
        [{ CALLBACK_TOKEN_SECRET: "ours" }, /^vendorflow: .*WEBHOOK_SECRET/m]
      ] as const) {
        const all = yield* ChildProcess.start(bin, { ...ports, NODE_ENV: "production", ...env })
        assert.strictEqual(yield* all.exited("20 seconds"), 1, all.output())
        const lines = all
          .output()
          .split("\n")
          .filter((line) => line.startsWith("vendorflow: "))
        assert.strictEqual(lines.length, 1, all.output())
        assert.match(lines[0] ?? "", setting)
      }
    })
  )

  it.live("a port in use stops it with exit 1 and one line that says so, as for the other bins", () =>
    Effect.scoped(
      Effect.gen(function* () {
        for (const setting of ["PORT", "MOCK_SYNC_PORT", "MOCK_ASYNC_PORT"]) {
          const port = yield* takenPort
          const line = yield* failsToStart({ [setting]: String(port) })
          assert.match(line, new RegExp(`^vendorflow: listen EADDRINUSE.*:${port}$`), setting)
        }
      })
    )
  )

  it.live("a malformed API_KEYS stops it with exit 1 and one line naming the entry, not its secret", () =>
    Effect.gen(function* () {
      const line = yield* failsToStart({ API_KEYS: "alice:first-secret,bob-without-colon" })
      assert.match(line, /^vendorflow: .*API_KEYS: entry 2 /)
      assert.notInclude(line, "first-secret")
    })
  )
})

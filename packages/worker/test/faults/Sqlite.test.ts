/**
 * The SQLite backend from where a user stands, every piece a real process: the all-in-one killed
 * with SIGKILL a second after 200 jobs were accepted and started again on the same file, and a
 * server with two workers sharing one file under one vendor limit. The mock vendors run as
 * processes of their own, so their records of every call survive the kill.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Stack } from "@vendorflow/dev-stack"
import { RedisServer } from "@vendorflow/redis/testing"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Audit from "./Audit.ts"

const settings: Stack.Settings = {}

/** A database file in a folder of its own, removed with the test's scope. */
const scratchFile = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "vendorflow-sqlite-"))),
  (folder) => Effect.sync(() => rmSync(folder, { recursive: true, force: true }))
).pipe(Effect.map((folder) => join(folder, "vendorflow.db")))

const submitAll = (api: string, vendors: ReadonlyArray<string>) =>
  Effect.forEach(vendors, (vendor, n) => Client.submit(api, { vendor, n }), { concurrency: 50 }).pipe(
    Effect.map((submitted) => {
      assert.deepStrictEqual(
        submitted.filter((r) => r.status !== 200),
        [],
        "every POST /jobs accepted"
      )
      return submitted.map((r) => r.body.request_id ?? "")
    })
  )

/** Jobs the vendors saw called more often than their attempts: two live attempts at once. */
const calledBeyondAttempts = (
  jobs: ReadonlyMap<string, Client.JobView>,
  arrived: ReadonlyArray<Client.Arrival>
): ReadonlyArray<string> => {
  const calls = new Map<string, number>()
  for (const arrival of arrived) {
    if (arrival.jobId !== null) calls.set(arrival.jobId, (calls.get(arrival.jobId) ?? 0) + 1)
  }
  return [...calls].flatMap(([id, n]) =>
    n > (jobs.get(id)?.attempts ?? 0) ? [`${id}: ${n} calls, ${jobs.get(id)?.attempts} attempts`] : []
  )
}

describe("SQLite backend", () => {
  it.live(
    "npm start killed with SIGKILL a second after 200 jobs were accepted: started again on the file, all complete",
    () =>
      Effect.gen(function* () {
        const path = yield* scratchFile
        const sync = yield* Stack.mockSync(settings, {})
        const async = yield* Stack.mockAsync(settings, { env: { MOCK_ASYNC_DELAY_MS: "200-600" } })
        const port = yield* RedisServer.freePort.pipe(Effect.orDie)
        const env = {
          SQLITE_PATH: path,
          PORT: String(port),
          MOCK_SYNC_URL: sync.url,
          MOCK_ASYNC_URL: async.url,
          QUEUE_VISIBILITY_TIMEOUT: "3 seconds",
          SWEEP_INTERVAL: "1 second",
          VENDOR_ASYNC_CALLBACK_DEADLINE: "5 seconds"
        }
        const first = yield* Stack.standalone(settings, { env })
        const started = Date.now()
        const ids = yield* submitAll(
          first.url,
          Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? "sync" : "async"))
        )
        yield* Effect.sleep("1 second")
        assert.strictEqual(yield* first.process.stop("SIGKILL"), null)
        const second = yield* Stack.standalone(settings, { env, name: "all-in-one-again" })
        const finished = yield* Client.awaitAll(second.url, ids, "45 seconds")
        const arrived = [...(yield* Client.arrivals(sync.url)), ...(yield* Client.arrivals(async.url))]
        const complete = [...finished.values()].filter((job) => job.status === "complete").length
        assert.strictEqual(complete, 200, "every accepted job completed")
        assert.deepStrictEqual(calledBeyondAttempts(finished, arrived), [], "jobs called twice by one attempt")
        yield* Effect.logInfo(
          `kill -9 of the all-in-one on SQLite: ${complete}/200 complete, ${arrived.length} vendor calls, ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s`
        )
      }),
    60_000
  )

  it.live("a server and two workers on one file share the vendor's limit", () =>
    Effect.gen(function* () {
      const count = Number(process.env["SQLITE_SHARED_JOBS"] ?? 200)
      const path = yield* scratchFile
      const limit = { MOCK_SYNC_RATE_LIMIT: "20/1s" }
      const sync = yield* Stack.mockSync(settings, { env: { ...limit, MOCK_SYNC_LATENCY_MS: "50-150" } })
      // The workers pace below the vendor's limit, as in the other fault scenarios: a call that
      // leaves late on a busy machine must not put a second over it. `SQLITE_WORKER_PACE=20/1s`
      // runs them at the vendor's limit itself.
      const pace = { VENDOR_SYNC_RATE_LIMIT: process.env["SQLITE_WORKER_PACE"] ?? `${Audit.workerPace}/1s` }
      const env = { ...limit, ...pace, SQLITE_PATH: path, MOCK_SYNC_URL: sync.url }
      const server = yield* Stack.server(settings, { env })
      yield* Effect.all(
        [1, 2].map((n) => Stack.worker(settings, { env, name: `worker-${n}` })),
        { concurrency: "unbounded" }
      )
      const started = Date.now()
      const ids = yield* submitAll(
        server.url,
        Array.from({ length: count }, () => "sync")
      )
      const finished = yield* Client.awaitAll(server.url, ids, "120 seconds")
      const seconds = (Date.now() - started) / 1000
      const arrived = yield* Client.arrivals(sync.url)
      const complete = [...finished.values()].filter((job) => job.status === "complete").length
      const worst = Client.worstWindow(arrived)
      const refused = arrived.filter((arrival) => arrival.status === 429).length
      assert.strictEqual(complete, count)
      assert.isAtMost(worst, 20, "calls in the busiest second at the vendor")
      assert.deepStrictEqual(calledBeyondAttempts(finished, arrived), [])
      yield* Effect.logInfo(
        `server + 2 workers on one SQLite file, paced at ${pace.VENDOR_SYNC_RATE_LIMIT}: ` +
          `${complete}/${count} complete in ${seconds.toFixed(1)} s, ` +
          `${arrived.length} calls, ${refused} refused (429), busiest second ${worst}/20`
      )
    })
  )
})

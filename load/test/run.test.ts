/**
 * `npm run load` as a user runs it, shortened: the runner starts the all-in-one process on free
 * ports, runs the original scenario with its stages 33 times shorter, and prints the summary; the
 * test reads the exported summary and the printed one.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "vitest"
import type { Summary } from "../src/Summary.ts"

const runner = fileURLToPath(new URL("../run.ts", import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), "vendorflow-load-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runLoad = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<Outcome>((resolve) => {
    execFile(
      process.execPath,
      ["--conditions=@vendorflow/source", runner, ...args],
      { env: { ...process.env, ...env }, timeout: 55_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resolve({ code, stdout, stderr })
      }
    )
  })

describe("npm run load", () => {
  it("runs the scenario in smoke mode against the embedded stack and prints a k6-style summary", async () => {
    const exported = join(scratch, "summary.json")
    const outcome = await runLoad(
      ["--duration-scale=0.03", "--finish-deadline=3s", "--graceful-stop=5s", `--summary-export=${exported}`],
      // Fast vendors, so jobs finish within the short deadline.
      { MOCK_SYNC_LATENCY_MS: "0-20", MOCK_ASYNC_DELAY_MS: "50-200" }
    )
    assert.isTrue(existsSync(exported), `no summary; exit ${outcome.code}\n${outcome.stdout}\n${outcome.stderr}`)
    const summary = JSON.parse(readFileSync(exported, "utf8")) as Summary
    // Whether the thresholds hold depends on how busy the machine is (the whole suite runs
    // alongside); what must hold is that the verdict, the values and the exit code agree.
    assert.strictEqual(outcome.code, summary.ok ? 0 : 99, `exit ${outcome.code}\n${outcome.stdout}\n${outcome.stderr}`)

    assert.strictEqual(summary.profile, "scenario")
    assert.strictEqual(summary.vusMax, 200)
    assert.match(summary.target, /^embedded/)
    assert.isAbove(summary.httpReqs.count, 0)
    assert.isAbove(summary.httpReqs.rate, 0)
    assert.strictEqual(summary.httpReqFailed.failed, 0)
    assert.deepStrictEqual(Object.keys(summary.httpReqDurationByName).sort(), ["GET /jobs/{id}", "POST /jobs"])
    const latency = summary.httpReqDuration
    assert.isTrue(latency.min <= latency.med && latency.med <= latency.p95, "percentiles in order")
    assert.isTrue(latency.p95 <= latency.p99 && latency.p99 <= latency.max, "percentiles in order")
    // A finished iteration made one POST and one GET; one cut off at the end made one or none.
    const { count: iterations, interrupted } = summary.iterations
    assert.isAbove(iterations, 0)
    assert.isAtLeast(summary.httpReqs.count, 2 * iterations)
    assert.isAtMost(summary.httpReqs.count, 2 * iterations + interrupted)
    assert.strictEqual(summary.checks.fails, 0)
    assert.isAtLeast(summary.jobs.created, iterations)
    assert.isAtMost(summary.jobs.created, iterations + interrupted)
    assert.strictEqual(summary.jobs.complete + summary.jobs.failed + summary.jobs.unfinished, summary.jobs.created)
    assert.isAbove(summary.jobs.complete, 0)

    assert.deepStrictEqual(
      summary.thresholds.map((t) => [t.metric, t.threshold, t.value]),
      [
        ["http_req_duration", "p(95)<2000", latency.p95],
        ["http_req_failed", "rate<0.1", summary.httpReqFailed.rate]
      ]
    )
    assert.deepStrictEqual(
      summary.thresholds.map((t) => t.ok),
      [latency.p95 < 2000, summary.httpReqFailed.rate < 0.1]
    )
    assert.strictEqual(
      summary.ok,
      summary.thresholds.every((t) => t.ok)
    )

    const mark = (ok: boolean | undefined) => (ok === true ? "✓" : "✗")
    assert.include(outcome.stdout, `${mark(summary.thresholds[0]?.ok)} http_req_duration`)
    assert.include(outcome.stdout, `${mark(summary.thresholds[1]?.ok)} http_req_failed`)
    for (const line of ["http_reqs", "iterations", "jobs", "thresholds"]) assert.include(outcome.stdout, line)
    assert.match(outcome.stderr, /running \(\s*\d+(\.\d)?s\), +\d+\/200 VUs, \d+ iterations \| +\d+ req\/s/)
  }, 60_000)

  it("exits 99 when a threshold fails, as k6 does, and 1 on a usage error", async () => {
    // A port nobody listens on: every request fails, so http_req_failed's threshold does too.
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const address = server.address()
        server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
      })
    })
    const failing = await runLoad(
      [`--url=http://127.0.0.1:${closed}`, "--duration-scale=0.01", "--finish-deadline=1s"],
      {}
    )
    assert.strictEqual(failing.code, 99, `${failing.stdout}\n${failing.stderr}`)
    assert.include(failing.stdout, "✗ http_req_failed rate<0.1 (100.00%)")
    assert.include(failing.stdout, "POST /jobs: connect ECONNREFUSED")

    const usage = await runLoad(["--profile=nope"], {})
    assert.strictEqual(usage.code, 1)
    assert.include(usage.stderr, "no profile nope")
  })
})

/**
 * A sync vendor that misbehaves per job on cue (`MOCK_SYNC_FAULTS`, see the mock's `FaultScript`),
 * against the split deployment on Redis: 5xx, 429 storms with `Retry-After`, answers slower than the
 * adapter's timeout, and garbage bodies. Each job is dealt a script; at the end each job's calls, as
 * the vendor recorded them, must be exactly its script followed by one good answer (or its script up
 * to the attempt limit, or up to a permanent error), and its stored outcome must match.
 *
 * A per-job script makes the vendor fail most first calls, which the circuit breaker rightly reads as
 * a vendor that is down; these scenarios set it aside (`CIRCUIT_FAILURES`) to measure the retry
 * policy alone. `Outages.test.ts` is the breaker's. Jobs come in at 10 a second, so that the gaps
 * between a job's calls show its backoff rather than a queue behind the first burst.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Client } from "@vendorflow/dev-stack"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

const limit = Audit.vendorLimit

// Out of the way of per-job scripts (see the module docs).
const noCircuit = { CIRCUIT_FAILURES: "1000" }

const start = (syncEnv: Record<string, string>, env: Record<string, string> = {}) =>
  Stack.start({
    workers: 1,
    redisUrl: Stack.redisUrl,
    vendors: ["sync"],
    syncLimit: `${limit}/1s`,
    syncLatency: "20-80",
    syncEnv,
    env: { ...Audit.pacedEnv, VENDOR_SYNC_CONCURRENCY: "20", ...env }
  })

/** `complete after 503,503,200`: a job's outcome and what the vendor answered each of its calls. */
const signature = (job: Client.JobView | undefined, calls: ReadonlyArray<Client.Arrival>) =>
  `${job?.status ?? "missing"}${job?.error === undefined ? "" : ` ${job.error.reason}`} after ` +
  calls.map((call) => call.fault ?? String(call.status)).join(",")

/**
 * Starts a stack whose sync vendor plays `faults`, submits `jobs` sync jobs and settles them;
 * asserts that the jobs' signatures are `expected`, that each job's attempts equal its calls, and
 * that the limit held.
 */
const scripted = (options: {
  readonly jobs: number
  readonly faults: string
  readonly env?: Record<string, string>
  readonly expected: Readonly<Record<string, number>>
}) =>
  Effect.gen(function* () {
    const stack = yield* start({ MOCK_SYNC_FAULTS: options.faults }, options.env)
    const started = Date.now()
    const ids = yield* Audit.submitMany(stack, options.jobs, "sync", 10)
    const outcome = yield* Audit.settle(stack, ids, "60 seconds")
    const seconds = (Date.now() - started) / 1000
    const calls = Audit.byJob(outcome.sync)
    assert.deepStrictEqual(
      Audit.tallyOf(ids.map((id) => signature(outcome.jobs.get(id), calls.get(id) ?? []))),
      options.expected,
      "each job's calls and outcome"
    )
    assert.deepStrictEqual(
      ids.filter((id) => outcome.jobs.get(id)?.attempts !== (calls.get(id) ?? []).length),
      [],
      "one attempt per vendor call"
    )
    const worst = Audit.assertLimitHeld(outcome.sync, limit)
    return { outcome, worst, seconds }
  })

describe("vendor faults", () => {
  it.live("5xx per job: retried with growing backoff up to 5 attempts, then failed Unavailable", () =>
    Effect.gen(function* () {
      const { outcome, seconds, worst } = yield* scripted({
        jobs: 40,
        faults: "503x3|500,502|503x9|ok",
        env: noCircuit,
        expected: {
          "complete after 503,503,503,200": 10,
          "complete after 500,502,200": 10,
          "failed Unavailable after 503,503,503,503,503": 10,
          "complete after 200": 10
        }
      })
      // Full jitter: the k-th retry waits a uniform draw from [0, 2^(k-1) s], so the mean gap grows.
      // A retry's mean is of 10-30 draws, with the rate limit's waits on the top: the second and
      // third can come out level (1,767 and 1,734 ms in one CI run), so from the second on each is
      // compared with the one two retries before, which waits four times as long on average.
      const means = Audit.meanGaps(Audit.gapsByRetry(outcome.sync))
      const grew = (later: number, earlier: number) =>
        assert.isAbove(means[later] ?? 0, means[earlier] ?? 0, `mean gap by retry ${JSON.stringify(means)}`)
      grew(1, 0)
      grew(2, 0)
      grew(3, 1)
      yield* Audit.report(
        "5xx per job",
        outcome,
        `${outcome.sync.length} calls; mean gap before retry 1..4: ${means.join(", ")} ms; ` +
          `worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )

  it.live("429 storms: Retry-After honoured (never called back sooner), up to 5 attempts", () =>
    Effect.gen(function* () {
      const { outcome, seconds, worst } = yield* scripted({
        jobs: 40,
        faults: "429:1,429:2|429:1|429:1x9|ok",
        expected: {
          "complete after 429:1,429:2,200": 10,
          "complete after 429:1,200": 10,
          "failed RateLimited after 429:1,429:1,429:1,429:1,429:1": 10,
          "complete after 200": 10
        }
      })
      let closest = Number.POSITIVE_INFINITY
      for (const calls of Audit.byJob(outcome.sync).values()) {
        for (let k = 1; k < calls.length; k++) {
          const asked = Number(/^429:(\d+)$/.exec(calls[k - 1]?.fault ?? "")?.[1] ?? "0") * 1000
          const gap = (calls[k]?.at ?? 0) - (calls[k - 1]?.at ?? 0)
          assert.isAtLeast(gap, asked, `called again ${gap} ms after a 429 asking for ${asked} ms`)
          closest = Math.min(closest, gap - asked)
        }
      }
      yield* Audit.report(
        "429 storms",
        outcome,
        `${outcome.sync.length} calls; every retry at least Retry-After later (closest: +${closest} ms); ` +
          `worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )

  it.live("timeouts: a vendor slower than VENDOR_SYNC_TIMEOUT is given up on and retried", () =>
    Effect.gen(function* () {
      const { outcome, seconds, worst } = yield* scripted({
        jobs: 40,
        faults: "slow:2500|slow:2500x2|slow:2500x9|ok",
        env: { ...noCircuit, VENDOR_SYNC_TIMEOUT: "1s", VENDOR_SYNC_MAX_ATTEMPTS: "3" },
        expected: {
          "complete after slow:2500,200": 10,
          "complete after slow:2500,slow:2500,200": 10,
          "failed Unavailable after slow:2500,slow:2500,slow:2500": 10,
          "complete after 200": 10
        }
      })
      // The vendor saw each slow call abandoned (499) by the adapter's timeout.
      const slow = outcome.sync.filter((call) => call.fault === "slow:2500")
      assert.deepStrictEqual(
        slow.filter((call) => call.status !== 499),
        []
      )
      // Three attempts (VENDOR_SYNC_MAX_ATTEMPTS) give two gaps: timeout plus a backoff from [0, 1 s], then [0, 2 s].
      const means = Audit.meanGaps(Audit.gapsByRetry(outcome.sync))
      assert.isAbove(means[1] ?? 0, means[0] ?? 0, `mean gap by retry ${JSON.stringify(means)}`)
      yield* Audit.report(
        "timeouts",
        outcome,
        `${outcome.sync.length} calls, ${slow.length} abandoned at 1 s (vendor saw 499); mean gap before retry ` +
          `1..2: ${means.join(", ")} ms; worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )

  it.live("garbage bodies: an answer that is not what the vendor documents fails the job at once", () =>
    Effect.gen(function* () {
      const { outcome, seconds, worst } = yield* scripted({
        jobs: 21,
        faults: "garbage|ok|503,garbage",
        expected: {
          "failed InvalidResponse after garbage": 7,
          "complete after 200": 7,
          "failed InvalidResponse after 503,garbage": 7
        }
      })
      yield* Audit.report(
        "garbage bodies",
        outcome,
        `${outcome.sync.length} calls, no garbage answer retried; worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )
})

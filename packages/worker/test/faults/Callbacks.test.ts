/**
 * An async vendor whose callbacks misbehave on cue (`MOCK_ASYNC_CALLBACK_FAULTS`, see the mock's
 * `FaultScript`), against the split deployment on Redis: callbacks that never come (the deadline
 * sweep resubmits the job under the same idempotency key, then fails it with `callback_timeout`),
 * and callbacks that come twice or out of order (a stale attempt's callback after the job was
 * completed by a newer one). The vendor's `/arrivals` and `/callbacks` say what it was asked and
 * what it sent; every job must end complete or failed with a reason, and none may change after.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

const limit = Audit.vendorLimit
const deadlineMillis = 2000

const start = (callbackFaults: string, env: Record<string, string> = {}) =>
  Stack.start({
    workers: 1,
    redisUrl: Stack.redisUrl,
    vendors: ["async"],
    syncLimit: `${limit}/1s`,
    syncLatency: "20-80",
    asyncEnv: { MOCK_ASYNC_CALLBACK_FAULTS: callbackFaults, MOCK_ASYNC_RATE_LIMIT: `${limit}/1s` },
    env: {
      ...Audit.pacedEnv,
      VENDOR_ASYNC_CALLBACK_DEADLINE: `${deadlineMillis}ms`,
      SWEEP_INTERVAL: "500 millis",
      ...env
    }
  })

/** `complete after 2 calls; callbacks drop,delivered`: a job's outcome, calls and callbacks. */
const signature = (
  job: Stack.JobView | undefined,
  calls: ReadonlyArray<Stack.Arrival>,
  sent: ReadonlyArray<Stack.Callback>
) =>
  `${job?.status ?? "missing"}${job?.error === undefined ? "" : ` ${job.error.reason}`} after ${calls.length} ` +
  `call(s); callbacks ${sent.map((callback) => callback.fault ?? callback.outcome).join(",")}`

const callbacksByJob = (sent: ReadonlyArray<Stack.Callback>) => {
  const jobs = new Map<string, Array<Stack.Callback>>()
  for (const callback of sent) jobs.set(callback.jobId, [...(jobs.get(callback.jobId) ?? []), callback])
  return jobs
}

describe("callback faults", () => {
  it.live(
    "a vendor that never calls back: past the deadline the job is resubmitted, then failed callback_timeout",
    () =>
      Effect.gen(function* () {
        // Three attempts (deadlines) at most, so the jobs never called back fail within seconds.
        const stack = yield* start("drop,ok|dropx9|ok", { VENDOR_ASYNC_MAX_ATTEMPTS: "3" })
        const started = Date.now()
        const ids = yield* Audit.submitMany(stack, 30, "async")
        const outcome = yield* Audit.settle(stack, ids, "60 seconds")
        const seconds = (Date.now() - started) / 1000
        const calls = Audit.byJob(outcome.async)
        const sent = callbacksByJob(outcome.callbacks)
        assert.deepStrictEqual(
          Audit.tallyOf(ids.map((id) => signature(outcome.jobs.get(id), calls.get(id) ?? [], sent.get(id) ?? []))),
          {
            "complete after 2 call(s); callbacks drop,delivered": 10,
            "failed callback_timeout after 3 call(s); callbacks drop,drop,drop": 10,
            "complete after 1 call(s); callbacks delivered": 10
          }
        )
        // Resubmitted under the same idempotency key, and never before the deadline.
        for (const [id, mine] of calls) {
          assert.deepStrictEqual(new Set(mine.map((call) => call.idempotencyKey)), new Set([id]))
        }
        const gaps = Audit.gapsByRetry(outcome.async).flat()
        assert.isAtLeast(Math.min(...gaps), deadlineMillis, "a job is called again only after its deadline")
        const worst = Audit.assertLimitHeld(outcome.async, limit)
        yield* Audit.report(
          "async vendor never calls back",
          outcome,
          `${outcome.async.length} calls, ${outcome.callbacks.filter((c) => c.outcome === "dropped").length} ` +
            `callbacks dropped; resubmitted ${Math.min(...gaps)}–${Math.max(...gaps)} ms after the previous call ` +
            `(deadline ${deadlineMillis} ms); worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
        )
      })
  )

  it.live("duplicate and out-of-order callbacks: the first good one completes the job, later ones change nothing", () =>
    Effect.gen(function* () {
      // "hold,ok": the first attempt's callback is held until the resubmitted attempt's has been
      // sent, so it arrives after the job was completed by the newer one.
      const stack = yield* start("duplicate|hold,ok|ok")
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 30, "async")
      // 10 jobs × 2 (duplicate) + 10 × 2 (held and newer) + 10 × 1.
      const outcome = yield* Audit.settle(stack, ids, "60 seconds", { callbacks: 50 })
      const seconds = (Date.now() - started) / 1000
      const calls = Audit.byJob(outcome.async)
      const sent = callbacksByJob(outcome.callbacks)
      const label = (callback: Stack.Callback) => callback.fault ?? "ok"
      assert.deepStrictEqual(
        Audit.tallyOf(
          ids.map(
            (id) =>
              `${outcome.jobs.get(id)?.status} after ${(calls.get(id) ?? []).length} call(s); callbacks ` +
              (sent.get(id) ?? []).map(label).join(",")
          )
        ),
        {
          "complete after 1 call(s); callbacks duplicate,duplicate": 10,
          "complete after 2 call(s); callbacks ok,hold": 10,
          "complete after 1 call(s); callbacks ok": 10
        }
      )
      // Each held callback reached the webhook after its job had been completed by the newer one.
      for (const [id, mine] of sent) {
        const held = mine.find((callback) => callback.fault === "hold")
        if (held === undefined) continue
        assert.isAbove(held.at, Date.parse(outcome.jobs.get(id)?.updated_at ?? ""), `job ${id}: held callback late`)
      }
      // How the webhook answered the repeats: a copy with the same signature is refused as a replay
      // (401) and the vendor sends it again, signed afresh; the job is returned as it is.
      const copies = outcome.callbacks.filter((callback) => callback.fault === "duplicate")
      const stale = outcome.callbacks.filter((callback) => callback.fault === "hold")
      const answers = (list: ReadonlyArray<Stack.Callback>) =>
        Object.entries(Audit.tallyOf(list.map((callback) => `${callback.status ?? "none"}`)))
          .map(([status, n]) => `${n}× ${status}`)
          .join(", ")
      yield* Audit.report(
        "duplicate and out-of-order callbacks",
        outcome,
        `${outcome.async.length} calls, ${outcome.callbacks.length} callbacks: ${copies.length} sent as duplicate ` +
          `pairs (last answered ${answers(copies)}; ${copies.filter((c) => c.attempts > 1).length} refused first ` +
          `as replays), ${stale.length} stale, after a newer attempt had completed the job (last answered ` +
          `${answers(stale)}); no job changed after completing; ${seconds.toFixed(0)} s`
      )
    })
  )
})

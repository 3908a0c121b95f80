/**
 * Deliveries held longer than the queue's visibility timeout, against the split deployment on
 * Redis: a backlog that waits on the vendor's rate limit for many times the timeout across several
 * workers, and a vendor whose answers take longer than it. A worker renews what it holds (the
 * stream entry and the job's lease in the store), so no other worker takes a job over from a live
 * one: the vendor's own record must show each job called once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

describe("leases", () => {
  // Held deliveries outlast the visibility timeout many times over: a worker that did not renew them
  // would lose them to another and the vendor would be called twice (docs/reliability.md).
  it.live(
    "a backlog waiting on the rate limit for many visibility timeouts: 3 workers × 50 in flight, 10/s, 600 jobs, each called once",
    () =>
      Effect.gen(function* () {
        const vendorLimit = 10
        const stack = yield* Stack.start({
          workers: 3,
          redisUrl: Stack.redisUrl,
          vendors: ["sync"],
          syncLimit: `${vendorLimit}/1s`,
          syncLatency: "20-80",
          // Paced at 80% of the vendor's limit (see Audit.workerPace): 150 calls wait at once for slots
          // 1/8 s apart, the last ~19 s, nearly four visibility timeouts.
          env: { VENDOR_SYNC_CONCURRENCY: "50", VENDOR_SYNC_RATE_LIMIT: "8/1s", QUEUE_VISIBILITY_TIMEOUT: "5 seconds" }
        })
        const started = Date.now()
        const ids = yield* Audit.submitMany(stack, 600, "sync")
        // Waiting on the vendor's record rather than polling 600 jobs keeps the machine free for the
        // stack (and for the fault files that run beside this one).
        yield* Audit.answered(stack, 600, "150 seconds", "1 second")
        const outcome = yield* Audit.settle(stack, ids, "30 seconds")
        const seconds = (Date.now() - started) / 1000
        assert.strictEqual(outcome.complete, 600)
        const calls = Audit.byJob(outcome.sync)
        assert.deepStrictEqual(
          ids
            .filter((id) => calls.get(id)?.length !== 1)
            .map((id) => [id, outcome.jobs.get(id)?.attempts, (calls.get(id) ?? []).map((call) => call.status)]),
          [],
          "the vendor's record: each job id exactly once (job, attempts, what the vendor answered each call)"
        )
        const worst = Audit.assertLimitHeld(outcome.sync, vendorLimit)
        yield* Audit.report(
          "backlog waiting on the rate limit",
          outcome,
          `${outcome.sync.length} calls for 600 jobs, each job id once at the vendor; worst 1 s ${worst}/${vendorLimit}; ` +
            `${seconds.toFixed(0)} s`
        )
      }),
    { timeout: 240_000 }
  )

  it.live("a vendor slower than the visibility timeout: each job called once, none taken over", () =>
    Effect.gen(function* () {
      const stack = yield* Stack.start({
        workers: 2,
        redisUrl: Stack.redisUrl,
        vendors: ["sync"],
        syncLimit: `${Audit.vendorLimit}/1s`,
        // Every answer takes 2 to 3 timeouts; the adapter's own timeout (10 s) is longer still.
        syncLatency: "4000-6000",
        env: { ...Audit.pacedEnv, VENDOR_SYNC_CONCURRENCY: "20", QUEUE_VISIBILITY_TIMEOUT: "2 seconds" }
      })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 30, "sync")
      const outcome = yield* Audit.settle(stack, ids, "60 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, 30)
      assert.deepStrictEqual(
        [...Audit.byJob(outcome.sync).values()].filter((calls) => calls.length !== 1),
        [],
        "each job called once"
      )
      const worst = Audit.assertLimitHeld(outcome.sync, Audit.vendorLimit)
      yield* Audit.report(
        "vendor slower than the visibility timeout",
        outcome,
        `${outcome.sync.length} calls of 4–6 s with a 2 s visibility timeout, each job once; worst 1 s ` +
          `${worst}/${Audit.vendorLimit}; ${seconds.toFixed(0)} s`
      )
    })
  )
})

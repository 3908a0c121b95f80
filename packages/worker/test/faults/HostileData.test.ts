/**
 * Vendors that send what no vendor should, against the split deployment on Redis: a sync vendor
 * answering JSON nested 20,000 levels deep or 6 MiB large (`MOCK_SYNC_FAULTS` `deep`, `huge`), and
 * an async vendor whose callback is nested 20,000 deep (`MOCK_ASYNC_CALLBACK_FAULTS` `deep`). A bad
 * answer fails its job `InvalidResponse` after one call, never delivered again (which would call
 * the vendor again); a bad callback is refused (400) without spending its job, which the deadline
 * resubmits and a good callback completes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

const limit = Audit.vendorLimit

describe("hostile vendor data", () => {
  it.live("deep and huge answers fail their jobs after one call; a deep callback is refused, the job completes", () =>
    Effect.gen(function* () {
      const stack = yield* Stack.start({
        workers: 1,
        redisUrl: Stack.redisUrl,
        syncLimit: `${limit}/1s`,
        syncLatency: "20-80",
        syncEnv: { MOCK_SYNC_FAULTS: "deep|huge|ok" },
        asyncEnv: { MOCK_ASYNC_CALLBACK_FAULTS: "deep,ok", MOCK_ASYNC_RATE_LIMIT: `${limit}/1s` },
        env: { ...Audit.pacedEnv, VENDOR_ASYNC_CALLBACK_DEADLINE: "2s", SWEEP_INTERVAL: "500 millis" }
      })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 40, (i) => (i < 30 ? "sync" : "async"))
      // Each async job's first callback is deep (refused, tried 5 times by the vendor), its second good.
      const outcome = yield* Audit.settle(stack, ids, "60 seconds", { callbacks: 20 })
      const seconds = (Date.now() - started) / 1000
      const sync = Audit.byJob(outcome.sync)
      const async = Audit.byJob(outcome.async)
      const fate = (id: string) => {
        const job = outcome.jobs.get(id)
        const calls = (sync.get(id) ?? async.get(id) ?? []).map((call) => call.fault ?? "ok").join(",")
        return `${job?.status}${job?.error === undefined ? "" : ` ${job.error.reason}`}: ${calls}`
      }
      assert.deepStrictEqual(Audit.tallyOf(ids.map(fate)), {
        "failed InvalidResponse: deep": 10,
        "failed InvalidResponse: huge": 10,
        "complete: ok": 10,
        "complete: ok,ok": 10
      })
      for (const id of ids.filter((id) => outcome.jobs.get(id)?.status === "failed")) {
        assert.match(outcome.jobs.get(id)?.error?.message ?? "", /nested deeper than 64 levels|more than 5242880 bytes/)
      }
      assert.strictEqual(outcome.deadLetters, 20, "each failed job dead-lettered (settle checks which)")
      const deep = outcome.callbacks.filter((callback) => callback.fault === "deep")
      assert.strictEqual(deep.length, 10)
      assert.deepStrictEqual(
        Audit.tallyOf(deep.map((callback) => `${callback.status}`)),
        { "400": 10 },
        "a deep callback is refused"
      )
      // The jobs whose callback was deep were resubmitted at their deadline, and completed by the next.
      const resubmitted = [...async.values()].filter((calls) => calls.length === 2).length
      assert.strictEqual(resubmitted, 10)
      const worst = Audit.assertLimitHeld(outcome.sync, limit)
      yield* Audit.report(
        "deep and huge answers and callbacks",
        outcome,
        `${outcome.sync.length} sync calls, one a job: 10 answers nested 20,000 deep and 10 of 6 MiB failed ` +
          `InvalidResponse and were dead-lettered, none delivered again; 10 callbacks nested 20,000 deep answered ` +
          `${[...new Set(deep.map((c) => c.status))].join(", ")} (the vendor gave up after ${deep[0]?.attempts} ` +
          `tries), their jobs resubmitted at the 2 s deadline and completed by the next callback; worst 1 s ` +
          `${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )
})

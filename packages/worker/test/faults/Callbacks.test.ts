/**
 * An async vendor whose callbacks misbehave on cue (`MOCK_ASYNC_CALLBACK_FAULTS`, see the mock's
 * `FaultScript`), against the split deployment on Redis: callbacks that never come (the deadline
 * sweep resubmits the job under the same idempotency key, then fails it with `callback_timeout`),
 * callbacks that come twice or out of order (a stale attempt's callback after the job was
 * completed by a newer one), callbacks that come after the deadline has resubmitted their job, a
 * late callback racing an operator's retry, and callbacks arriving while the store refuses writes.
 * The vendor's `/arrivals` and `/callbacks` say what it was asked and what it sent, and the answer
 * each callback got; every job must end complete or failed with a reason, none may change after,
 * and every callback answered 2xx must be the data its job holds (or come after it completed).
 */
import { assert, describe, it } from "@effect/vitest"
import { RedisServer } from "@vendorflow/redis/testing"
import { Effect, Schedule } from "effect"
import { Client } from "@vendorflow/dev-stack"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

const limit = Audit.vendorLimit
const deadlineMillis = 2000

// The async vendor alone (one worker unless told), its callback deadline 2 s, swept every 0.5 s.
const start = (options: {
  readonly asyncEnv: Record<string, string>
  readonly env?: Record<string, string> | undefined
  readonly workers?: number | undefined
  readonly redisUrl?: string | undefined
}) =>
  Stack.start({
    workers: options.workers ?? 1,
    redisUrl: options.redisUrl ?? Stack.redisUrl,
    vendors: ["async"],
    syncLimit: `${limit}/1s`,
    syncLatency: "20-80",
    asyncEnv: { MOCK_ASYNC_RATE_LIMIT: `${limit}/1s`, ...options.asyncEnv },
    env: {
      ...Audit.pacedEnv,
      VENDOR_ASYNC_CALLBACK_DEADLINE: `${deadlineMillis}ms`,
      SWEEP_INTERVAL: "500 millis",
      ...options.env
    }
  })

/** `complete after 2 calls; callbacks drop,delivered`: a job's outcome, calls and callbacks. */
const signature = (
  job: Client.JobView | undefined,
  calls: ReadonlyArray<Client.Arrival>,
  sent: ReadonlyArray<Client.Callback>
) =>
  `${job?.status ?? "missing"}${job?.error === undefined ? "" : ` ${job.error.reason}`} after ${calls.length} ` +
  `call(s); callbacks ${sent.map((callback) => callback.fault ?? callback.outcome).join(",")}`

// How the webhook last answered each callback: `3× 200, 1× 409`.
const answers = (list: ReadonlyArray<Client.Callback>) =>
  Object.entries(Audit.tallyOf(list.map((callback) => `${callback.status ?? "none"}`)))
    .map(([status, n]) => `${n}× ${status}`)
    .join(", ")

const is2xx = (callback: Client.Callback) => callback.status !== null && callback.status >= 200 && callback.status < 300

const callbacksByJob = (sent: ReadonlyArray<Client.Callback>) => {
  const jobs = new Map<string, Array<Client.Callback>>()
  for (const callback of sent) jobs.set(callback.jobId, [...(jobs.get(callback.jobId) ?? []), callback])
  return jobs
}

describe("callback faults", () => {
  it.live(
    "a vendor that never calls back: past the deadline the job is resubmitted, then failed callback_timeout",
    () =>
      Effect.gen(function* () {
        // Three attempts (deadlines) at most, so the jobs never called back fail within seconds.
        const stack = yield* start({
          asyncEnv: { MOCK_ASYNC_CALLBACK_FAULTS: "drop,ok|dropx9|ok" },
          env: { VENDOR_ASYNC_MAX_ATTEMPTS: "3" }
        })
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
      const stack = yield* start({ asyncEnv: { MOCK_ASYNC_CALLBACK_FAULTS: "duplicate|hold,ok|ok" } })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 30, "async")
      // 10 jobs × 2 (duplicate) + 10 × 2 (held and newer) + 10 × 1.
      const outcome = yield* Audit.settle(stack, ids, "60 seconds", { callbacks: 50 })
      const seconds = (Date.now() - started) / 1000
      const calls = Audit.byJob(outcome.async)
      const sent = callbacksByJob(outcome.callbacks)
      const label = (callback: Client.Callback) => callback.fault ?? "ok"
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

  it.live("callbacks that come after the deadline has resubmitted their job complete it with their data", () =>
    Effect.gen(function* () {
      // Every callback comes 2.5-3 s after its call, past the 2 s deadline: the sweeper resubmits
      // each job before its first callback arrives, which finds it queued again or called again.
      const stack = yield* start({ workers: 2, asyncEnv: { MOCK_ASYNC_DELAY_MS: "2500-3000" } })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 100, "async")
      const outcome = yield* Audit.settle(stack, ids, "90 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, ids.length, "every job complete")
      assert.strictEqual(outcome.unapplied, 0)
      assert.strictEqual(outcome.deadLetters, 0)
      const calls = Audit.byJob(outcome.async)
      const resubmitted = [...calls.values()].filter((mine) => mine.length > 1).length
      assert.isAbove(resubmitted, 0, "jobs were resubmitted before their callback came")
      // With the audit (every callback answered 2xx holds or was superseded by one held), each job
      // holds the data of a callback that was answered 2xx.
      const sent = callbacksByJob(outcome.callbacks)
      assert.deepStrictEqual(
        ids.filter((id) => !(sent.get(id) ?? []).some(is2xx)),
        [],
        "jobs without a callback answered 2xx"
      )
      const worst = Audit.assertLimitHeld(outcome.async, limit)
      yield* Audit.report(
        "callbacks after the deadline's resubmit",
        outcome,
        `${outcome.async.length} calls (${resubmitted} jobs called again after the deadline resubmitted them); ` +
          `${outcome.callbacks.length} callbacks, last answered ${answers(outcome.callbacks)}; every job holds ` +
          `the data of a callback answered 2xx; worst 1 s ${worst}/${limit}; ` +
          `${seconds.toFixed(0)} s`
      )
    })
  )

  it.live("an operator's retry racing a late callback: the old run's callback is refused, the new run completes", () =>
    Effect.gen(function* () {
      // Run 1's callback comes 1.5 s late, after the 1 s deadline failed the job (ON_CALLBACK_TIMEOUT
      // fail); the operator retries each job as soon as it fails, so run 1's callback arrives around
      // run 2's call and callback.
      const stack = yield* start({
        workers: 2,
        asyncEnv: { MOCK_ASYNC_DELAY_MS: "200-400", MOCK_ASYNC_CALLBACK_FAULTS: "late:1500,ok" },
        env: {
          VENDOR_ASYNC_CALLBACK_DEADLINE: "1s",
          VENDOR_ASYNC_ON_CALLBACK_TIMEOUT: "fail",
          SWEEP_INTERVAL: "250 millis"
        }
      })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 30, "async")
      // The operator: every job that fails is sent round again, once, at once.
      const retriedAt = new Map<string, number>()
      yield* Effect.gen(function* () {
        const jobs = yield* Effect.forEach(
          ids.filter((id) => !retriedAt.has(id)),
          (id) => Client.readJob(stack.api, id),
          { concurrency: 10 }
        )
        for (const job of jobs.filter((job) => job.status === "failed")) {
          const answer = yield* Effect.promise(() =>
            fetch(`${stack.api}/jobs/${job.request_id}/retry`, { method: "POST" })
          )
          assert.strictEqual(answer.status, 200)
          retriedAt.set(job.request_id, Date.now())
        }
      }).pipe(
        Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: () => retriedAt.size === ids.length }),
        Effect.timeout("60 seconds")
      )
      // Two callbacks a job; a refused one is tried again by the vendor for 7.5 s before it is recorded.
      const outcome = yield* Audit.settle(stack, ids, "60 seconds", {
        callbacks: 2 * ids.length,
        runStartedAt: retriedAt
      })
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, ids.length, "every retried job complete")
      assert.strictEqual(outcome.unapplied, 0)
      const late = outcome.callbacks.filter((callback) => callback.fault === "late:1500")
      assert.strictEqual(late.length, ids.length)
      assert.deepStrictEqual(late.filter(is2xx), [], "no callback of the run before the retry is answered 2xx")
      const racing = late.filter((callback) => {
        const job = outcome.jobs.get(callback.jobId)
        return (
          callback.sentAt >= (retriedAt.get(callback.jobId) ?? Infinity) &&
          callback.sentAt < Date.parse(job?.updated_at ?? "")
        )
      }).length
      const calls = Audit.byJob(outcome.async)
      assert.deepStrictEqual(
        Audit.tallyOf(ids.map((id) => `${(calls.get(id) ?? []).length} call(s)`)),
        { "2 call(s)": ids.length },
        "one call per run"
      )
      yield* Audit.report(
        "operator's retry racing a late callback",
        outcome,
        `${outcome.async.length} calls, one per run; ${late.length} late callbacks of run 1, last answered ` +
          `${answers(late)}; ${racing} of them reached the webhook after the retry and before run 2 completed; ` +
          `${seconds.toFixed(0)} s`
      )
    })
  )

  it.live(
    "the store refuses writes while callbacks arrive; the vendor resends the same bytes and they are applied",
    () =>
      Effect.gen(function* () {
        // A Redis of our own (store, queue and replay guard), to make refuse writes for a while.
        const redis = yield* RedisServer.make()
        yield* redis.start
        const stack = yield* start({
          redisUrl: redis.url,
          asyncEnv: { MOCK_ASYNC_DELAY_MS: "300-1500", MOCK_ASYNC_SIGN_ONCE: "true" },
          env: { VENDOR_ASYNC_CALLBACK_DEADLINE: "30s", SWEEP_INTERVAL: "1 second" }
        })
        const started = Date.now()
        const ids = yield* Audit.submitMany(stack, 30, "async")
        yield* Client.arrivals(stack.async).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (all) => all.length >= 10 }),
          Effect.timeout("30 seconds")
        )
        // The outage: every write refused (as by a Redis that lost its replicas), reads answered.
        yield* Client.redisCli(redis.url, "CONFIG", "SET", "min-replicas-to-write", "1")
        yield* Effect.sleep("2 seconds")
        yield* Client.redisCli(redis.url, "CONFIG", "SET", "min-replicas-to-write", "0")
        const outcome = yield* Audit.settle(stack, ids, "60 seconds")
        const seconds = (Date.now() - started) / 1000
        assert.strictEqual(outcome.complete, ids.length)
        assert.strictEqual(outcome.unapplied, 0)
        const resent = outcome.callbacks.filter((callback) => callback.attempts > 1)
        assert.isAbove(resent.length, 0, "callbacks came during the outage and were sent again")
        assert.deepStrictEqual(
          resent.filter((callback) => !is2xx(callback)),
          [],
          "each callback sent again byte for byte was applied in the end"
        )
        yield* Audit.report(
          "store refusing writes while callbacks arrive (same bytes resent)",
          outcome,
          `${outcome.async.length} calls; ${outcome.callbacks.length} callbacks, ${resent.length} of them refused ` +
            `(503) during the 2 s outage and resent byte for byte by the vendor, each applied then (last answered ` +
            `${answers(resent)}); ${seconds.toFixed(0)} s`
        )
      })
  )
})

/**
 * Processes and Redis failing under the split deployment: a worker killed with SIGKILL mid-call,
 * Redis crashing and coming back (with its append-only file, as in production), and SIGTERM to the
 * API server and to a worker under load. Every accepted job must end complete, none completed
 * twice; a job may be *called* twice (the killed worker's call, then the one that took it over).
 */
import { assert, describe, it } from "@effect/vitest"
import { RedisKeys } from "@vendorflow/redis"
import { RedisServer } from "@vendorflow/redis/testing"
import { Effect, Fiber, Schedule } from "effect"
import { Client } from "@vendorflow/dev-stack"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

const limit = Audit.vendorLimit

// Sends `signal` and returns the exit code and how long the process took to exit.
const stopTimed = (process: { readonly stop: Stack.Stack["server"]["stop"] }, signal: NodeJS.Signals) =>
  Effect.gen(function* () {
    const sent = Date.now()
    const code = yield* process.stop(signal, "30 seconds")
    return { code, millis: Date.now() - sent }
  })

// The jobs a worker says it stopped mid-call at shutdown, from its log: an entry begins with its
// time (`[12:00:00.000] WARN …`, annotations on the lines after) or is one JSON line.
const cutMidCall = (output: string) =>
  output
    .split(/\n(?=\[\d|\{)/)
    .filter((entry) => entry.includes("stopped mid-call"))
    .flatMap((entry) => /job_id["']?:\s*["']([^"']+)["']/.exec(entry)?.[1] ?? [])

const calledMoreThanOnce = (arrived: ReadonlyArray<Client.Arrival>) =>
  [...Audit.byJob(arrived).values()].filter((calls) => calls.length > 1).length

describe("crashes and restarts", () => {
  it.live(
    "kill -9 of a worker mid-call: its jobs are taken over after the visibility timeout, none completed twice",
    () =>
      Effect.gen(function* () {
        const stack = yield* Stack.start({
          workers: 2,
          redisUrl: Stack.redisUrl,
          vendors: ["sync"],
          syncLimit: `${limit}/1s`,
          syncLatency: "1000-1500",
          env: { ...Audit.pacedEnv, QUEUE_VISIBILITY_TIMEOUT: "3 seconds" }
        })
        const started = Date.now()
        const ids = yield* Audit.submitMany(stack, 30, "sync")
        // Calls are in flight on both workers once a few have been answered.
        yield* Audit.answered(stack, 4)
        assert.strictEqual(yield* stack.workers[0]!.stop("SIGKILL"), null)
        const outcome = yield* Audit.settle(stack, ids, "60 seconds")
        const seconds = (Date.now() - started) / 1000
        assert.strictEqual(outcome.complete, 30)
        const abandoned = outcome.sync.filter((call) => call.status === 499).length
        const twice = calledMoreThanOnce(outcome.sync)
        assert.isAbove(twice, 0, "the killed worker's jobs were taken over")
        const worst = Audit.assertLimitHeld(outcome.sync, limit)
        yield* Audit.report(
          "kill -9 of a worker mid-call",
          outcome,
          `${outcome.sync.length} calls; ${twice} jobs called twice (taken over), ${abandoned} calls cut off by the ` +
            `kill (vendor saw 499); worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
        )
      })
  )

  it.live("Redis crashes (SIGKILL) mid-run and restarts 3 s later: every accepted job completes once", () =>
    Effect.gen(function* () {
      // A Redis of our own, with an append-only file as production Redis has, to kill and restart.
      const redis = yield* RedisServer.make({ persist: true })
      yield* redis.start
      const stack = yield* Stack.start({
        workers: 2,
        redisUrl: redis.url,
        syncLimit: `${limit}/1s`,
        syncLatency: "200-600",
        env: {
          ...Audit.pacedEnv,
          QUEUE_VISIBILITY_TIMEOUT: "5 seconds",
          VENDOR_ASYNC_CALLBACK_DEADLINE: "5s",
          SWEEP_INTERVAL: "1 second"
        }
      })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 40, (i) => (i % 2 === 0 ? "sync" : "async"))
      yield* Audit.answered(stack, 5)
      yield* redis.kill
      // The outage itself: Redis stays down this long whatever the stack does meanwhile.
      yield* Effect.sleep("3 seconds")
      yield* redis.start
      const outcome = yield* Audit.settle(stack, ids, "90 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, 40)
      const twice = calledMoreThanOnce(outcome.sync) + calledMoreThanOnce(outcome.async)
      const late = outcome.callbacks.filter((callback) => callback.attempts > 1).length
      const worst = Audit.assertLimitHeld(outcome.sync, limit)
      yield* Audit.report(
        "Redis crash and restart",
        outcome,
        `${outcome.sync.length + outcome.async.length} calls; ${twice} jobs called twice (in flight when Redis ` +
          `went); ${late} callbacks retried by the vendor until the API could store them; worst 1 s ` +
          `${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )

  // The regression test for `JobProcessor.expire` stranding a resubmitted async job as `pending`
  // when its queue write failed (docs/reliability.md). Here the queue refuses writes for 4 s (its
  // stream is swapped for a key of the wrong type) while the store goes on working.
  it.live("the queue refuses writes while overdue async jobs are resubmitted: they are still resubmitted", () =>
    Effect.gen(function* () {
      const stack = yield* Stack.start({
        workers: 1,
        redisUrl: Stack.redisUrl,
        vendors: ["async"],
        syncLimit: `${limit}/1s`,
        syncLatency: "20-80",
        // The first callback of every job never comes; the resubmitted attempt's does.
        asyncEnv: { MOCK_ASYNC_CALLBACK_FAULTS: "drop,ok" },
        env: { ...Audit.pacedEnv, VENDOR_ASYNC_CALLBACK_DEADLINE: "2s", SWEEP_INTERVAL: "500 millis" }
      })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 20, "async")
      yield* Client.arrivals(stack.async).pipe(
        Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (all) => all.length >= 20 }),
        Effect.timeout("30 seconds")
      )
      const stream = RedisKeys.vendor(stack.prefix, "async").stream
      // Each swap is one script, so no write lands in a stream that the next step then throws away
      // (two separate commands would leave a moment with no key, in which an enqueue makes a new
      // stream: a lost write, which is another fault than a refused one).
      const swap = (lua: string) => Client.redisCli(stack.redisUrl, "EVAL", lua, "2", stream, `${stream}:aside`)
      yield* swap("redis.call('RENAME', KEYS[1], KEYS[2]); return redis.call('SET', KEYS[1], 'not a stream')")
      // The fault itself: the queue refuses writes this long, past every job's deadline.
      yield* Effect.sleep("4 seconds")
      yield* swap("redis.call('DEL', KEYS[1]); return redis.call('RENAME', KEYS[2], KEYS[1])")
      const outcome = yield* Audit.settle(stack, ids, "30 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, 20)
      yield* Audit.report(
        "queue writes refused while overdue async jobs are resubmitted",
        outcome,
        `${outcome.async.length} calls, ${outcome.callbacks.filter((c) => c.outcome === "dropped").length} ` +
          `callbacks dropped; ${seconds.toFixed(0)} s`
      )
    })
  )

  // A stored job is accepted though its queue write failed, and the sweeper queues it: a 503 would
  // have a client retrying without an idempotency key make a second job and a second vendor call.
  it.live("the queue refuses writes after the records are stored: every POST is accepted, each job runs once", () =>
    Effect.gen(function* () {
      const stack = yield* Stack.start({
        workers: 1,
        redisUrl: Stack.redisUrl,
        vendors: ["sync"],
        syncLimit: `${limit}/1s`,
        syncLatency: "20-80",
        env: { ...Audit.pacedEnv, SWEEP_INTERVAL: "500 millis" }
      })
      const started = Date.now()
      const before = yield* Audit.submitMany(stack, 10, "sync")
      yield* Audit.answered(stack, 10)
      // The stream's last id set to the largest there is: every XADD fails ("the stream has
      // exhausted the last possible ID") while every read (the backlog's depth, the workers' takes)
      // still works, so the record is stored and only the queue write after it fails.
      const stream = RedisKeys.vendor(stack.prefix, "sync").stream
      const top = (yield* Client.redisCli(stack.redisUrl, "XREVRANGE", stream, "+", "-", "COUNT", "1")).split("\n")[0]!
      yield* Client.redisCli(stack.redisUrl, "XSETID", stream, "18446744073709551615-18446744073709551615")
      // Stored while the queue refuses writes; `submitMany` asserts each POST answered 200.
      const during = yield* Audit.submitMany(stack, 20, "sync", 10)
      yield* Client.redisCli(stack.redisUrl, "XSETID", stream, top)
      const ids = [...before, ...during]
      const outcome = yield* Audit.settle(stack, ids, "60 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, 30)
      assert.deepStrictEqual(
        [...Audit.byJob(outcome.sync).values()].filter((calls) => calls.length !== 1),
        [],
        "each job called once"
      )
      yield* Audit.report(
        "queue writes refused after the records are stored",
        outcome,
        `20 of 30 POSTs made while the queue refused writes, all answered 200 and queued by the sweeper; ` +
          `each job called once; ${seconds.toFixed(0)} s`
      )
    })
  )

  // The worker holds a backlog waiting on the rate limit when it is told to stop: what it had not
  // called is handed back within its grace (no attempt spent), what it was calling is cut and
  // handed back (its attempt spent); nothing is called twice but a cut call.
  it.live("SIGTERM to a worker mid-backlog: its held jobs are handed back, none called twice but a cut call", () =>
    Effect.gen(function* () {
      const stack = yield* Stack.start({
        workers: 2,
        redisUrl: Stack.redisUrl,
        vendors: ["sync"],
        syncLimit: `${limit}/1s`,
        syncLatency: "200-600",
        env: {
          ...Audit.pacedEnv,
          VENDOR_SYNC_CONCURRENCY: "30",
          QUEUE_VISIBILITY_TIMEOUT: "3 seconds",
          SHUTDOWN_GRACE: "2 seconds",
          SWEEP_INTERVAL: "1 second"
        }
      })
      const started = Date.now()
      const ids = yield* Audit.submitMany(stack, 150, "sync")
      // Both workers hold 30 deliveries each, most of them waiting for a rate-limit slot.
      yield* Audit.answered(stack, 20)
      const stopped = yield* stopTimed(stack.workers[0]!, "SIGTERM")
      yield* stack.startWorker()
      const outcome = yield* Audit.settle(stack, ids, "90 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, 150)
      assert.strictEqual(stopped.code, 0, "the worker exits 0")
      // Cut: the vendor saw the worker hang up (499), or the worker says it stopped mid-call (the
      // vendor's answer was on its way when the grace ran out).
      const cut = new Set([
        ...outcome.sync.filter((call) => call.status === 499).map((call) => call.jobId),
        ...cutMidCall(stack.workers[0]!.output())
      ])
      const again = [...Audit.byJob(outcome.sync)].filter(([, calls]) => calls.length > 1)
      assert.deepStrictEqual(
        again.filter(([id]) => !cut.has(id)).map(([id]) => id),
        [],
        "called again, though no call of theirs was cut"
      )
      const worst = Audit.assertLimitHeld(outcome.sync, limit)
      yield* Audit.report(
        "SIGTERM to a worker mid-backlog",
        outcome,
        `worker exit 0 in ${(stopped.millis / 1000).toFixed(1)} s (grace 2 s) holding a backlog of 30; ` +
          `${cut.size} calls cut at the grace, those jobs called again, the others once; worst 1 s ` +
          `${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )

  it.live("SIGTERM to a worker and to the server under load: both exit 0 within their grace, nothing is lost", () =>
    Effect.gen(function* () {
      const graceMillis = 3000
      const stack = yield* Stack.start({
        workers: 2,
        redisUrl: Stack.redisUrl,
        syncLimit: `${limit}/1s`,
        // Every call takes seconds, so a worker always has some in flight; those outlasting its
        // grace are interrupted and handed back.
        syncLatency: "1500-5000",
        env: {
          ...Audit.pacedEnv,
          VENDOR_SYNC_CONCURRENCY: "10",
          SHUTDOWN_GRACE: `${graceMillis} millis`,
          VENDOR_ASYNC_CALLBACK_DEADLINE: "5s",
          SWEEP_INTERVAL: "1 second"
        }
      })
      const started = Date.now()
      // A client submitting 80 jobs, 10 a second, each under its own Idempotency-Key, trying again
      // while the API is away.
      let accepted = 0
      const load = yield* Effect.forEach(
        Array.from({ length: 80 }, (_, i) => i),
        (i) =>
          Client.submitUntilAccepted(
            stack.api,
            { vendor: i % 2 === 0 ? "sync" : "async", n: i },
            `${stack.prefix}${i}`,
            "60 seconds"
          ).pipe(
            Effect.tap(() => Effect.sync(() => accepted++)),
            Effect.delay("100 millis")
          )
      ).pipe(Effect.forkScoped)
      yield* Effect.sync(() => accepted).pipe(
        Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (n) => n >= 20 }),
        Effect.timeout("60 seconds")
      )
      const [worker, server] = yield* Effect.all(
        [stopTimed(stack.workers[0]!, "SIGTERM"), stopTimed(stack.server, "SIGTERM")],
        { concurrency: "unbounded" }
      )
      const acceptedMeanwhile = accepted
      yield* Effect.all([stack.startServer(), stack.startWorker()], { concurrency: "unbounded" })
      const ids = yield* Fiber.join(load)
      assert.strictEqual(new Set(ids).size, 80, "one job per key")
      const outcome = yield* Audit.settle(stack, ids, "90 seconds")
      const seconds = (Date.now() - started) / 1000
      assert.strictEqual(outcome.complete, 80)
      assert.deepStrictEqual([worker.code, server.code], [0, 0], "exit codes")
      assert.isAtMost(worker.millis, graceMillis + 2000, "the worker exits within its grace (and teardown)")
      assert.isAtMost(server.millis, 10_000 + 2000, "the server exits within its 10 s drain")
      const interrupted = outcome.sync.filter((call) => call.status === 499).length
      const twice = calledMoreThanOnce(outcome.sync)
      const worst = Audit.assertLimitHeld(outcome.sync, limit)
      yield* Audit.report(
        "SIGTERM to a worker and the server under load",
        outcome,
        `worker exit 0 in ${(worker.millis / 1000).toFixed(1)} s (grace ${graceMillis / 1000} s), ${interrupted} ` +
          `calls cut at the grace (vendor saw 499), ${twice} jobs called again; server exit 0 in ` +
          `${(server.millis / 1000).toFixed(1)} s; ${acceptedMeanwhile}/80 accepted by then, the rest after the ` +
          `restart; worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
      )
    })
  )
})

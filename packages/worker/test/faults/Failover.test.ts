/**
 * The split deployment on a Redis Cluster of its own (three primaries, three replicas,
 * `REDIS_CLUSTER=true`), and the primary that holds the busiest vendor's slot killed (SIGKILL)
 * while jobs flow: its replica takes over within a couple of seconds; meanwhile `POST /jobs` may
 * answer 503 for jobs whose shard was on it, and workers retry. Every accepted job must complete,
 * and no job may be called more often than its attempts (no vendor called twice for one attempt).
 */
import { assert, describe, it } from "@effect/vitest"
import { RedisKeys } from "@vendorflow/redis"
import { RedisCluster } from "@vendorflow/redis/testing"
import { Effect, Fiber } from "effect"
import { Client } from "@vendorflow/dev-stack"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

describe.skipIf(RedisCluster.unavailable !== undefined)("Redis Cluster failover", () => {
  it.live(
    "kill -9 of the primary holding the sync vendor's slot mid-run: a replica takes over, every accepted job completes, no call twice for one attempt",
    () =>
      Effect.gen(function* () {
        const cluster = yield* RedisCluster.make
        const stack = yield* Stack.start({
          workers: 2,
          redisUrl: cluster.url,
          redisCluster: true,
          syncLimit: "1000/1s",
          syncLatency: "20-100",
          // Callbacks the vendor gave up on while their slot had no primary are recovered by the sweep.
          env: { VENDOR_ASYNC_CALLBACK_DEADLINE: "3s", SWEEP_INTERVAL: "1 second" }
        })
        // Steady clients, four at a time: 3 sync jobs for each async one, until stopped.
        let stop = false
        const results: Array<{ readonly status: number; readonly id: string | undefined }> = []
        let n = 0
        const lane = Effect.suspend(() =>
          Client.submit(stack.api, { vendor: n % 4 === 3 ? "async" : "sync", n: n++ })
        ).pipe(
          Effect.tap((answer) =>
            Effect.sync(() => results.push({ status: answer.status, id: answer.body.request_id }))
          ),
          Effect.delay("10 millis"),
          Effect.repeat({ while: () => !stop })
        )
        const client = yield* Effect.forEach([1, 2, 3, 4], () => lane, { concurrency: "unbounded" }).pipe(
          Effect.forkScoped
        )
        yield* Effect.sleep("2 seconds")
        const acceptedBefore = results.filter((r) => r.status === 200).length
        const { killed, successor, failoverMillis } = yield* cluster.killPrimaryOf(
          RedisKeys.vendor(stack.prefix, "sync").stream
        )
        yield* Effect.sleep("2 seconds")
        stop = true
        yield* Fiber.join(client)

        const accepted = results.flatMap((r) => (r.status === 200 && r.id !== undefined ? [r.id] : []))
        const refused = results.filter((r) => r.status !== 200)
        assert.deepStrictEqual(
          refused.filter((r) => r.status !== 503),
          [],
          "a refused job is refused with 503"
        )
        const outcome = yield* Audit.settle(stack, accepted, "60 seconds")
        assert.strictEqual(outcome.complete, accepted.length, "every accepted job completes")
        assert.strictEqual(outcome.duplicateCalls, 0, "no call beyond a job's attempts")
        yield* Effect.log(
          `failover: primary :${killed} killed after ${acceptedBefore} jobs were accepted, :${successor} took over in ${failoverMillis} ms; ` +
            `${accepted.length} accepted in all, ${refused.length} refused (503), ${outcome.complete} complete, ` +
            `${outcome.calls} calls, ${outcome.duplicateCalls} beyond attempts`
        )
      }),
    { timeout: 120_000 }
  )
})

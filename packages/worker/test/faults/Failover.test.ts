/**
 * The split deployment on a Redis Cluster of its own (three primaries, three replicas,
 * `REDIS_CLUSTER=true`), and the primary that holds the busiest vendor's slot killed (SIGKILL)
 * while jobs flow: its replica takes over within a couple of seconds; meanwhile `POST /jobs` may
 * answer 503 for jobs whose shard was on it, and workers retry. No job may be called more often than
 * its attempts (no vendor called twice for one attempt).
 *
 * Replication is asynchronous, so the test holds the engine to what docs/operations.md ("Failover")
 * promises, no more: a creation the primary acknowledged and had not sent on may be lost (`GET`
 * answers 404); a client that sends `Idempotency-Key`, as the docs ask, posts it again and gets the
 * same job, which then completes; a job posted without a key is lost for good. A lost queue
 * entry is queued again by the sweeper. Only a job sent before the primary died, and stored on it,
 * may be lost; every other accepted job completes. And a job may be stored although its client was
 * answered 503 (a lot of plain submissions stored on some shards only, or a write whose answer was
 * lost): it runs, and its payload names the refused submission.
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
    "kill -9 of the primary holding the sync vendor's slot mid-run: a replica takes over, every accepted job completes (a lost creation posted again), no call twice for one attempt",
    () =>
      Effect.gen(function* () {
        const cluster = yield* RedisCluster.make
        const stack = yield* Stack.start({
          workers: 2,
          redisUrl: cluster.url,
          redisCluster: true,
          syncLimit: "1000/1s",
          syncLatency: "20-100",
          env: {
            // Callbacks the vendor gave up on while their slot had no primary are recovered by the sweep,
            VENDOR_ASYNC_CALLBACK_DEADLINE: "3s",
            SWEEP_INTERVAL: "1 second",
            // and so are jobs whose queue entry went with the primary.
            SWEEP_PENDING_AFTER: "10 seconds"
          }
        })
        // Steady clients, four at a time: 3 sync jobs for each async one, until stopped. Two send
        // `Idempotency-Key` (the engine's careful client), two do not (the batched path).
        let stop = false
        const sent: Array<Submission> = []
        let n = 0
        const lane = (keyed: boolean) =>
          Effect.suspend(() => {
            const payload = { vendor: n % 4 === 3 ? "async" : "sync", n }
            const key = keyed ? `failover-${n}` : undefined
            n++
            const sentAt = Date.now()
            return Effect.map(Client.submit(stack.api, payload, key), (answer) => {
              sent.push({ payload, key, sentAt, status: answer.status, id: answer.body.request_id })
            })
          }).pipe(Effect.delay("10 millis"), Effect.repeat({ while: () => !stop }))
        const client = yield* Effect.forEach([true, true, false, false], lane, { concurrency: "unbounded" }).pipe(
          Effect.forkScoped
        )
        // Which primary stores each of the job store's shards, as it was before the kill.
        const shards = RedisKeys.jobShards.cluster
        const shardPrimaries = yield* Effect.forEach(
          Array.from({ length: shards }, (_, shard) => shard),
          (shard) => cluster.primaryOf(RedisKeys.jobShardKeys(stack.prefix, shard).overdue)
        )
        yield* Effect.sleep("2 seconds")
        const acceptedBefore = sent.filter((r) => r.status === 200).length
        const { killed, successor, killedAt, failoverMillis } = yield* cluster.killPrimaryOf(
          RedisKeys.vendor(stack.prefix, "sync").stream
        )
        yield* Effect.sleep("2 seconds")
        stop = true
        yield* Fiber.join(client)

        const accepted = sent.filter((r) => r.status === 200 && r.id !== undefined)
        assert.deepStrictEqual(
          sent.filter((r) => r.status !== 200 && r.status !== 503),
          [],
          "a refused job is refused with 503"
        )
        const gone = yield* Effect.filter(accepted, (r) => Effect.map(status(stack.api, r.id), (s) => s === 404), {
          concurrency: 20
        })
        assert.deepStrictEqual(
          gone.filter((r) => r.sentAt >= killedAt || shardPrimaries[RedisKeys.jobShard(r.id ?? "", shards)] !== killed),
          [],
          "only a job sent before the primary died, and stored on it, may be lost"
        )
        // The careful client's part: a job that answers 404 is posted again under its key. A job
        // posted without one has nothing to be found by again.
        const runStartedAt = new Map<string, number>()
        for (const lost of gone) {
          if (lost.key === undefined) continue
          runStartedAt.set(lost.id ?? "", Date.now())
          const again = yield* Client.submitUntilAccepted(stack.api, lost.payload, lost.key, "30 seconds")
          assert.strictEqual(again, lost.id, "posted again under its key, a lost job gets its id back")
        }
        const lostForGood = new Set(gone.flatMap((r) => (r.key === undefined ? [r.id] : [])))
        // No run of theirs is left: their calls, callbacks and dead letters are not held against them.
        for (const id of lostForGood) runStartedAt.set(id ?? "", Infinity)
        const ids = accepted.flatMap((r) => (r.id === undefined || lostForGood.has(r.id) ? [] : [r.id]))
        // A job the vendors saw that no accepted submission names is accounted for when its payload
        // is that of a submission answered 503.
        const refused = new Set(sent.flatMap((r) => (r.status === 503 ? [r.payload.n] : [])))
        const unnamed = (strangers: ReadonlyArray<string>) =>
          Effect.filter(strangers, (id) =>
            cluster
              .command("HGET", RedisKeys.jobShardKeys(stack.prefix, RedisKeys.jobShard(id, shards)).job(id), "payload")
              .pipe(
                Effect.map((text) => text.trim() !== "" && refused.has((JSON.parse(text) as { readonly n: number }).n)),
                Effect.catch(() => Effect.succeed(false))
              )
          )
        const outcome = yield* Audit.settle(stack, ids, "60 seconds", { runStartedAt, unnamed })
        assert.strictEqual(outcome.complete, ids.length, "every accepted job still there completes")
        assert.strictEqual(outcome.duplicateCalls, 0, "no call beyond a job's attempts")
        yield* Effect.log(
          `failover: primary :${killed} killed after ${acceptedBefore} jobs were accepted, :${successor} took over in ${failoverMillis} ms; ` +
            `${accepted.length} accepted in all, ${sent.length - accepted.length} refused (503), ` +
            `${gone.length - lostForGood.size} lost and posted again under their key, ${lostForGood.size} lost without one; ` +
            `${outcome.unnamed} stored though answered 503; ` +
            `${outcome.complete} complete, ${outcome.calls} calls, ${outcome.duplicateCalls} beyond attempts`
        )
      }),
    { timeout: 120_000 }
  )
})

interface Submission {
  readonly payload: { readonly vendor: string; readonly n: number }
  readonly key: string | undefined
  readonly sentAt: number
  readonly status: number
  readonly id: string | undefined
}

// The status `GET /jobs/{id}` answers (its body read, so that the connection goes back to the pool).
const status = (api: string, id: string | undefined) =>
  Effect.promise(async () => {
    const response = await fetch(`${api}/jobs/${id}`)
    await response.arrayBuffer()
    return response.status
  })

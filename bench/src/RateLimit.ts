/**
 * Rate-limit fidelity: the mock sync vendor limited to `limit` requests a second (its sliding
 * window answers 429 beyond it), our workers in several processes told the same limit
 * (`MOCK_SYNC_RATE_LIMIT`, which both the mock and the adapter read) and sharing it through Redis.
 * Enough jobs for `seconds` seconds at the limit are posted at once; then the mock's own record of
 * arrivals (`GET /arrivals`) gives the rate achieved and the busiest one-second window.
 */
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { request } from "undici"
import { type Process, Stats } from "@vendorflow/dev-stack"
import { RedisJobStore } from "@vendorflow/redis"
import * as Bench from "./Bench.ts"
import { seedJobs } from "./Ingest.ts"
import * as Stack from "./Stack.ts"

/**
 * What the rate-limit scenario measured.
 */
export interface Result {
  readonly limit: number
  readonly workers: number
  readonly jobs: number
  /** Admitted calls per second, from the first arrival to the last. */
  readonly achievedPerSecond: number
  /** `achievedPerSecond / limit`. */
  readonly achievedRatio: number
  /** The most arrivals (admitted or not) in any one-second window. */
  readonly worstWindow: number
  /** Calls the mock refused with 429. */
  readonly refused: number
  readonly procs: ReadonlyArray<Process.Running>
}

interface Arrival {
  readonly at: number
  readonly jobId: string | null
  readonly status: number
}

/**
 * Runs the scenario on a stack of its own (a fresh prefix, server, mock and workers).
 */
export const run = async (
  context: Bench.Context,
  options: { readonly limit: number; readonly workers: number; readonly seconds: number }
): Promise<Result> => {
  const prefix = Bench.randomPrefix("rate")
  const rateLimit = `${options.limit}/1s`
  const mock = await Stack.mockSync(context.env, { name: "mock-sync-limited", latency: "0", rateLimit })
  const server = await Stack.vendorflowServer(context.env, { name: "server-rate", prefix, mockUrl: mock.url })
  const workers = await Stack.vendorflowWorkers(context.env, {
    name: "worker-rate",
    n: options.workers,
    prefix,
    mockUrl: mock.url,
    publicUrl: server.url,
    vars: { MOCK_SYNC_RATE_LIMIT: rateLimit }
  })
  const jobs = options.limit * options.seconds
  await request(`${mock.url}/arrivals`, { method: "DELETE" }).then((answer) => answer.body.dump())
  context.log(`  posting ${jobs} jobs for a vendor limited to ${rateLimit}, ${options.workers} worker processes`)
  await seedJobs(server.url, jobs)
  const completeKey = RedisJobStore.keys(prefix).status("complete")
  const failedKey = RedisJobStore.keys(prefix).status("failed")
  const deadline = performance.now() + (options.seconds * 3 + 30) * 1000
  while (performance.now() < deadline) {
    const [complete, failed] = [await context.redis.zcard(completeKey), await context.redis.zcard(failedKey)]
    if (complete + failed >= jobs) break
    await sleep(100)
  }
  const answer = await request(`${mock.url}/arrivals`)
  const arrivals = (await answer.body.json()) as ReadonlyArray<Arrival>
  const admitted = arrivals.filter((arrival) => arrival.status === 200).map((arrival) => arrival.at)
  const first = Math.min(...admitted)
  const last = Math.max(...admitted)
  const achievedPerSecond = admitted.length > 1 ? ((admitted.length - 1) * 1000) / (last - first) : 0
  const worst = Stats.busiestWindow(
    arrivals.map((arrival) => arrival.at),
    1000
  )
  const procs = [server.process, ...workers]
  Bench.recordMemory(context, "after rate limit", procs)
  const result: Result = {
    limit: options.limit,
    workers: options.workers,
    jobs,
    achievedPerSecond,
    achievedRatio: achievedPerSecond / options.limit,
    worstWindow: worst.count,
    refused: arrivals.filter((arrival) => arrival.status === 429).length,
    procs
  }
  context.log(
    `  achieved ${achievedPerSecond.toFixed(2)}/s (${(100 * result.achievedRatio).toFixed(1)}% of ${options.limit}), ` +
      `busiest 1 s window ${worst.count}, ${result.refused} refused (429), ${admitted.length} admitted of ${jobs}`
  )
  await Stack.stop(...workers)
  await Stack.stop(server.process, mock.process)
  await Stack.dropKeys(context.env.redisUrl, prefix)
  return result
}

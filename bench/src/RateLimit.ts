/**
 * Rate-limit fidelity, four ways, each on a stack of its own (the mock sync vendor, a server and
 * `workers` worker processes sharing Redis under a fresh prefix), measured by the mock's own record
 * of arrivals (`GET /arrivals`):
 * - known: the mock limited to L/s (a sliding window, 429 past it), the workers told the same L:
 *   the rate achieved, the busiest one-second window, 429s, after a warm-up of L jobs (a second of
 *   calls) that is not counted: the precision of the pace, not the workers' first calls;
 * - hidden: the mock limited to `hidden`/s and saying so only by 429s, the workers on `auto`; the
 *   limit drops to half `dropAfter` seconds after the first call: how soon 90% of it is reached,
 *   the rate and the share of 429s from 10 s until the drop, how soon after it the calls are under
 *   the new limit again;
 * - advertised: the mock's limit in headers on every answer, the workers on `auto`: rate, 429s,
 *   after a warm-up of L jobs whose learned state is then dropped from Redis, so that warm workers
 *   learn the limit again from the first answer: the learning, not each process's first HTTP call
 *   (10–30 ms slower than the rest; see docs/benchmarks.md);
 * - in flight: the mock refusing (503) calls past 10 in flight, the workers capped at 10 across
 *   the three of them (`VENDOR_SYNC_MAX_IN_FLIGHT`) with a concurrency of 20 each: refusals.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { request } from "undici"
import { type Process, Stats } from "@vendorflow/dev-stack"
import { RedisJobStore, RedisKeys } from "@vendorflow/redis"
import * as Bench from "./Bench.ts"
import { seedJobs } from "./Ingest.ts"
import * as Stack from "./Stack.ts"

interface Arrival {
  readonly at: number
  readonly jobId: string | null
  readonly status: number
  readonly fault?: string | undefined
}

/**
 * A known limit, paced.
 */
export interface Known {
  readonly limit: number
  readonly workers: number
  readonly jobs: number
  /** Admitted calls per second, from the first arrival to the last. */
  readonly achievedPerSecond: number
  readonly achievedRatio: number
  /** The most arrivals (admitted or not) in any one-second window. */
  readonly worstWindow: number
  /** When it began, in seconds after the first arrival. */
  readonly worstWindowAt: number
  /** Calls the mock refused with 429. */
  readonly refused: number
}

/**
 * A hidden limit, learned, then lowered.
 */
export interface Hidden {
  readonly limit: number
  readonly loweredTo: number
  readonly dropAfterSeconds: number
  /** Seconds from the first call to the first one-second bucket with ≥ 90% of the limit admitted. */
  readonly reached90Seconds: number | undefined
  /** Admitted calls per second from 10 s to the drop, over the limit. */
  readonly steadyRatio: number
  /** 429s over all calls from 10 s to the drop. */
  readonly steadyRefusedShare: number
  /** Seconds after the drop until a one-second bucket's calls are under the new limit and stay so. */
  readonly settledSeconds: number | undefined
}

/**
 * A cap on calls in flight.
 */
export interface InFlight {
  readonly cap: number
  readonly concurrency: number
  readonly jobs: number
  /** Calls the mock refused for being past its cap: any is a call past 10 at once. */
  readonly refused: number
  readonly completedPerSecond: number
}

/**
 * What the rate-limit section measured.
 */
export interface Result {
  readonly known: Known
  readonly hidden: Hidden
  readonly advertised: Known
  readonly inFlight: InFlight
}

// One scenario's stack: the mock with `mockVars`, a server, the workers with `workerVars`; posts
// `jobs` jobs at once, waits until `done` says so (or `maxSeconds`), and returns the arrivals. It
// watches the jobs in Redis and reads the mock's arrivals once at the end: reading them meanwhile
// would stall the mock's event loop and bunch the arrivals it records.
const scenario = async (
  context: Bench.Context,
  options: {
    readonly name: string
    readonly workers: number
    readonly mockVars: Record<string, string>
    readonly workerVars: Record<string, string>
    readonly jobs: number
    /** Jobs run first, before the arrivals are counted, so that the workers' first calls (cold code, new connections) are not. */
    readonly warmUp?: number | undefined
    /** Whether the rate limit's learned state is dropped after the warm-up, to be learned again. */
    readonly forgetAfterWarmUp?: boolean | undefined
    readonly maxSeconds: number
    /** Whether to stop, given the seconds since the jobs were posted and how many have finished. */
    readonly done: (elapsed: number, finished: number) => boolean
  }
): Promise<{ readonly arrivals: ReadonlyArray<Arrival>; readonly procs: ReadonlyArray<Process.Running> }> => {
  const prefix = Bench.randomPrefix("rate")
  const mock = await Stack.mockSync(context.env, {
    name: `mock-sync-${options.name}`,
    latency: "0",
    // The mock is the instrument: a small young generation keeps its scavenges to a few ms, where
    // the default's (up to 52 ms) bunch the arrivals it records (docs/benchmarks.md).
    vars: {
      ...options.mockVars,
      NODE_OPTIONS: [process.env.NODE_OPTIONS, "--max-semi-space-size=1"].filter(Boolean).join(" ")
    }
  })
  const server = await Stack.vendorflowServer(context.env, {
    name: `server-${options.name}`,
    prefix,
    mockUrl: mock.url
  })
  const workers = await Stack.vendorflowWorkers(context.env, {
    name: `worker-${options.name}`,
    n: options.workers,
    prefix,
    mockUrl: mock.url,
    publicUrl: server.url,
    vars: options.workerVars
  })
  const finishedKeys = [RedisJobStore.keys(prefix).status("complete"), RedisJobStore.keys(prefix).status("failed")]
  const finished = async () =>
    (await Promise.all(finishedKeys.map((key) => context.redis.zcard(key)))).reduce((a, b) => a + b)
  const warmUp = options.warmUp ?? 0
  if (warmUp > 0) {
    await seedJobs(server.url, warmUp)
    while ((await finished()) < warmUp) await sleep(100)
    if (options.forgetAfterWarmUp === true) await context.redis.del(RedisKeys.vendor(prefix, "sync").rate("state"))
    // A window with none of the warm-up's calls in it.
    await sleep(1100)
  }
  await request(`${mock.url}/arrivals`, { method: "DELETE" }).then((answer) => answer.body.dump())
  const started = performance.now()
  await seedJobs(server.url, options.jobs)
  while (performance.now() - started < options.maxSeconds * 1000) {
    if (options.done((performance.now() - started) / 1000, (await finished()) - warmUp)) break
    await sleep(100)
  }
  const arrivals = (await (await request(`${mock.url}/arrivals`)).body.json()) as ReadonlyArray<Arrival>
  const procs = [server.process, ...workers]
  Bench.recordMemory(context, `after rate limit (${options.name})`, procs)
  await Stack.stop(...workers)
  await Stack.stop(server.process, mock.process)
  await Stack.dropKeys(context.env.redisUrl, prefix)
  return { arrivals, procs }
}

const admittedOf = (arrivals: ReadonlyArray<Arrival>) => arrivals.filter((arrival) => arrival.status === 200)

const paced = (limit: number, workers: number, jobs: number, arrivals: ReadonlyArray<Arrival>): Known => {
  const worst = Stats.busiestWindow(
    arrivals.map((arrival) => arrival.at),
    1000
  )
  const admitted = admittedOf(arrivals).map((arrival) => arrival.at)
  const first = Math.min(...admitted)
  const last = Math.max(...admitted)
  const achievedPerSecond = admitted.length > 1 ? ((admitted.length - 1) * 1000) / (last - first) : 0
  return {
    limit,
    workers,
    jobs,
    achievedPerSecond,
    achievedRatio: achievedPerSecond / limit,
    worstWindow: worst.count,
    worstWindowAt: (worst.start - Math.min(...arrivals.map((arrival) => arrival.at))) / 1000,
    refused: arrivals.filter((arrival) => arrival.status === 429).length
  }
}

// Arrivals per one-second bucket from `from` (ms), admitted and all.
const buckets = (arrivals: ReadonlyArray<Arrival>, from: number) => {
  const out: Array<{ admitted: number; all: number }> = []
  for (const arrival of arrivals) {
    const i = Math.floor((arrival.at - from) / 1000)
    if (i < 0) continue
    while (out.length <= i) out.push({ admitted: 0, all: 0 })
    out[i]!.all++
    if (arrival.status === 200) out[i]!.admitted++
  }
  return out
}

const allDone = (jobs: number) => (_elapsed: number, finished: number) => finished >= jobs

/**
 * Runs the four scenarios.
 */
export const run = async (
  context: Bench.Context,
  options: {
    readonly limit: number
    readonly hidden: number
    readonly workers: number
    readonly seconds: number
    readonly dropAfter: number
  }
): Promise<Result> => {
  const { workers } = options
  const log = context.log

  const jobs = options.limit * options.seconds
  log(`  known: ${jobs} jobs, the mock and the workers limited to ${options.limit}/1s`)
  const known = paced(
    options.limit,
    workers,
    jobs,
    (
      await scenario(context, {
        name: "known",
        workers,
        mockVars: { MOCK_SYNC_RATE_LIMIT: `${options.limit}/1s` },
        workerVars: { VENDOR_SYNC_RATE_LIMIT: `${options.limit}/1s` },
        jobs,
        warmUp: options.limit,
        maxSeconds: options.seconds * 3 + 30,
        done: allDone(jobs)
      })
    ).arrivals
  )
  log(
    `  known: ${known.achievedPerSecond.toFixed(2)}/s (${(100 * known.achievedRatio).toFixed(1)}% of ${options.limit}), ` +
      `busiest 1 s window ${known.worstWindow} (at ${known.worstWindowAt.toFixed(1)} s), ${known.refused} × 429`
  )

  const lowered = Math.round(options.hidden / 2)
  const runFor = options.dropAfter + 8
  log(`  hidden: ${options.hidden}/1s told by 429s only, ${lowered}/1s from ${options.dropAfter} s; workers on auto`)
  const hiddenArrivals = (
    await scenario(context, {
      name: "hidden",
      workers,
      mockVars: {
        MOCK_SYNC_RATE_LIMIT: `${options.hidden}/1s`,
        MOCK_SYNC_RATE_LIMIT_LATER: `${lowered}/1s@${options.dropAfter}s`
      },
      workerVars: { VENDOR_SYNC_RATE_LIMIT: "auto" },
      jobs: options.hidden * runFor,
      maxSeconds: runFor + 30,
      // From the posting of the jobs: the first call comes within a second of it.
      done: (elapsed) => elapsed >= runFor + 1
    })
  ).arrivals
  const start = Math.min(...hiddenArrivals.map((arrival) => arrival.at))
  const perSecond = buckets(hiddenArrivals, start)
  const reached = perSecond.findIndex((bucket) => bucket.admitted >= 0.9 * options.hidden)
  const steady = perSecond.slice(10, options.dropAfter)
  const sum = (list: ReadonlyArray<{ admitted: number; all: number }>, key: "admitted" | "all") =>
    list.reduce((total, bucket) => total + bucket[key], 0)
  const after = perSecond.slice(options.dropAfter, runFor)
  // The first second after the drop from which every bucket's calls are within the new limit.
  const settled = after.findIndex((_, i) => after.slice(i).every((bucket) => bucket.all <= lowered))
  const hidden: Hidden = {
    limit: options.hidden,
    loweredTo: lowered,
    dropAfterSeconds: options.dropAfter,
    reached90Seconds: reached < 0 ? undefined : reached + 1,
    steadyRatio: sum(steady, "admitted") / steady.length / options.hidden,
    steadyRefusedShare: 1 - sum(steady, "admitted") / Math.max(1, sum(steady, "all")),
    settledSeconds: settled < 0 ? undefined : settled + 1
  }
  log(
    `  hidden: 90% of ${options.hidden}/s after ${hidden.reached90Seconds ?? "never"} s; from 10 s to ${options.dropAfter} s ` +
      `${(100 * hidden.steadyRatio).toFixed(1)}% of it, ${(100 * hidden.steadyRefusedShare).toFixed(2)}% 429s; ` +
      `under ${lowered}/s ${hidden.settledSeconds ?? "never"} s after the drop ` +
      `(calls per second: ${perSecond.map((bucket) => `${bucket.admitted}/${bucket.all}`).join(" ")})`
  )

  log(
    `  advertised: ${jobs} jobs, the mock's ${options.limit}/1s in headers; workers on auto, ` +
      `warmed up by ${options.limit} jobs, then the learned limit dropped`
  )
  const advertised = paced(
    options.limit,
    workers,
    jobs,
    (
      await scenario(context, {
        name: "advertised",
        workers,
        mockVars: { MOCK_SYNC_RATE_LIMIT: `${options.limit}/1s`, MOCK_SYNC_RATE_LIMIT_HEADERS: "true" },
        workerVars: { VENDOR_SYNC_RATE_LIMIT: "auto" },
        jobs,
        warmUp: options.limit,
        forgetAfterWarmUp: true,
        maxSeconds: options.seconds * 3 + 30,
        done: allDone(jobs)
      })
    ).arrivals
  )
  log(
    `  advertised: ${advertised.achievedPerSecond.toFixed(2)}/s (${(100 * advertised.achievedRatio).toFixed(1)}%), ` +
      `busiest 1 s window ${advertised.worstWindow} (at ${advertised.worstWindowAt.toFixed(1)} s), ${advertised.refused} × 429`
  )

  const cap = 10
  const concurrency = 20
  const capJobs = 400
  log(`  in flight: ${capJobs} jobs, the mock refusing past ${cap} in flight, workers capped at ${cap} × ${workers}`)
  const capped = (
    await scenario(context, {
      name: "in-flight",
      workers,
      mockVars: {
        MOCK_SYNC_LATENCY_MS: "20-60",
        MOCK_SYNC_MAX_IN_FLIGHT: String(cap),
        MOCK_SYNC_MAX_IN_FLIGHT_STATUS: "503"
      },
      workerVars: { VENDOR_SYNC_MAX_IN_FLIGHT: String(cap), VENDOR_SYNC_CONCURRENCY: String(concurrency) },
      jobs: capJobs,
      maxSeconds: 60,
      done: allDone(capJobs)
    })
  ).arrivals
  const cappedAdmitted = admittedOf(capped).map((arrival) => arrival.at)
  const inFlight: InFlight = {
    cap,
    concurrency,
    jobs: capJobs,
    refused: capped.filter((arrival) => arrival.fault === "in-flight").length,
    completedPerSecond:
      ((cappedAdmitted.length - 1) * 1000) / (Math.max(...cappedAdmitted) - Math.min(...cappedAdmitted))
  }
  log(`  in flight: ${inFlight.refused} calls past the cap, ${inFlight.completedPerSecond.toFixed(1)} calls/s`)
  return { known, hidden, advertised, inFlight }
}

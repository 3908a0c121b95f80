/**
 * End to end: jobs per second from the first `POST /jobs` to the last job `complete`, through our
 * server, Redis, the workers and the mock sync vendor at 0 ms with no rate limit; against BullMQ
 * (as many worker processes, each running `concurrency` jobs at once) whose processor makes the
 * same HTTP call to the same mock, timed from the first `add` to the last completion; and the
 * ceiling of the call itself: undici with 100 requests in flight against the mock.
 */
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { Queue } from "bullmq"
import { Pool } from "undici"
import { type Process, Stats } from "@vendorflow/dev-stack"
import { RedisJobStore } from "@vendorflow/redis"
import * as Bench from "./Bench.ts"
import { jobBody, jobPayload } from "./Body.ts"
import * as Machine from "./Machine.ts"

/**
 * One subject's end-to-end figures over the rounds.
 */
export interface Measured {
  readonly name: string
  readonly jobsPerSecond: Stats.Summary
  /** CPU seconds the subject's processes spent per 1,000 jobs, median. */
  readonly cpuSecondsPer1000: number
  /**
   * CPU µs the whole machine spent per job, median: every process (the load, Redis, the mock,
   * the subject's) and the kernel's work for them. With the machine busy throughout, jobs/s is
   * bound by this.
   */
  readonly machineMicrosPerJob: number
  /** Cores the whole machine kept busy during the rounds, median. */
  readonly machineCores: number
  readonly failed: number
  readonly foreignCores: number
}

/**
 * What the end-to-end scenario measured.
 */
export interface Result {
  readonly jobs: number
  readonly workers: number
  readonly vendorflow: Measured
  readonly bullmq: Measured
  readonly bullmqConcurrency: number
  readonly undiciCeiling: {
    readonly rps: Stats.Summary
    readonly inFlight: number
    /** CPU µs the whole machine spent per call (this process's client and the mock), median. */
    readonly machineMicrosPerCall: number
  }
}

interface Round {
  readonly jobsPerSecond: number
  readonly failed: number
  /** What else the round saw, for the log. */
  readonly detail?: string | undefined
}

export interface Subject {
  readonly name: string
  readonly procs: ReadonlyArray<Process.Running>
  /** Runs before every round, untimed. */
  readonly before?: (() => Promise<void>) | undefined
  readonly run: (jobs: number) => Promise<Round>
}

/** Runs `body` `count` times, `inFlight` at a time. */
const inFlight = async (count: number, parallel: number, body: () => Promise<void>): Promise<void> => {
  let next = 0
  const lane = async () => {
    while (next < count) {
      next++
      await body()
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane))
}

/** Polls `done` every 10 ms until it says yes or `timeoutMillis` passes. */
const until = async (done: () => Promise<boolean>, timeoutMillis: number, what: string): Promise<void> => {
  const deadline = performance.now() + timeoutMillis
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`${what}: not done within ${timeoutMillis} ms`)
    await sleep(10)
  }
}

const cpuOf = (procs: ReadonlyArray<Process.Running>): number =>
  procs.reduce((sum, proc) => sum + (proc.cpuSeconds() ?? 0), 0)

/**
 * Our stack: posts `jobs` jobs over HTTP (100 in flight) and waits until the store's `complete`
 * index has grown by as many. `finished` counts a status's jobs; by default in the store's one
 * shard on the bench's Redis.
 */
export const vendorflow = (
  context: Bench.Context,
  options: {
    readonly serverUrl: string
    readonly prefix: string
    readonly procs: ReadonlyArray<Process.Running>
    readonly name?: string | undefined
    readonly finished?: ((status: "complete" | "failed") => Promise<number>) | undefined
  }
): Subject => ({
  name: options.name ?? "vendorflow",
  procs: options.procs,
  run: async (jobs) => {
    const finished =
      options.finished ?? ((status) => context.redis.zcard(RedisJobStore.keys(options.prefix).status(status)))
    const [complete0, failed0] = [await finished("complete"), await finished("failed")]
    const pool = new Pool(options.serverUrl, { connections: 100 })
    const started = performance.now()
    await inFlight(jobs, 100, async () => {
      const answer = await pool.request({
        method: "POST",
        path: "/jobs",
        headers: { "content-type": "application/json" },
        body: jobBody
      })
      const text = await answer.body.text()
      if (answer.statusCode !== 200) throw new Error(`POST /jobs answered ${answer.statusCode}: ${text}`)
    })
    const posted = performance.now()
    const completeAtPosted = (await finished("complete")) - complete0
    let failed = 0
    await until(
      async () => {
        const [complete, failedNow] = [await finished("complete"), await finished("failed")]
        failed = failedNow - failed0
        return complete - complete0 + failed >= jobs
      },
      Math.max(120_000, jobs * 10),
      `${options.name ?? "vendorflow"} end to end`
    )
    const seconds = (performance.now() - started) / 1000
    await pool.close()
    const postSeconds = (posted - started) / 1000
    return {
      jobsPerSecond: jobs / seconds,
      failed,
      detail: `all posted after ${postSeconds.toFixed(1)} s (${(jobs / postSeconds).toFixed(0)} POST/s), ${completeAtPosted} complete by then`
    }
  }
})

/**
 * BullMQ: adds `jobs` jobs (100 `add`s in flight) and waits until the queue has completed as many.
 */
export const bullmq = (
  context: Bench.Context,
  options: { readonly queue: Queue; readonly procs: ReadonlyArray<Process.Running> }
): Subject => ({
  name: "BullMQ",
  procs: options.procs,
  run: async (jobs) => {
    const { queue } = options
    const [complete0, failed0] = [await queue.getCompletedCount(), await queue.getFailedCount()]
    const started = performance.now()
    await inFlight(jobs, 100, async () => {
      await queue.add("job", jobPayload)
    })
    const added = performance.now()
    let failed = 0
    await until(
      async () => {
        const [complete, failedNow] = [await queue.getCompletedCount(), await queue.getFailedCount()]
        failed = failedNow - failed0
        return complete - complete0 + failed >= jobs
      },
      Math.max(120_000, jobs * 10),
      "BullMQ end to end"
    )
    const seconds = (performance.now() - started) / 1000
    const addSeconds = (added - started) / 1000
    return {
      jobsPerSecond: jobs / seconds,
      failed,
      detail: `all added after ${addSeconds.toFixed(1)} s (${(jobs / addSeconds).toFixed(0)} add/s)`
    }
  }
})

/**
 * Warms both subjects up with a fifth of the jobs, then runs `rounds` rounds of `jobs` jobs each,
 * alternating which goes first.
 */
export const compare = async (
  context: Bench.Context,
  subjects: ReadonlyArray<Subject>,
  jobs: number
): Promise<Array<Measured>> => {
  const rounds = subjects.map(
    () =>
      [] as Array<{
        round: Round
        cpuPer1000: number
        foreign: number
        machineMicros: number
        machineCores: number
      }>
  )
  for (const subject of subjects) {
    await subject.before?.()
    const warm = await subject.run(Math.max(100, Math.round(jobs / 5)))
    context.log(`  warm-up ${subject.name}: ${warm.jobsPerSecond.toFixed(0)} jobs/s`)
  }
  for (let round = 0; round < context.rounds; round++) {
    const order = subjects.map((_, i) => i)
    if (round % 2 === 1) order.reverse()
    for (const i of order) {
      const subject = subjects[i]!
      await subject.before?.()
      const noise = Machine.measureNoise()
      const cpuBefore = cpuOf(subject.procs)
      const redisBefore = await Bench.redisCpu(context.redis)
      const started = performance.now()
      const result = await subject.run(jobs)
      const redisCores = ((await Bench.redisCpu(context.redis)) - redisBefore) / ((performance.now() - started) / 1000)
      const cpuPer1000 = ((cpuOf(subject.procs) - cpuBefore) / jobs) * 1000
      const measured = noise()
      const foreign = measured?.foreignCores ?? 0
      const machineMicros = ((measured?.busySeconds ?? 0) / jobs) * 1e6
      const machineCores = measured?.busyCores ?? 0
      rounds[i]!.push({ round: result, cpuPer1000, foreign, machineMicros, machineCores })
      context.log(
        `  round ${round + 1} ${subject.name}: ${result.jobsPerSecond.toFixed(0)} jobs/s, ${result.failed} failed, ` +
          `${cpuPer1000.toFixed(2)} CPU s per 1,000 jobs, redis ${redisCores.toFixed(2)} cores, others ${foreign.toFixed(2)} cores, ` +
          `machine ${machineMicros.toFixed(0)} µs per job (${machineCores.toFixed(2)} cores busy)` +
          (result.detail === undefined ? "" : `; ${result.detail}`)
      )
    }
  }
  return subjects.map((subject, i) => ({
    name: subject.name,
    jobsPerSecond: Stats.summarize(rounds[i]!.map((entry) => entry.round.jobsPerSecond)),
    cpuSecondsPer1000: Stats.median(rounds[i]!.map((entry) => entry.cpuPer1000)),
    machineMicrosPerJob: Stats.median(rounds[i]!.map((entry) => entry.machineMicros)),
    machineCores: Stats.median(rounds[i]!.map((entry) => entry.machineCores)),
    failed: rounds[i]!.reduce((sum, entry) => sum + entry.round.failed, 0),
    foreignCores: Stats.median(rounds[i]!.map((entry) => entry.foreign))
  }))
}

/**
 * The plain client's ceiling: undici with `inFlight` `POST /process` calls in flight against the
 * mock for `seconds`, in this process. Returns requests per second, and the CPU µs the whole
 * machine spent per call.
 */
export const undiciCeiling = async (
  mockUrl: string,
  seconds: number,
  parallel = 100
): Promise<{ readonly rps: number; readonly machineMicrosPerCall: number }> => {
  const noise = Machine.measureNoise()
  const pool = new Pool(mockUrl, { connections: parallel })
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  let done = 0
  let sequence = 0
  const lane = async () => {
    while (performance.now() < deadline) {
      const jobId = `ceiling-${sequence++}`
      const answer = await pool.request({
        method: "POST",
        path: "/process",
        headers: { "content-type": "application/json", "idempotency-key": jobId },
        body: JSON.stringify({ job_id: jobId, payload: jobPayload })
      })
      await answer.body.json()
      if (answer.statusCode === 200) done++
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane))
  const elapsed = (performance.now() - started) / 1000
  const busySeconds = noise()?.busySeconds ?? 0
  await pool.close()
  return { rps: done / elapsed, machineMicrosPerCall: (busySeconds / Math.max(1, done)) * 1e6 }
}

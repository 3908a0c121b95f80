/**
 * End to end: jobs per second from the first submission to the last job finished, for two fair
 * pairs of peers, each of whose jobs makes the same call (undici, the same body and
 * `Idempotency-Key`) to the same mock sync vendor at 0 ms with no rate limit, run by as many worker
 * processes of `concurrency` jobs each:
 *
 * - over HTTP: `POST /jobs` to our server, run by our workers, against the same service written on
 *   Fastify + BullMQ (`servers/bullmqServer.ts`, `servers/bullmqWorker.ts`);
 * - in-process: our library's `JobService.submit` against BullMQ's `Queue.add`.
 *
 * And the ceiling of the call itself: undici with 100 requests in flight against the mock.
 */
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { Queue } from "bullmq"
import { Pool } from "undici"
import type { Job } from "@vendorflow/core"
import { type Process, Stats } from "@vendorflow/dev-stack"
import { RedisJobStore } from "@vendorflow/redis"
import * as Bench from "./Bench.ts"
import { jobPayload, postJob } from "./Body.ts"
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
   * CPU µs the whole machine spent per job, over the rounds: every process (the load, Redis, the
   * mock, the subject's) and the kernel's work for them. With the machine busy throughout, jobs/s
   * is bound by this.
   */
  readonly machineMicrosPerJob: Stats.Summary
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
  /** Our server and workers, jobs posted over HTTP. */
  readonly vendorflow: Measured
  /** Fastify + BullMQ, jobs posted over HTTP. */
  readonly fastifyBullmq: Measured
  /** Our library in-process (`JobService.submit`) and our workers. */
  readonly library: Measured
  /** BullMQ's `Queue.add` in-process and its workers. */
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

/** How many of the subject's jobs have finished, ever. */
type Finished = () => Promise<{ readonly complete: number; readonly failed: number }>

/**
 * A subject that submits `jobs` jobs, 100 at a time, with `submit` and is done when `finished` has
 * grown by as many: timed from the first submission to the last job finished.
 */
const subject = (options: {
  readonly name: string
  readonly procs: ReadonlyArray<Process.Running>
  /** What one submission is called in the log: `POST`, `add`, `submit`. */
  readonly verb: string
  /** Submits one job; returns a function that ends the submitting (closing what it opened). */
  readonly submitter: () => { readonly submit: () => Promise<void>; readonly close: () => Promise<void> }
  readonly finished: Finished
}): Subject => ({
  name: options.name,
  procs: options.procs,
  run: async (jobs) => {
    const before = await options.finished()
    const submitter = options.submitter()
    const started = performance.now()
    await inFlight(jobs, 100, submitter.submit)
    const submitted = performance.now()
    let failed = 0
    await until(
      async () => {
        const now = await options.finished()
        failed = now.failed - before.failed
        return now.complete - before.complete + failed >= jobs
      },
      Math.max(120_000, jobs * 10),
      `${options.name} end to end`
    )
    const seconds = (performance.now() - started) / 1000
    await submitter.close()
    const submitSeconds = (submitted - started) / 1000
    return {
      jobsPerSecond: jobs / seconds,
      failed,
      detail: `all submitted after ${submitSeconds.toFixed(1)} s (${(jobs / submitSeconds).toFixed(0)} ${options.verb}/s)`
    }
  }
})

/** `POST /jobs` with the job's body over a pool of 100 connections. */
const httpSubmitter = (serverUrl: string) => () => {
  const pool = new Pool(serverUrl, { connections: 100 })
  return {
    submit: () => postJob(pool).then(() => undefined),
    close: () => pool.close()
  }
}

/** Our store's count of complete and failed jobs under `prefix`. */
const storeFinished = (context: Bench.Context, prefix: string): Finished =>
  countedBy((status) => context.redis.zcard(RedisJobStore.keys(prefix).status(status)))

/** The count of complete and failed jobs that `count` gives. */
const countedBy =
  (count: (status: "complete" | "failed") => Promise<number>): Finished =>
  async () => {
    const [complete, failed] = await Promise.all([count("complete"), count("failed")])
    return { complete, failed }
  }

/** BullMQ's count of completed and failed jobs in `queue`. */
const queueFinished =
  (queue: Queue): Finished =>
  async () => {
    const [complete, failed] = await Promise.all([queue.getCompletedCount(), queue.getFailedCount()])
    return { complete, failed }
  }

/**
 * Our stack over HTTP: `POST /jobs` to our server, run by our workers. `finished` counts a status's
 * jobs; by default in the store's one shard on the bench's Redis.
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
): Subject =>
  subject({
    name: options.name ?? "vendorflow over HTTP",
    procs: options.procs,
    verb: "POST",
    submitter: httpSubmitter(options.serverUrl),
    finished: options.finished === undefined ? storeFinished(context, options.prefix) : countedBy(options.finished)
  })

/**
 * The same service on BullMQ over HTTP: `POST /jobs` to `bullmqServer.ts`, run by BullMQ workers.
 */
export const fastifyBullmq = (options: {
  readonly serverUrl: string
  readonly queue: Queue
  readonly procs: ReadonlyArray<Process.Running>
}): Subject =>
  subject({
    name: "Fastify + BullMQ over HTTP",
    procs: options.procs,
    verb: "POST",
    submitter: httpSubmitter(options.serverUrl),
    finished: queueFinished(options.queue)
  })

/**
 * Our library in this process: `JobService.submit` (the Effect service, on Redis under `prefix`)
 * for the `sync` vendor, run by our workers.
 */
export const vendorflowLibrary = (
  context: Bench.Context,
  options: {
    readonly submit: (payload: Job.JsonObject) => Promise<unknown>
    readonly prefix: string
    readonly procs: ReadonlyArray<Process.Running>
  }
): Subject =>
  subject({
    name: "vendorflow library",
    procs: options.procs,
    verb: "submit",
    submitter: () => ({ submit: () => options.submit(jobPayload).then(() => undefined), close: async () => {} }),
    finished: storeFinished(context, options.prefix)
  })

/**
 * BullMQ in this process: `Queue.add`, run by BullMQ workers.
 */
export const bullmq = (options: { readonly queue: Queue; readonly procs: ReadonlyArray<Process.Running> }): Subject =>
  subject({
    name: "BullMQ",
    procs: options.procs,
    verb: "add",
    submitter: () => ({
      submit: () => options.queue.add("job", jobPayload).then(() => undefined),
      close: async () => {}
    }),
    finished: queueFinished(options.queue)
  })

/**
 * Warms every subject up with a fifth of the jobs, then runs `rounds` rounds of `jobs` jobs each,
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
    machineMicrosPerJob: Stats.summarize(rounds[i]!.map((entry) => entry.machineMicros)),
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

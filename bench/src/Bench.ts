/**
 * What every scenario of a run shares: the load generator, the round settings, the Redis client,
 * the memory record and the noise meter; and the one way rounds are run, so that a subject and its
 * baseline are always measured alike: a warm-up each, then `rounds` rounds in which the two take
 * turns (and take turns going first), so a drift in the machine hits both.
 */
import { type Load, type Process, Stats } from "@vendorflow/dev-stack"
import type { Redis } from "ioredis"
import * as Machine from "./Machine.ts"
import * as Stack from "./Stack.ts"

/**
 * One resident-memory reading of one process.
 */
export interface MemoryReading {
  readonly when: string
  readonly process: string
  readonly rssMiB: number
}

/**
 * The run's shared settings and records.
 */
export interface Context {
  readonly env: Stack.Env
  readonly generator: Load.Generator
  readonly rounds: number
  readonly seconds: number
  readonly warmupSeconds: number
  /** Connections of the throughput runs (wrk `-c`). */
  readonly connections: number
  readonly redis: Redis
  readonly log: (line: string) => void
  readonly memory: Array<MemoryReading>
}

/**
 * Records the RSS of `procs` under `when`.
 */
export const recordMemory = (context: Context, when: string, procs: ReadonlyArray<Process.Running>): void => {
  for (const proc of procs) {
    const rss = proc.rss()
    if (rss !== undefined) context.memory.push({ when, process: proc.name, rssMiB: rss / 2 ** 20 })
  }
}

/**
 * One subject's figures over the rounds.
 */
export interface Measured {
  readonly name: string
  readonly rps: Stats.Summary
  readonly p50: Stats.Summary
  readonly p95: Stats.Summary
  readonly p99: Stats.Summary
  readonly errors: number
  /** CPU cores the subject's processes used on average during the rounds. */
  readonly cpuCores: Stats.Summary
  /** CPU cores used by processes outside the bench during the rounds (noise), median. */
  readonly foreignCores: number
  /**
   * CPU µs the whole machine spent per request, median: every process (the load generator, Redis,
   * the subject's) and the kernel's work for them.
   */
  readonly machineMicrosPerRequest: number
  readonly runs: ReadonlyArray<Load.Measurement>
}

/**
 * A subject of a load comparison.
 */
export interface Subject {
  readonly name: string
  /** The processes whose CPU counts as the subject's. */
  readonly procs: ReadonlyArray<Process.Running>
  /** Runs before every round (e.g. deleting the last round's keys). */
  readonly before?: (() => Promise<void>) | undefined
  readonly run: (seconds: number) => Promise<Load.Measurement>
}

const cpuOf = (procs: ReadonlyArray<Process.Running>): number =>
  procs.reduce((sum, proc) => sum + (proc.cpuSeconds() ?? 0), 0)

/**
 * The CPU seconds Redis has used so far (`INFO cpu`): Redis is single-threaded, so a round in
 * which it used close to one core was bound by Redis.
 */
export const redisCpu = async (redis: Redis): Promise<number> => {
  const info = await redis.info("cpu")
  const value = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? "0")
  return value("used_cpu_sys") + value("used_cpu_user")
}

/**
 * Warms each subject up, then runs `rounds` rounds of each, alternating; returns each subject's
 * figures in the order given.
 */
export const compare = async (context: Context, subjects: ReadonlyArray<Subject>): Promise<Array<Measured>> => {
  const runs = subjects.map(
    () => [] as Array<{ result: Load.Measurement; cpu: number; foreign: number; machineMicros: number }>
  )
  for (const subject of subjects) {
    await subject.before?.()
    const warm = await subject.run(context.warmupSeconds)
    context.log(`  warm-up ${subject.name}: ${warm.rps.toFixed(0)} req/s`)
  }
  for (let round = 0; round < context.rounds; round++) {
    // Each round starts with the next subject, so none always runs first (or last).
    const order = subjects.map((_, i) => (i + round) % subjects.length)
    for (const i of order) {
      const subject = subjects[i]!
      await subject.before?.()
      const noise = Machine.measureNoise()
      const cpuBefore = cpuOf(subject.procs)
      const redisBefore = await redisCpu(context.redis)
      const result = await subject.run(context.seconds)
      const cpu = (cpuOf(subject.procs) - cpuBefore) / result.seconds
      const redisCores = ((await redisCpu(context.redis)) - redisBefore) / result.seconds
      const measured = noise()
      const foreign = measured?.foreignCores ?? 0
      const machineMicros = ((measured?.busySeconds ?? 0) / Math.max(1, result.rps * result.seconds)) * 1e6
      runs[i]!.push({ result, cpu, foreign, machineMicros })
      context.log(
        `  round ${round + 1} ${subject.name}: ${result.rps.toFixed(0)} req/s, p50 ${result.latency.med.toFixed(1)} ms, ` +
          `p99 ${result.latency.p99.toFixed(1)} ms, errors ${result.socketErrors + result.statusErrors}, ` +
          `cpu ${cpu.toFixed(2)} cores, redis ${redisCores.toFixed(2)} cores, others ${foreign.toFixed(2)} cores, ` +
          `machine ${machineMicros.toFixed(0)} µs per request`
      )
    }
  }
  return subjects.map((subject, i) => {
    const mine = runs[i]!
    return {
      name: subject.name,
      rps: Stats.summarize(mine.map((run) => run.result.rps)),
      p50: Stats.summarize(mine.map((run) => run.result.latency.med)),
      p95: Stats.summarize(mine.map((run) => run.result.latency.p95)),
      p99: Stats.summarize(mine.map((run) => run.result.latency.p99)),
      errors: mine.reduce((sum, run) => sum + run.result.socketErrors + run.result.statusErrors, 0),
      cpuCores: Stats.summarize(mine.map((run) => run.cpu)),
      foreignCores: Stats.median(mine.map((run) => run.foreign)),
      machineMicrosPerRequest: Stats.median(mine.map((run) => run.machineMicros)),
      runs: mine.map((run) => run.result)
    }
  })
}

/**
 * A random key prefix for one run's keys, e.g. `vf-bench-1a2b3c4d:`.
 */
export const randomPrefix = (what: string): string => `vf-bench-${what}-${crypto.randomUUID().slice(0, 8)}:`

/**
 * Deletes a prefix's keys, quietly.
 */
export const clean = (context: Context, prefix: string) => (): Promise<void> =>
  Stack.dropKeys(context.env.redisUrl, prefix)

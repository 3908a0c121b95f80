/**
 * The soak (`--soak`, not run by default): a stack of its own (server, workers, mock at 0 ms)
 * under a steady open-loop load for `minutes` minutes, `rate` jobs a second each posted and then
 * read back, with the resident memory of the server and every worker sampled every 5 s. What it
 * answers: does memory level off (RSS after 10 minutes within 10% of RSS after 1 minute)?
 *
 * Finished jobs expire after two minutes (`REDIS_JOB_TTL`) and the stream is trimmed past 10,000
 * entries (`QUEUE_MAXLEN`), the store's and the queue's own retention settings, set low so that the
 * soak reaches them; Redis is sampled every minute to show it holds no more than they allow: the
 * job hashes (about `rate` × the TTL once jobs expire), the stream's length, and its used memory.
 */
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { Pool } from "undici"
import { RedisKeys } from "@vendorflow/redis"
import * as Bench from "./Bench.ts"
import { postJob } from "./Body.ts"
import * as Stack from "./Stack.ts"

/**
 * One process's memory over the soak.
 */
export interface Series {
  readonly process: string
  /** [seconds since the start, RSS MiB]. */
  readonly samples: ReadonlyArray<readonly [number, number]>
  readonly afterOneMinuteMiB: number
  readonly atEndMiB: number
  /** `atEnd / afterOneMinute - 1`, a fraction. */
  readonly growth: number
}

/**
 * What the soak's Redis held at one minute.
 */
export interface RedisSample {
  readonly minute: number
  /** Job hashes under the soak's prefix. */
  readonly jobs: number
  /** Entries in the vendor's stream. */
  readonly stream: number
  /** Redis's `used_memory`, MiB (the whole server; nothing else runs meanwhile). */
  readonly usedMiB: number
}

/**
 * What the soak measured.
 */
export interface Result {
  readonly minutes: number
  readonly ratePerSecond: number
  readonly iterations: number
  readonly errors: number
  readonly series: ReadonlyArray<Series>
  readonly redis: {
    readonly samples: ReadonlyArray<RedisSample>
    /** What retention allows: job hashes, `rate` × TTL; stream entries, `QUEUE_MAXLEN`. */
    readonly allowed: { readonly jobs: number; readonly stream: number }
  }
}

const ttlSeconds = 120
const streamMaxLength = 10_000

const nearest = (samples: ReadonlyArray<readonly [number, number]>, second: number): number => {
  let best = samples[0]
  for (const sample of samples) {
    if (Math.abs(sample[0] - second) < Math.abs((best?.[0] ?? 0) - second)) best = sample
  }
  return best?.[1] ?? Number.NaN
}

/**
 * Runs the soak.
 */
export const run = async (
  context: Bench.Context,
  options: { readonly minutes: number; readonly rate: number; readonly workers: number }
): Promise<Result> => {
  const prefix = Bench.randomPrefix("soak")
  const mock = await Stack.mockSync(context.env, { name: "mock-sync-soak", latency: "0" })
  const ttl = {
    ...context.env,
    extra: { REDIS_JOB_TTL: `${ttlSeconds} seconds`, QUEUE_MAXLEN: String(streamMaxLength), ...context.env.extra }
  }
  const server = await Stack.vendorflowServer(ttl, { name: "server-soak", prefix, mockUrl: mock.url })
  const workers = await Stack.vendorflowWorkers(ttl, {
    name: "worker-soak",
    n: options.workers,
    prefix,
    mockUrl: mock.url,
    publicUrl: server.url
  })
  const procs = [server.process, ...workers]
  const samples = new Map(procs.map((proc) => [proc.name, [] as Array<readonly [number, number]>]))
  const pool = new Pool(server.url, { connections: 64 })
  const started = performance.now()
  const end = started + options.minutes * 60_000
  let iterations = 0
  let errors = 0
  let inFlight = 0
  const pending = new Set<Promise<void>>()

  const iteration = async () => {
    inFlight++
    try {
      // A POST answered otherwise than 200 throws: an error, as below.
      const id = await postJob(pool)
      const read = await pool.request({ method: "GET", path: `/jobs/${id}` })
      await read.body.dump()
      if (read.statusCode !== 200) errors++
      iterations++
    } catch {
      errors++
    } finally {
      inFlight--
    }
  }

  const countKeys = async (pattern: string) => {
    let cursor = "0"
    let count = 0
    do {
      const [next, keys] = await context.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      cursor = next
      count += keys.length
    } while (cursor !== "0")
    return count
  }
  const redisSamples: Array<RedisSample> = []
  const sampleRedis = async (minute: number) => {
    const memory = /used_memory:(\d+)/.exec(await context.redis.info("memory"))
    redisSamples.push({
      minute,
      jobs: await countKeys(`${prefix}{j:*}:job:*`),
      stream: await context.redis.xlen(RedisKeys.vendor(prefix, "sync").stream),
      usedMiB: Number(memory?.[1] ?? Number.NaN) / 2 ** 20
    })
  }

  const sampler = (async () => {
    while (performance.now() < end) {
      const second = (performance.now() - started) / 1000
      for (const proc of procs) {
        const rss = proc.rss()
        if (rss !== undefined) samples.get(proc.name)?.push([Math.round(second), rss / 2 ** 20])
      }
      await sleep(5000)
    }
  })()

  // Open loop: every 10 ms, start the iterations due by now, unless 1,000 are already in flight.
  let due = 0
  let lastLog = started
  while (performance.now() < end) {
    const now = performance.now()
    const shouldHaveStarted = Math.floor(((now - started) / 1000) * options.rate)
    while (due < shouldHaveStarted) {
      due++
      if (inFlight < 1000) {
        const running = iteration()
        pending.add(running)
        void running.then(() => pending.delete(running))
      } else errors++
    }
    if (now - lastLog >= 60_000) {
      lastLog = now
      const minute = Math.round((now - started) / 60_000)
      const server = samples.get(procs[0]!.name)?.at(-1)?.[1] ?? Number.NaN
      await sampleRedis(minute)
      const redis = redisSamples.at(-1)
      context.log(
        `  soak ${minute} min: ${iterations} iterations, ${errors} errors, server RSS ${server.toFixed(0)} MiB; ` +
          `Redis: ${redis?.jobs} job hashes, stream ${redis?.stream}, used ${redis?.usedMiB.toFixed(0)} MiB`
      )
    }
    await sleep(10)
  }
  await sampler
  await Promise.all(pending)
  await pool.close()
  await sampleRedis(options.minutes)

  const series = procs.map((proc): Series => {
    const mine = samples.get(proc.name) ?? []
    const afterOneMinuteMiB = nearest(mine, 60)
    const atEndMiB = mine.at(-1)?.[1] ?? Number.NaN
    return { process: proc.name, samples: mine, afterOneMinuteMiB, atEndMiB, growth: atEndMiB / afterOneMinuteMiB - 1 }
  })
  Bench.recordMemory(context, "after soak", procs)
  await Stack.stop(...workers)
  await Stack.stop(server.process, mock.process)
  await Stack.dropKeys(context.env.redisUrl, prefix)
  return {
    minutes: options.minutes,
    ratePerSecond: options.rate,
    iterations,
    errors,
    series,
    redis: { samples: redisSamples, allowed: { jobs: options.rate * ttlSeconds, stream: streamMaxLength } }
  }
}

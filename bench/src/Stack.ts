/**
 * The pieces a benchmark starts, each a real process on loopback: our server and workers on Redis
 * (under a random `REDIS_PREFIX`), the mock sync vendor, the Fastify floor and BullMQ's workers;
 * and the Redis housekeeping around them (counting a status, deleting a run's keys).
 */
import { Redis } from "ioredis"
import * as Proc from "./Proc.ts"

/**
 * Where a run keeps its logs and profiles, and what every process shares.
 */
export interface Env {
  readonly redisUrl: string
  readonly logDir: string
  /** Set: every process started here writes a CPU profile there when it stops. */
  readonly profileDir?: string | undefined
  /** Extra variables for our server and workers (`--env K=V`), for tuning experiments. */
  readonly extra: Record<string, string>
}

const started: Array<Proc.Proc> = []

const run = (env: Env, name: string, script: string, vars: Record<string, string>, profile: boolean) => {
  const proc = Proc.start({
    name,
    script,
    env: { ...Proc.baseEnv(), ...vars },
    logDir: env.logDir,
    cpuProfileDir: profile ? env.profileDir : undefined
  })
  started.push(proc)
  return proc
}

/**
 * Stops everything still running (workers first, so nothing is taking while the rest goes).
 */
export const stopAll = async (): Promise<void> => {
  const running = started.splice(0)
  const workers = running.filter((proc) => proc.name.includes("worker"))
  await Promise.all(workers.map((proc) => proc.stop()))
  await Promise.all(running.map((proc) => proc.stop()))
}

/**
 * Stops some processes and forgets them.
 */
export const stop = async (...procs: ReadonlyArray<Proc.Proc>): Promise<void> => {
  await Promise.all(procs.map((proc) => proc.stop()))
  for (const proc of procs) {
    const index = started.indexOf(proc)
    if (index >= 0) started.splice(index, 1)
  }
}

/**
 * A running HTTP server of the bench.
 */
export interface Server {
  readonly proc: Proc.Proc
  readonly url: string
}

/**
 * `vendorflow-server` on Redis (job store and queue under `prefix`), or on the in-memory backends
 * when `prefix` is undefined.
 */
export const vendorflowServer = async (
  env: Env,
  options: { readonly name: string; readonly prefix: string | undefined; readonly mockUrl?: string | undefined }
): Promise<Server> => {
  const vars: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    // The scenarios post far faster than any vendor here is called (in the original scenario the
    // mock takes 100-500 ms a call; in the ingest rounds nothing consumes), so the back-pressure
    // limit (100,000 jobs waiting) would answer 503 within a round, as designed; the original
    // scenario had no such limit, and `npm run load` raises it the same way.
    MAX_BACKLOG: "100000000",
    ...(options.prefix === undefined ? {} : { REDIS_URL: env.redisUrl, REDIS_PREFIX: options.prefix }),
    ...(options.mockUrl === undefined ? {} : { MOCK_SYNC_URL: options.mockUrl }),
    ...env.extra
  }
  const proc = run(env, options.name, Proc.entries.server, vars, true)
  return { proc, url: await Proc.listeningUrl(proc) }
}

/**
 * `n` `vendorflow-worker` processes on Redis under `prefix`, calling the mock at `mockUrl`.
 */
export const vendorflowWorkers = async (
  env: Env,
  options: {
    readonly name: string
    readonly n: number
    readonly prefix: string
    readonly mockUrl: string
    readonly publicUrl: string
    readonly vars?: Record<string, string> | undefined
  }
): Promise<ReadonlyArray<Proc.Proc>> => {
  const workers = Array.from({ length: options.n }, (_, i) =>
    run(
      env,
      `${options.name}-${i + 1}`,
      Proc.entries.worker,
      {
        REDIS_URL: env.redisUrl,
        REDIS_PREFIX: options.prefix,
        MOCK_SYNC_URL: options.mockUrl,
        PUBLIC_URL: options.publicUrl,
        ...options.vars,
        ...env.extra
      },
      true
    )
  )
  await Promise.all(workers.map((worker) => worker.waitFor(/vendorflow-worker: consuming/)))
  return workers
}

/**
 * The mock sync vendor with the given latency (`MOCK_SYNC_LATENCY_MS`, e.g. `"0"` or `"100-500"`)
 * and rate limit (`MOCK_SYNC_RATE_LIMIT`, e.g. `"50/1s"`).
 */
export const mockSync = async (
  env: Env,
  options: { readonly name: string; readonly latency: string; readonly rateLimit?: string | undefined }
): Promise<Server> => {
  const proc = run(
    env,
    options.name,
    Proc.entries.mockSync,
    {
      PORT: "0",
      HOST: "127.0.0.1",
      MOCK_SYNC_LATENCY_MS: options.latency,
      ...(options.rateLimit === undefined ? {} : { MOCK_SYNC_RATE_LIMIT: options.rateLimit })
    },
    false
  )
  return { proc, url: await Proc.listeningUrl(proc) }
}

/**
 * The Fastify floor, with Redis under `prefix`, or without any I/O when `prefix` is undefined.
 */
export const floor = async (env: Env, options: { readonly name: string; readonly prefix: string | undefined }) => {
  const proc = run(
    env,
    options.name,
    Proc.entries.floor,
    {
      PORT: "0",
      REDIS_URL: env.redisUrl,
      FLOOR_REDIS: options.prefix === undefined ? "0" : "1",
      FLOOR_PREFIX: options.prefix ?? ""
    },
    true
  )
  return { proc, url: await Proc.listeningUrl(proc) }
}

/**
 * `n` BullMQ worker processes on queue `queue` under `prefix`, `concurrency` jobs at once each.
 */
export const bullmqWorkers = async (
  env: Env,
  options: {
    readonly name: string
    readonly n: number
    readonly prefix: string
    readonly queue: string
    readonly concurrency: number
    readonly mockUrl: string
  }
): Promise<ReadonlyArray<Proc.Proc>> => {
  const workers = Array.from({ length: options.n }, (_, i) =>
    run(
      env,
      `${options.name}-${i + 1}`,
      Proc.entries.bullmqWorker,
      {
        REDIS_URL: env.redisUrl,
        BULLMQ_PREFIX: options.prefix,
        BULLMQ_QUEUE: options.queue,
        BULLMQ_CONCURRENCY: String(options.concurrency),
        MOCK_SYNC_URL: options.mockUrl
      },
      true
    )
  )
  await Promise.all(workers.map((worker) => worker.waitFor(/bullmq worker ready/)))
  return workers
}

/**
 * A plain Redis client for the bench's own reads and clean-up.
 */
export const redisClient = (url: string): Redis => new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false })

/**
 * Deletes every key under `prefix`, in batches, without blocking Redis.
 */
export const dropKeys = async (redis: Redis, prefix: string): Promise<number> => {
  let deleted = 0
  let cursor = "0"
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 2000)
    cursor = next
    if (keys.length > 0) deleted += await redis.unlink(...keys)
  } while (cursor !== "0")
  return deleted
}

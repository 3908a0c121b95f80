/**
 * The pieces a benchmark starts, on dev-stack's launcher, each a real process on loopback: our
 * server and workers on Redis (under a random `REDIS_PREFIX`), the mock sync vendor, the Fastify
 * floor and BullMQ's workers. All of them live in the run's scope: {@link stopAll} closes it, which
 * stops what still runs with SIGTERM (workers first, as the last started) so that each writes its
 * CPU profile. And the Redis housekeeping around them.
 */
import { MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { Cleaner, type Job, JobService, VendorRegistry } from "@vendorflow/core"
import { Process, Stack } from "@vendorflow/dev-stack"
import { RedisBackend } from "@vendorflow/redis"
import { RedisCluster, RedisTest } from "@vendorflow/redis/testing"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { Redis } from "ioredis"
import { fileURLToPath } from "node:url"

/**
 * A path inside the repository, from this file.
 */
export const repoPath = (relative: string): string => fileURLToPath(new URL(`../../${relative}`, import.meta.url))

/**
 * Where a run keeps its logs and profiles, and what every process shares.
 */
export interface Env {
  readonly redisUrl: string
  readonly logDir: string
  /** Set: every process started here but the mocks writes a CPU profile there when it stops. */
  readonly profileDir?: string | undefined
  /** Extra variables for our server and workers (`--env K=V`), for tuning experiments. */
  readonly extra: Record<string, string>
}

// Besides where a process listens, what would point a child elsewhere or change what is measured:
// the mock's latency and limit, MongoDB, request logging.
const notInherited = ["MOCK_SYNC_RATE_LIMIT", "MOCK_SYNC_LATENCY_MS", "MONGODB_URI", "LOG_REQUESTS"]

const settings = (env: Env): Stack.Settings => ({
  baseEnv: Process.inheritedEnv(notInherited),
  logDir: env.logDir,
  cpuProfileDir: env.profileDir,
  onClose: "stop"
})

const scope = Effect.runSync(Scope.make())

// Starts into the run's scope.
const run = <A>(effect: Effect.Effect<A, never, Scope.Scope>): Promise<A> =>
  Effect.runPromise(Scope.provide(effect, scope))

/**
 * Stops everything still running (workers first, so nothing is taking while the rest goes).
 */
export const stopAll = (): Promise<void> => Effect.runPromise(Scope.close(scope, Exit.void))

/**
 * Stops some processes (SIGTERM, then SIGKILL after 15 s).
 */
export const stop = async (...procs: ReadonlyArray<Process.Running>): Promise<void> => {
  await Promise.all(procs.map((proc) => Effect.runPromise(proc.stop())))
}

/**
 * `vendorflow-server` on Redis (job store and queue under `prefix`), or on the in-memory backends
 * when `prefix` is undefined.
 */
export const vendorflowServer = (
  env: Env,
  options: {
    readonly name: string
    readonly prefix: string | undefined
    readonly mockUrl?: string | undefined
    /** Without `prefix`: the SQLite file for the jobs and queue (memory when absent). */
    readonly sqlitePath?: string | undefined
  }
): Promise<Stack.Server> =>
  run(
    Stack.server(settings(env), {
      name: options.name,
      env: {
        // The scenarios post far faster than any vendor here is called (the mock of the original
        // scenario takes 100-500 ms a call; in the ingest rounds nothing consumes), so the
        // back-pressure limit would answer 503 within a round, as designed; the original scenario
        // had no such limit, and `npm run load` raises it the same way.
        MAX_BACKLOG: "100000000",
        ...(options.prefix === undefined ? {} : { REDIS_URL: env.redisUrl, REDIS_PREFIX: options.prefix }),
        ...(options.sqlitePath === undefined ? {} : { SQLITE_PATH: options.sqlitePath }),
        ...(options.mockUrl === undefined ? {} : { MOCK_SYNC_URL: options.mockUrl }),
        ...env.extra
      }
    })
  )

/**
 * The all-in-one (`npm start`) on `sqlitePath` (`:memory:` for memory), its own mock sync vendor
 * answering at once and with no limit.
 */
export const allInOne = (
  env: Env,
  options: { readonly name: string; readonly sqlitePath: string }
): Promise<Stack.Server> =>
  run(
    Stack.standalone(settings(env), {
      name: options.name,
      env: { SQLITE_PATH: options.sqlitePath, MOCK_SYNC_LATENCY_MS: "0", MAX_BACKLOG: "100000000", ...env.extra }
    })
  )

/**
 * `n` `vendorflow-worker` processes on Redis under `prefix`, calling the mock at `mockUrl`.
 */
export const vendorflowWorkers = (
  env: Env,
  options: {
    readonly name: string
    readonly n: number
    readonly prefix: string
    readonly mockUrl: string
    readonly publicUrl: string
    readonly vars?: Record<string, string> | undefined
  }
): Promise<ReadonlyArray<Process.Running>> =>
  run(
    Effect.forEach(
      Array.from({ length: options.n }, (_, i) => i + 1),
      (i) =>
        Stack.worker(settings(env), {
          name: `${options.name}-${i}`,
          env: {
            REDIS_URL: env.redisUrl,
            REDIS_PREFIX: options.prefix,
            MOCK_SYNC_URL: options.mockUrl,
            PUBLIC_URL: options.publicUrl,
            ...options.vars,
            ...env.extra
          }
        }),
      { concurrency: "unbounded" }
    )
  )

/**
 * The mock sync vendor with the given latency (`MOCK_SYNC_LATENCY_MS`, e.g. `"0"` or `"100-500"`)
 * and other `MOCK_SYNC_*` settings in `vars` (its rate limit, cap on calls in flight).
 */
export const mockSync = (
  env: Env,
  options: { readonly name: string; readonly latency: string; readonly vars?: Record<string, string> | undefined }
): Promise<Stack.Server> =>
  run(
    Stack.mockSync(settings(env), {
      name: options.name,
      env: { MOCK_SYNC_LATENCY_MS: options.latency, ...options.vars }
    })
  )

/**
 * The Fastify floor, with Redis under `prefix`, or without any I/O when `prefix` is undefined.
 */
export const floor = (env: Env, options: { readonly name: string; readonly prefix: string | undefined }) =>
  run(
    Effect.map(
      Stack.launch(settings(env), {
        name: options.name,
        script: repoPath("bench/servers/floor.ts"),
        env: {
          PORT: "0",
          REDIS_URL: env.redisUrl,
          FLOOR_REDIS: options.prefix === undefined ? "0" : "1",
          FLOOR_PREFIX: options.prefix ?? ""
        },
        ready: /listening on (http:\/\/\S+)/
      }),
      ({ process, ready }): Stack.Server => ({ process, url: (ready[1] ?? "").replace(/\/$/, "") })
    )
  )

/**
 * The same service written on Fastify + BullMQ (`servers/bullmqServer.ts`), on queue `queue` under
 * `prefix`.
 */
export const bullmqServer = (
  env: Env,
  options: { readonly name: string; readonly prefix: string; readonly queue: string }
): Promise<Stack.Server> =>
  run(
    Effect.map(
      Stack.launch(settings(env), {
        name: options.name,
        script: repoPath("bench/servers/bullmqServer.ts"),
        env: { PORT: "0", REDIS_URL: env.redisUrl, BULLMQ_PREFIX: options.prefix, BULLMQ_QUEUE: options.queue },
        ready: /listening on (http:\/\/\S+)/
      }),
      ({ process, ready }): Stack.Server => ({ process, url: (ready[1] ?? "").replace(/\/$/, "") })
    )
  )

/**
 * Our library in this process, as an app submits through it: the `JobService` on Redis under
 * `prefix`, with the `sync` vendor at `mockUrl` to route to, and no consumer (the worker processes
 * run the jobs).
 */
export const vendorflowLibrary = async (
  env: Env,
  options: { readonly prefix: string; readonly mockUrl: string }
): Promise<{
  readonly submit: (payload: Job.JsonObject) => Promise<Job.Job>
  readonly close: () => Promise<void>
}> => {
  const runtime = ManagedRuntime.make(
    JobService.layer.pipe(
      Layer.provide(
        Layer.mergeAll(VendorRegistry.layer([MockSyncVendor.make({ baseUrl: options.mockUrl })]), Cleaner.layer)
      ),
      Layer.provide(RedisBackend.make({ url: env.redisUrl, prefix: options.prefix }).layer)
    )
  )
  const jobs = await runtime.runPromise(JobService.JobService.useSync((service) => service))
  return {
    submit: (payload) => runtime.runPromise(jobs.submit({ payload })),
    close: () => runtime.dispose()
  }
}

/**
 * `n` BullMQ worker processes on queue `queue` under `prefix`, `concurrency` jobs at once each.
 */
export const bullmqWorkers = (
  env: Env,
  options: {
    readonly name: string
    readonly n: number
    readonly prefix: string
    readonly queue: string
    readonly concurrency: number
    readonly mockUrl: string
  }
): Promise<ReadonlyArray<Process.Running>> =>
  run(
    Effect.forEach(
      Array.from({ length: options.n }, (_, i) => i + 1),
      (i) =>
        Effect.map(
          Stack.launch(settings(env), {
            name: `${options.name}-${i}`,
            script: repoPath("bench/servers/bullmqWorker.ts"),
            env: {
              REDIS_URL: env.redisUrl,
              BULLMQ_PREFIX: options.prefix,
              BULLMQ_QUEUE: options.queue,
              BULLMQ_CONCURRENCY: String(options.concurrency),
              MOCK_SYNC_URL: options.mockUrl
            },
            ready: /bullmq worker ready/
          }),
          ({ process }) => process
        ),
      { concurrency: "unbounded" }
    )
  )

/**
 * A local Redis Cluster of three primaries and three replicas (see `RedisCluster`), stopped with
 * the rest.
 */
export const redisCluster = (): Promise<RedisCluster.RedisCluster> => run(Effect.orDie(RedisCluster.make))

/**
 * A plain Redis client for the bench's own reads.
 */
export const redisClient = (url: string): Redis => new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: false })

/**
 * Deletes every key under `prefix`.
 */
export const dropKeys = (redisUrl: string, prefix: string): Promise<void> =>
  Effect.runPromise(RedisTest.dropKeys(redisUrl, prefix))

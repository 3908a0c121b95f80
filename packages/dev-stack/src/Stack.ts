/**
 * The launcher: vendorflow's processes started for the whole-system tests, load runs and
 * benchmarks, each a real process on loopback, in the scope that started it. One at a time (the API
 * server, a worker, a mock vendor, the all-in-one, any script with a line that says it is ready) or
 * the split deployment ({@link start}): both mock vendors, the API server and workers sharing
 * Redis under a random key prefix (queue, rate limits, circuits and the job store), each on a port
 * it binds itself; its keys are deleted when the scope closes, after its processes have stopped
 * (the workers first).
 *
 * A process that fails at start-up (our bins say why in one line and exit 1, e.g. when the shared
 * Redis did not answer their first command in time on a busy machine) or exits before it is ready
 * is started again, up to three times, rather than waited on.
 *
 * @since 0.0.0
 */
import { RedisServer, RedisTest } from "@vendorflow/redis/testing"
import { Effect, Schedule, type Scope } from "effect"
import { fileURLToPath } from "node:url"
import * as Process from "./Process.ts"

const entry = (relative: string) => fileURLToPath(new URL(`../../${relative}`, import.meta.url))

/**
 * Our programs, as their packages declare them.
 *
 * @category constants
 */
export const bins = {
  server: entry("server/src/bin.ts"),
  worker: entry("worker/src/bin.ts"),
  standalone: entry("standalone/src/bin.ts"),
  mockSync: entry("adapters/mock-sync/src/bin.ts"),
  mockAsync: entry("adapters/mock-async/src/bin.ts")
} as const

/**
 * What the processes a caller starts share.
 *
 * @category models
 */
export interface Settings {
  /** The environment each starts from; default `Process.inheritedEnv()`. */
  readonly baseEnv?: Readonly<Record<string, string>> | undefined
  /** Where each writes `<name>.log`; none when undefined. */
  readonly logDir?: string | undefined
  /** Where our server and workers write a CPU profile when they stop; none when undefined. */
  readonly cpuProfileDir?: string | undefined
  /** See `Process.Options.onClose`; default `kill`. */
  readonly onClose?: "kill" | "stop" | undefined
}

// What our bins print once they listen (the API server, the mock vendors).
const listening = /[Ll]istening on (http:\/\/\S+)/

// How our bins fail at start-up: one line naming the program, then exit 1.
const startupFailure = /^vendorflow(?:-server|-worker)?: (?!consuming$).*$/m

/**
 * Starts `script` and waits until its output matches `ready`, starting it again after a failed
 * start-up, up to three times.
 *
 * @category constructors
 */
export const launch = (
  settings: Settings,
  options: {
    readonly name: string
    readonly script: string
    readonly env: Readonly<Record<string, string>>
    readonly ready: RegExp
    /** Whether it writes a CPU profile into `settings.cpuProfileDir`; default true. */
    readonly profile?: boolean | undefined
    /** Node's own options, as its deployment runs it; none by default. */
    readonly nodeArgs?: ReadonlyArray<string> | undefined
    /** Settings drawn again at each attempt, over `env` (a port of its own each time). */
    readonly perAttempt?: Effect.Effect<Readonly<Record<string, string>>> | undefined
  }
): Effect.Effect<{ readonly process: Process.Running; readonly ready: RegExpExecArray }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const fresh = options.perAttempt === undefined ? {} : yield* options.perAttempt
    const process = yield* Process.start({
      name: options.name,
      script: options.script,
      env: { ...(settings.baseEnv ?? Process.inheritedEnv()), ...options.env, ...fresh },
      nodeArgs: options.nodeArgs,
      logDir: settings.logDir,
      cpuProfileDir: options.profile === false ? undefined : settings.cpuProfileDir,
      onClose: settings.onClose
    })
    const failed = Effect.flatMap(process.waitFor(startupFailure, "60 seconds"), ([line]) =>
      Effect.fail(new Error(line))
    )
    const ready = yield* Effect.raceFirst(process.waitFor(options.ready, "60 seconds"), failed).pipe(
      Effect.tapError(() => process.stop("SIGKILL"))
    )
    return { process, ready }
  }).pipe(
    Effect.tapError((error) => Effect.logWarning(`${error.message}; starting it again`)),
    Effect.retry({ times: 3, schedule: Schedule.spaced("1 second") }),
    Effect.orDie
  )

const url = (match: RegExpExecArray) => (match[1] ?? "").replace(/\/$/, "")

/**
 * A process that serves HTTP, and where.
 *
 * @category models
 */
export interface Server {
  readonly process: Process.Running
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string
}

// A program listening on loopback, on the port `Component.port` says; it says where once it listens.
const listen = (
  settings: Settings,
  options: {
    readonly name: string
    readonly script: string
    readonly env: Readonly<Record<string, string>>
    readonly port?: Component["port"]
    readonly profile?: boolean | undefined
    readonly nodeArgs?: ReadonlyArray<string> | undefined
  }
): Effect.Effect<Server, never, Scope.Scope> => {
  const { port, ...rest } = options
  return Effect.map(
    launch(settings, {
      ...rest,
      env: { ...options.env, HOST: "127.0.0.1" },
      perAttempt: Effect.map(
        port === "restartable" ? RedisServer.freePort.pipe(Effect.orDie) : Effect.succeed(port ?? 0),
        (chosen) => ({ PORT: String(chosen) })
      ),
      ready: listening
    }),
    ({ process, ready }) => ({ process, url: url(ready) })
  )
}

/**
 * What starting one of our programs takes: its environment (over the settings'), and its name.
 *
 * @category models
 */
export interface Component {
  readonly name?: string | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
  /**
   * 0 or none: a free port the system picks. `"restartable"`: a free port below the system's range
   * (20000-32000), drawn again at each attempt: one to start the process on again later, which a
   * port the system picks may not be by then (an outgoing connection may have taken it).
   */
  readonly port?: number | "restartable" | undefined
}

/**
 * Node's options for `vendorflow-server`, as the image runs it (the Dockerfile's `CMD`): a young
 * generation of at most 2 × 16 MiB instead of Node's 2 × 64, which takes up to about 90 MiB off
 * the server's RSS under load at no CPU cost a request (docs/operations.md, "Memory").
 *
 * @category constants
 */
export const serverNodeArgs = ["--max-semi-space-size=16"] as const

/**
 * `vendorflow-server`, run as the image runs it ({@link serverNodeArgs}).
 *
 * @category constructors
 */
export const server = (settings: Settings, options: Component = {}) =>
  listen(settings, {
    name: options.name ?? "server",
    script: bins.server,
    env: options.env ?? {},
    port: options.port,
    nodeArgs: serverNodeArgs
  })

/**
 * A `vendorflow-worker`, once it consumes.
 *
 * @category constructors
 */
export const worker = (settings: Settings, options: Omit<Component, "port"> = {}) =>
  Effect.map(
    launch(settings, {
      name: options.name ?? "worker",
      script: bins.worker,
      env: options.env ?? {},
      ready: /vendorflow-worker: consuming/
    }),
    ({ process }) => process
  )

/**
 * The mock sync vendor.
 *
 * @category constructors
 */
export const mockSync = (settings: Settings, options: Component = {}) =>
  listen(settings, {
    name: options.name ?? "mock-sync",
    script: bins.mockSync,
    env: options.env ?? {},
    port: options.port,
    profile: false
  })

/**
 * The mock async vendor.
 *
 * @category constructors
 */
export const mockAsync = (settings: Settings, options: Component = {}) =>
  listen(settings, {
    name: options.name ?? "mock-async",
    script: bins.mockAsync,
    env: options.env ?? {},
    port: options.port,
    profile: false
  })

/**
 * The all-in-one process (`npm start`): API, worker and both mock vendors, all on free ports; on
 * memory unless `options.env` names a backend (`SQLITE_PATH`, `REDIS_URL`).
 *
 * @category constructors
 */
export const standalone = (settings: Settings, options: Omit<Component, "port"> = {}) =>
  Effect.map(
    launch(settings, {
      name: options.name ?? "all-in-one",
      script: bins.standalone,
      env: {
        SQLITE_PATH: ":memory:",
        ...options.env,
        PORT: options.env?.["PORT"] ?? "0",
        HOST: "127.0.0.1",
        MOCK_SYNC_PORT: "0",
        MOCK_ASYNC_PORT: "0"
      },
      ready: /at (http:\/\/\S+): API docs/
    }),
    ({ process, ready }): Server => ({ process, url: url(ready) })
  )

/**
 * A running split deployment.
 *
 * @category models
 */
export interface Stack {
  readonly api: string
  readonly sync: string
  readonly async: string
  readonly redisUrl: string
  readonly prefix: string
  /** The mock vendors running. */
  readonly vendors: ReadonlyArray<"sync" | "async">
  readonly server: Process.Running
  readonly workers: ReadonlyArray<Process.Running>
  /** Starts one more worker and waits until it consumes. */
  readonly startWorker: () => Effect.Effect<Process.Running, never, Scope.Scope>
  /** Starts an API server on the stack's port (the last one must have exited) and waits until it listens. */
  readonly startServer: () => Effect.Effect<Process.Running, never, Scope.Scope>
}

/**
 * What a split deployment is started with.
 *
 * @category models
 */
export interface Options extends Settings {
  readonly redisUrl: string
  /**
   * Whether `redisUrl` names the nodes of a Redis Cluster of the caller's own (`REDIS_CLUSTER=true`);
   * its keys are left for it to discard with the cluster.
   */
  readonly redisCluster?: boolean | undefined
  readonly workers: number
  /** The mock vendors to run; default both (a scenario for one vendor saves starting the other). */
  readonly vendors?: ReadonlyArray<"sync" | "async"> | undefined
  /** Starts the key prefix; default `vf-stack`. */
  readonly label?: string | undefined
  /** Added to the server's and the workers' environment. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Added to the mock sync vendor's environment. */
  readonly syncEnv?: Readonly<Record<string, string>> | undefined
  /** Added to the mock async vendor's environment. */
  readonly asyncEnv?: Readonly<Record<string, string>> | undefined
  /** The sync vendor's limit (`MOCK_SYNC_RATE_LIMIT`), told to the vendor and (unless `env` says otherwise) the workers. */
  readonly syncLimit?: string | undefined
  /** The sync vendor's latency (`MOCK_SYNC_LATENCY_MS`). */
  readonly syncLatency?: string | undefined
}

// Where a vendor the stack does not run is said to be: a port nothing listens on.
const unanswered = "http://127.0.0.1:1"

/**
 * Starts the mock vendors, then the API server, then `workers` workers, on one Redis key prefix;
 * stops them (the workers first) and deletes the prefix's keys when the scope closes.
 *
 * @category constructors
 */
export const start = (options: Options): Effect.Effect<Stack, never, Scope.Scope> =>
  Effect.gen(function* () {
    const prefix = RedisTest.randomPrefix(options.label ?? "vf-stack")
    if (options.redisCluster !== true) yield* Effect.addFinalizer(() => RedisTest.dropKeys(options.redisUrl, prefix))
    // The job store is Redis too: a MongoDB from the environment is left out.
    const { MONGODB_URI: _mongo, ...baseEnv } = options.baseEnv ?? Process.inheritedEnv()
    const settings: Settings = { ...options, baseEnv }
    const vendors = options.vendors ?? ["sync", "async"]
    const limit = options.syncLimit === undefined ? {} : { MOCK_SYNC_RATE_LIMIT: options.syncLimit }
    // Each process binds its port itself and says where (a port probed free beforehand can be taken
    // by a concurrent test before the process binds it), so the vendors start first, then the server,
    // then the workers, which call back to it.
    const [sync, async] = yield* Effect.all(
      [
        vendors.includes("sync")
          ? mockSync(settings, {
              env: {
                ...limit,
                ...(options.syncLatency === undefined ? {} : { MOCK_SYNC_LATENCY_MS: options.syncLatency }),
                ...options.syncEnv
              }
            }).pipe(Effect.map(({ url }) => url))
          : Effect.succeed(unanswered),
        vendors.includes("async")
          ? mockAsync(settings, { env: options.asyncEnv }).pipe(Effect.map(({ url }) => url))
          : Effect.succeed(unanswered)
      ],
      { concurrency: "unbounded" }
    )
    const shared = {
      REDIS_URL: options.redisUrl,
      REDIS_PREFIX: prefix,
      ...(options.redisCluster === true ? { REDIS_CLUSTER: "true" } : {}),
      MOCK_SYNC_URL: sync,
      MOCK_ASYNC_URL: async,
      ...limit,
      ...options.env
    }
    const first = yield* server(settings, { env: shared, port: "restartable" })
    const api = first.url
    const apiPort = Number(new URL(api).port)
    const workerEnv = { ...shared, PUBLIC_URL: api, ...options.env }
    const workers: Array<Process.Running> = []
    let named = 0
    const startWorker = () =>
      Effect.suspend(() => worker(settings, { name: `worker-${++named}`, env: workerEnv })).pipe(
        Effect.tap((started) => Effect.sync(() => workers.push(started)))
      )
    const startServer = () => Effect.map(server(settings, { env: shared, port: apiPort }), ({ process }) => process)
    yield* Effect.forEach(Array.from({ length: options.workers }), startWorker, {
      concurrency: "unbounded",
      discard: true
    })
    // Added after every process's own, so it runs before them: nothing takes from the queue while
    // the rest stops.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(workers, (running) => running.stop(options.onClose === "stop" ? "SIGTERM" : "SIGKILL"), {
        concurrency: "unbounded",
        discard: true
      })
    )
    const stack: Stack = {
      api,
      sync,
      async,
      redisUrl: options.redisUrl,
      prefix,
      vendors,
      server: first.process,
      workers,
      startWorker,
      startServer
    }
    return stack
  })

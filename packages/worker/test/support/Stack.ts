/**
 * The split deployment as child processes, for tests that drive it the way operators and clients
 * do: both mock vendors, one API server and worker processes, each its own process, sharing one
 * Redis under a random key prefix (queue, rate limits, circuits and, with no MongoDB, the job
 * store). Plus the client's side (submit, read back, wait with a deadline) and the vendors' own
 * records of what arrived (`/arrivals`, `/callbacks`).
 */
import { ChildProcess } from "@vendorflow/core/testing"
import { RedisServer } from "@vendorflow/redis/testing"
import { Duration, Effect, Schedule, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const path = (relative: string) => fileURLToPath(new URL(relative, import.meta.url))

/** The bins a stack runs. */
export const bins = {
  server: path("../../../server/src/bin.ts"),
  worker: path("../../src/bin.ts"),
  mockSync: path("../../../adapters/mock-sync/src/bin.ts"),
  mockAsync: path("../../../adapters/mock-async/src/bin.ts")
}

/** The shared Redis the tests use unless they start their own. */
export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/**
 * Deletes every key under the prefix (the shared Redis keeps other tests' keys too): `SCAN` in big
 * steps, since the shared keyspace can be large, and `UNLINK` what matches.
 */
export const dropKeys = (url: string, prefix: string) =>
  Effect.sync(() => {
    let cursor = "0"
    do {
      const [next = "0", ...keys] = execFileSync(
        "redis-cli",
        ["-u", url, "SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", "5000"],
        { encoding: "utf8" }
      )
        .split("\n")
        .filter((line) => line !== "")
      if (keys.length > 0) execFileSync("redis-cli", ["-u", url, "UNLINK", ...keys])
      cursor = next
    } while (cursor !== "0")
  })

// What the API server and the mock vendors log once they listen.
const listening = /[Ll]istening on http:\/\/\S+/

// How our processes fail at start-up: one line naming the process, then exit 1 (`Main.run`).
const startupFailure = /^vendorflow-(?:server|worker): (?!consuming$).*$/m

// Whether the process `pid` is still running (signal 0 only checks).
const alive = (pid: number | undefined) =>
  Effect.try(() => pid !== undefined && process.kill(pid, 0)).pipe(Effect.orElseSucceed(() => false))

/**
 * Starts `bin` and waits until its output matches `ready`. A process that fails at start-up (say,
 * the shared Redis did not answer its first command within its 3 s while the machine is busy
 * starting a dozen processes), or exits before it is ready, is started again, up to three times,
 * rather than waited on for a minute.
 */
const launch = (bin: string, env: Record<string, string>, ready: RegExp) =>
  Effect.gen(function* () {
    const child = yield* ChildProcess.start(bin, env)
    const failed = Effect.flatMap(child.waitFor(startupFailure, "60 seconds"), ([line]) => Effect.fail(new Error(line)))
    const exited = alive(child.pid).pipe(
      Effect.repeat({ schedule: Schedule.spaced("200 millis"), while: (running) => running }),
      Effect.andThen(Effect.fail(new Error(`${bin} exited before it was ready: ${child.output()}`)))
    )
    const match = yield* Effect.raceFirst(child.waitFor(ready, "60 seconds"), Effect.raceFirst(failed, exited))
    return { child, match }
  }).pipe(
    Effect.tapError((error) => Effect.logWarning(`${error.message}; starting it again`)),
    Effect.retry({ times: 3, schedule: Schedule.spaced("1 second") }),
    Effect.orDie
  )

/** A running stack. */
export interface Stack {
  readonly api: string
  readonly sync: string
  readonly async: string
  readonly redisUrl: string
  readonly prefix: string
  /** The mock vendors running. */
  readonly vendors: ReadonlyArray<"sync" | "async">
  readonly server: ChildProcess.Running
  readonly workers: ReadonlyArray<ChildProcess.Running>
  /** Starts one more worker and waits until it consumes. */
  readonly startWorker: () => Effect.Effect<ChildProcess.Running, never, Scope.Scope>
  /** Starts an API server on the stack's port (the last one must have exited) and waits until it listens. */
  readonly startServer: () => Effect.Effect<ChildProcess.Running, never, Scope.Scope>
}

/** What a stack is started with. */
export interface Options {
  readonly workers: number
  readonly redisUrl: string
  /** The sync vendor's limit, told to the vendor and (unless `env` says otherwise) the workers. */
  readonly syncLimit: string
  readonly syncLatency: string
  /** Added to the server's and the workers' environment. */
  readonly env?: Record<string, string> | undefined
  /** Added to the mock sync vendor's environment. */
  readonly syncEnv?: Record<string, string> | undefined
  /** Added to the mock async vendor's environment (its callback delay is 200–600 ms unless set here). */
  readonly asyncEnv?: Record<string, string> | undefined
  /** The mock vendors to run; default both (a scenario for one vendor saves starting the other). */
  readonly vendors?: ReadonlyArray<"sync" | "async"> | undefined
}

/**
 * Starts both mock vendors, the API and `workers` workers on one Redis key prefix, all at once on
 * ports picked up front; the keys are deleted when the scope closes.
 */
export const start = (options: Options) =>
  Effect.gen(function* () {
    const prefix = `vf-test-${crypto.randomUUID().slice(0, 8)}:`
    yield* Effect.addFinalizer(() => dropKeys(options.redisUrl, prefix))
    const [apiPort, syncPort, asyncPort] = yield* pickPorts(3)
    const api = `http://127.0.0.1:${apiPort}`
    const sync = `http://127.0.0.1:${syncPort}`
    const async = `http://127.0.0.1:${asyncPort}`
    const vendors = options.vendors ?? ["sync", "async"]
    const mocks = [
      ...(vendors.includes("sync")
        ? [
            launch(
              bins.mockSync,
              {
                PORT: String(syncPort),
                MOCK_SYNC_RATE_LIMIT: options.syncLimit,
                MOCK_SYNC_LATENCY_MS: options.syncLatency,
                ...options.syncEnv
              },
              listening
            )
          ]
        : []),
      ...(vendors.includes("async")
        ? [
            launch(
              bins.mockAsync,
              { PORT: String(asyncPort), MOCK_ASYNC_DELAY_MS: "200-600", ...options.asyncEnv },
              listening
            )
          ]
        : [])
    ]
    const shared = {
      REDIS_URL: options.redisUrl,
      REDIS_PREFIX: prefix,
      MOCK_SYNC_URL: sync,
      MOCK_ASYNC_URL: async,
      MOCK_SYNC_RATE_LIMIT: options.syncLimit,
      PUBLIC_URL: api,
      ...options.env
    }
    const startServer = () =>
      Effect.map(launch(bins.server, { ...shared, PORT: String(apiPort) }, listening), ({ child }) => child)
    const startWorker = () =>
      Effect.map(launch(bins.worker, shared, /vendorflow-worker: consuming/), ({ child }) => child)
    const [server, workers] = yield* Effect.all(
      [
        startServer(),
        Effect.forEach(Array.from({ length: options.workers }), startWorker, { concurrency: "unbounded" }),
        Effect.all(mocks, { concurrency: "unbounded" })
      ],
      { concurrency: "unbounded" }
    )
    const stack: Stack = {
      api,
      sync,
      async,
      redisUrl: options.redisUrl,
      prefix,
      vendors,
      server,
      workers,
      startWorker,
      startServer
    }
    return stack
  })

// Distinct free ports (each probe frees its port before the next, so two probes may agree).
const pickPorts = (n: number) =>
  Effect.gen(function* () {
    const ports = new Set<number>()
    while (ports.size < n) ports.add(yield* RedisServer.freePort.pipe(Effect.orDie))
    return [...ports]
  })

/** A job as `GET /jobs/{id}` shows it, with its version from the ETag. */
export interface JobView {
  readonly request_id: string
  readonly status: string
  readonly attempts: number
  readonly updated_at: string
  readonly result?: unknown
  readonly error?: { readonly reason: string; readonly message: string }
  readonly version: number
}

/** `POST /jobs` with `payload`; with `idempotencyKey`, under that key. */
export const submit = (api: string, payload: object, idempotencyKey?: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${api}/jobs`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey })
      },
      body: JSON.stringify(payload)
    })
    return { status: response.status, body: (await response.json()) as { request_id?: string } }
  })

/**
 * `POST /jobs` under `idempotencyKey` as a careful client does: a refused connection, a reset or a
 * 503 (a server restarting, Redis away) is tried again every 200 ms, for at most `within`.
 */
export const submitUntilAccepted = (api: string, payload: object, idempotencyKey: string, within: Duration.Input) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${api}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": idempotencyKey },
      body: JSON.stringify(payload)
    })
    const body = (await response.json()) as { request_id?: string }
    if (response.status !== 200 || body.request_id === undefined) throw new Error(`answered ${response.status}`)
    return body.request_id
  }).pipe(
    Effect.retry({ schedule: Schedule.spaced("200 millis") }),
    Effect.timeoutOrElse({
      duration: within,
      orElse: () =>
        Effect.die(
          new Error(
            `POST /jobs under ${idempotencyKey} not accepted within ${Duration.format(Duration.fromInputUnsafe(within))}`
          )
        )
    })
  )

/** `GET /jobs/{id}`; the version is read from the ETag (`"<id>.<version>"`). */
export const readJob = (api: string, id: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${api}/jobs/${id}`)
    const body = (await response.json()) as Omit<JobView, "version">
    const version = Number(/\.(\d+)"$/.exec(response.headers.get("etag") ?? "")?.[1] ?? Number.NaN)
    return { ...body, version } satisfies JobView
  })

const finished = (job: JobView) => job.status === "complete" || job.status === "failed"

/**
 * Polls every job until all are finished or `within` has passed. Each finished job is returned as
 * it was first seen finished; the unfinished ones as last read.
 */
export const pollFinished = (api: string, ids: ReadonlyArray<string>, within: Duration.Input) =>
  Effect.gen(function* () {
    let unfinished: ReadonlyArray<JobView> = []
    let waiting = [...ids]
    const done = new Map<string, JobView>()
    yield* Effect.gen(function* () {
      const jobs = yield* Effect.forEach(waiting, (id) => readJob(api, id), { concurrency: 20 })
      for (const [i, job] of jobs.entries()) if (finished(job)) done.set(waiting[i] ?? "", job)
      unfinished = jobs.filter((job) => !finished(job))
      waiting = waiting.filter((id) => !done.has(id))
    }).pipe(
      Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: () => waiting.length === 0 }),
      Effect.timeoutOption(within)
    )
    return { done, unfinished: waiting.length === 0 ? [] : unfinished }
  })

/**
 * Polls every job until all are finished; fails with the unfinished ones past `within`. Each job is
 * returned as it was first seen finished.
 */
export const awaitAll = (api: string, ids: ReadonlyArray<string>, within: Duration.Input) =>
  Effect.flatMap(pollFinished(api, ids, within), ({ done, unfinished }) =>
    unfinished.length === 0
      ? Effect.succeed(done)
      : Effect.die(new Error(`${unfinished.length} job(s) unfinished, e.g. ${JSON.stringify(unfinished.slice(0, 5))}`))
  )

/** One `POST /process` as a mock vendor recorded it. */
export interface Arrival {
  readonly at: number
  readonly jobId: string | null
  readonly idempotencyKey: string | null
  readonly status: number
  readonly fault?: string
}

/** A mock vendor's `/arrivals`. */
export const arrivals = (vendor: string) =>
  Effect.promise(async () => (await (await fetch(`${vendor}/arrivals`)).json()) as ReadonlyArray<Arrival>)

/** One callback as the mock async vendor recorded it (`at`: when its last attempt ended). */
export interface Callback {
  readonly at: number
  /** When its first attempt went out. */
  readonly sentAt: number
  readonly jobId: string
  /** The data it carried; absent for a `deep` one. */
  readonly data?: unknown
  readonly attempts: number
  readonly status: number | null
  readonly outcome: "delivered" | "failed" | "dropped"
  readonly fault?: string
}

/** The mock async vendor's `/callbacks`. */
export const callbacks = (vendor: string) =>
  Effect.promise(async () => (await (await fetch(`${vendor}/callbacks`)).json()) as ReadonlyArray<Callback>)

/** Runs one `redis-cli` command against `url` and returns its raw output. */
export const redisCli = (url: string, ...args: ReadonlyArray<string>) =>
  Effect.sync(() => execFileSync("redis-cli", ["-u", url, ...args], { encoding: "utf8" }))

/** A dead letter in a vendor's dead-letter stream. */
export interface DeadLetter {
  readonly jobId: string
  readonly reason: string
  /** When it was written, ms since the epoch. */
  readonly at: number
}

/** The vendor's dead-letter stream, read with `redis-cli`. */
export const deadLetters = (url: string, prefix: string, vendor: string) =>
  Effect.sync((): ReadonlyArray<DeadLetter> => {
    // Raw output: the entry id, then each field and value, one a line.
    const lines = execFileSync("redis-cli", ["-u", url, "XRANGE", `${prefix}dead:${vendor}`, "-", "+"], {
      encoding: "utf8"
    }).split("\n")
    const letters: Array<DeadLetter> = []
    lines.forEach((line, i) => {
      if (line === "jobId") letters.push({ jobId: lines[i + 1] ?? "", reason: "", at: Number.NaN })
      const last = letters[letters.length - 1]
      if (line === "reason" && last !== undefined) letters[letters.length - 1] = { ...last, reason: lines[i + 1] ?? "" }
      if (line === "at" && last !== undefined)
        letters[letters.length - 1] = { ...last, at: Date.parse(lines[i + 1] ?? "") }
    })
    return letters
  })

/** The most arrivals in any one-second window. */
export const worstWindow = (arrived: ReadonlyArray<Arrival>) => {
  const at = arrived.map((a) => a.at).sort((a, b) => a - b)
  return Math.max(0, ...at.map((start) => at.filter((t) => t >= start && t < start + 1000).length))
}

/** Arrivals for a job that had arrived before. */
export const duplicates = (arrived: ReadonlyArray<Arrival>) => {
  const seen = new Set<string>()
  return arrived.filter((a) => a.jobId !== null && (seen.has(a.jobId) ? true : (seen.add(a.jobId), false)))
}

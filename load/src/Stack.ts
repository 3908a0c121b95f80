/**
 * The stack a load run targets, started here as real processes on free ports and stopped (and, on
 * Redis, its keys deleted) when the run ends:
 *
 * - `embedded`: the all-in-one process (`packages/standalone/src/bin.ts`, what `npm start` runs): API,
 *   worker and both mock vendors in one process on the in-memory backends;
 * - `redis`: the split deployment: both mock vendors, `vendorflow-server` and `workers`
 *   `vendorflow-worker` processes, sharing Redis under a random `REDIS_PREFIX` (queue, rate limits
 *   and, with `MONGODB_URI` left out, the job store);
 * - `url`: a stack that is already running; nothing is started or cleaned.
 *
 * Each process's output goes to a log file in a fresh temporary folder, named on start-up.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createWriteStream, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"

const entry = (relative: string) => fileURLToPath(new URL(`../../${relative}`, import.meta.url))

/**
 * The entry points the stacks run, as their packages declare them.
 */
export const entries = {
  embedded: entry("packages/standalone/src/bin.ts"),
  server: entry("packages/server/src/bin.ts"),
  worker: entry("packages/worker/src/bin.ts"),
  mockSync: entry("packages/adapters/mock-sync/src/bin.ts"),
  mockAsync: entry("packages/adapters/mock-async/src/bin.ts")
} as const

/**
 * Which stack to run against.
 */
export type Target =
  | { readonly _tag: "embedded" }
  | { readonly _tag: "redis"; readonly redisUrl: string; readonly workers: number }
  | { readonly _tag: "url"; readonly baseUrl: string }

/**
 * A started stack: where its API answers, what it is, and how to stop it.
 */
export interface Stack {
  readonly baseUrl: string
  readonly description: string
  /** Where the processes' logs are; undefined for a stack started elsewhere. */
  readonly logs: string | undefined
  readonly stop: () => Promise<void>
}

interface Process {
  readonly name: string
  readonly child: ChildProcess
  readonly waitFor: (pattern: RegExp, withinMillis?: number) => Promise<RegExpExecArray>
  readonly stop: () => Promise<void>
}

// Variables that would point a child somewhere other than where this stack puts it.
const placement = ["PORT", "HOST", "PUBLIC_URL", "MOCK_SYNC_URL", "MOCK_ASYNC_URL", "MOCK_SYNC_PORT", "MOCK_ASYNC_PORT"]

// The scenario is a closed loop with no pause, and the mock vendors finish a few dozen jobs a
// second, so every job the API takes adds to the backlog: a fast API passes the default
// back-pressure limit (`MAX_BACKLOG`, 100,000 a vendor) within a minute and answers 503 from then
// on. The original scenario had no such limit, so these stacks raise it unless it is set.
const loadBacklogLimit = "1000000"

const backlogLimit = () => process.env["MAX_BACKLOG"] ?? loadBacklogLimit

const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = { MAX_BACKLOG: loadBacklogLimit }
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !placement.includes(name)) env[name] = value
  }
  return env
}

const start = (logs: string, name: string, path: string, env: Record<string, string>): Process => {
  const child = spawn(process.execPath, ["--conditions=@vendorflow/source", path], {
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  const log = createWriteStream(join(logs, `${name}.log`))
  // Only the start of the output is searched (for the listening line); the rest goes to the log.
  let head = ""
  const waiters = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    log.write(chunk)
    if (head.length < 64 * 1024) {
      head += chunk.toString()
      for (const waiter of waiters) waiter()
    }
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", onData)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  exited.then(
    () => log.end(),
    () => log.end()
  )
  const waitFor = (pattern: RegExp, withinMillis = 30_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer)
        waiters.delete(look)
        outcome()
      }
      const look = () => {
        const match = pattern.exec(head)
        if (match !== null) settle(() => resolve(match))
      }
      const timer = setTimeout(
        () => settle(() => reject(new Error(`${name}: no ${pattern} within ${withinMillis} ms; output:\n${head}`))),
        withinMillis
      )
      exited.then((code) =>
        settle(() => reject(new Error(`${name} exited (${code}) before ${pattern}; output:\n${head}`)))
      )
      waiters.add(look)
      look()
    })
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGTERM")
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000)
    await exited
    clearTimeout(killer)
  }
  return { name, child, waitFor, stop }
}

const listening = /[Ll]istening on (http:\/\/\S+)/

const urlOf = async (running: Process, pattern = listening) => {
  const match = await running.waitFor(pattern)
  return (match[1] ?? "").replace(/\/$/, "")
}

/** Deletes every key under `prefix`, in batches, without blocking Redis. */
export const dropKeys = async (redisUrl: string, prefix: string): Promise<number> => {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 })
  try {
    await redis.connect()
    let deleted = 0
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) deleted += await redis.unlink(...keys)
    } while (cursor !== "0")
    return deleted
  } finally {
    redis.disconnect()
  }
}

const stopAll = async (processes: ReadonlyArray<Process>) => {
  await Promise.all(processes.map((running) => running.stop()))
}

/**
 * Starts the stack; on failure everything already started is stopped again.
 */
export const startStack = async (target: Target): Promise<Stack> => {
  if (target._tag === "url") {
    const baseUrl = target.baseUrl.replace(/\/+$/, "")
    return { baseUrl, description: "a running stack", logs: undefined, stop: async () => {} }
  }
  const logs = mkdtempSync(join(tmpdir(), "vendorflow-load-"))
  const started: Array<Process> = []
  // Stops what was started and deletes the run's Redis keys, on success and on a failed start alike.
  let cleanUp = () => stopAll(started)
  const run = (name: string, path: string, env: Record<string, string>) => {
    const running = start(logs, name, path, env)
    started.push(running)
    return running
  }
  try {
    if (target._tag === "embedded") {
      const all = run("all-in-one", entries.embedded, {
        ...baseEnv(),
        PORT: "0",
        HOST: "127.0.0.1",
        MOCK_SYNC_PORT: "0",
        MOCK_ASYNC_PORT: "0"
      })
      const baseUrl = await urlOf(all, /at (http:\/\/\S+): API docs/)
      return {
        baseUrl,
        description: `embedded (all-in-one process, in-memory store and queue; MAX_BACKLOG=${backlogLimit()})`,
        logs,
        stop: cleanUp
      }
    }

    const prefix = `vf-load-${randomUUID().slice(0, 8)}:`
    // The split stack keeps its jobs in Redis too: a MongoDB from the environment is left out.
    const { MONGODB_URI: _mongo, ...env } = baseEnv()
    cleanUp = async () => {
      // Workers first, so nothing is still taking from the queue while the rest goes.
      await stopAll(started.filter((running) => running.name.startsWith("worker-")))
      await stopAll(started)
      await dropKeys(target.redisUrl, prefix)
    }
    const mocks = [
      run("mock-sync", entries.mockSync, { ...env, PORT: "0", HOST: "127.0.0.1" }),
      run("mock-async", entries.mockAsync, { ...env, PORT: "0", HOST: "127.0.0.1" })
    ]
    const [syncUrl = "", asyncUrl = ""] = await Promise.all(mocks.map((mock) => urlOf(mock)))
    const shared = {
      ...env,
      REDIS_URL: target.redisUrl,
      REDIS_PREFIX: prefix,
      MOCK_SYNC_URL: syncUrl,
      MOCK_ASYNC_URL: asyncUrl
    }
    const server = run("server", entries.server, { ...shared, PORT: "0", HOST: "127.0.0.1" })
    const baseUrl = await urlOf(server)
    const workers = Array.from({ length: target.workers }, (_, i) =>
      run(`worker-${i + 1}`, entries.worker, { ...shared, PUBLIC_URL: baseUrl })
    )
    await Promise.all(workers.map((worker) => worker.waitFor(/vendorflow-worker: consuming/)))
    return {
      baseUrl,
      description: `redis (split: vendorflow-server, ${target.workers} vendorflow-worker, 2 mock vendors; REDIS_PREFIX=${prefix}; MAX_BACKLOG=${backlogLimit()})`,
      logs,
      stop: cleanUp
    }
  } catch (error) {
    await cleanUp()
    throw error
  }
}

/**
 * Child processes for a benchmark: our bins and the baselines, each started with the running Node
 * (24, through `scripts/node.sh`) and the source condition, its output in a log file, its resident
 * memory and CPU time read from `/proc` (Linux), optionally CPU-profiled (`--cpu-prof`, written when
 * it exits after SIGTERM).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * A path inside the repository, from this file.
 */
export const repoPath = (relative: string): string => fileURLToPath(new URL(`../../${relative}`, import.meta.url))

/**
 * The entry points the bench runs.
 */
export const entries = {
  server: repoPath("packages/server/src/bin.ts"),
  worker: repoPath("packages/worker/src/bin.ts"),
  mockSync: repoPath("packages/adapters/mock-sync/src/bin.ts"),
  floor: repoPath("bench/servers/floor.ts"),
  bullmqWorker: repoPath("bench/servers/bullmqWorker.ts")
} as const

/**
 * A running child process.
 */
export interface Proc {
  readonly name: string
  readonly pid: number
  /** The first match of `pattern` in its output, within `withinMillis`. */
  readonly waitFor: (pattern: RegExp, withinMillis?: number) => Promise<RegExpExecArray>
  /** Resident set size in bytes (with its child processes'), or undefined where `/proc` is not there. */
  readonly rss: () => number | undefined
  /** User + system CPU time so far (with its child processes'), in seconds, or undefined where `/proc` is not there. */
  readonly cpuSeconds: () => number | undefined
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  readonly stop: () => Promise<number | null>
  readonly exited: Promise<number | null>
}

// Variables from the bench's own environment that would point a child elsewhere.
const placement = new Set([
  "PORT",
  "HOST",
  "PUBLIC_URL",
  "MOCK_SYNC_URL",
  "MOCK_ASYNC_URL",
  "MOCK_SYNC_PORT",
  "MOCK_ASYNC_PORT",
  "MOCK_SYNC_RATE_LIMIT",
  "MOCK_SYNC_LATENCY_MS",
  "MONGODB_URI",
  "REDIS_PREFIX",
  "LOG_REQUESTS"
])

/**
 * The bench's environment without anything that decides where a child listens or what it talks to.
 */
export const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !placement.has(name)) env[name] = value
  }
  return env
}

/**
 * Reads `/proc/<pid>/status`'s `VmRSS`, in bytes.
 */
export const rssOf = (pid: number): number | undefined => {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

// Clock ticks per second for /proc/<pid>/stat; 100 on every Linux this runs on.
const ticksPerSecond = 100

/**
 * Reads `/proc/<pid>/stat`'s utime + stime, in seconds.
 */
export const cpuSecondsOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name may hold spaces; the fields after its closing parenthesis are plain.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
  } catch {
    return undefined
  }
}

// A process's live children, e.g. the servers a `SERVER_PROCESSES` supervisor forked.
const childrenOf = (pid: number): ReadonlyArray<number> => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter((child) => child !== "")
      .map(Number)
  } catch {
    return []
  }
}

/**
 * A figure of a process summed with its descendants', so that a supervisor counts with the
 * processes it runs; `undefined` when the process is gone.
 */
export const withDescendants =
  (of: (pid: number) => number | undefined) =>
  (pid: number): number | undefined => {
    const own = of(pid)
    if (own === undefined) return undefined
    return childrenOf(pid).reduce((sum, child) => sum + (withDescendants(of)(child) ?? 0), own)
  }

/**
 * Options of {@link start}.
 */
export interface StartOptions {
  readonly name: string
  readonly script: string
  readonly env: Record<string, string>
  readonly logDir: string
  /** Where to write a CPU profile (`<name>.cpuprofile`) when it exits; none when undefined. */
  readonly cpuProfileDir?: string | undefined
}

/**
 * Starts `script` with the running Node.
 */
export const start = (options: StartOptions): Proc => {
  const profile =
    options.cpuProfileDir === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${options.name}.cpuprofile`]
  const child: ChildProcess = spawn(process.execPath, ["--conditions=@vendorflow/source", ...profile, options.script], {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.script}`)
  const pid = child.pid
  const log = createWriteStream(join(options.logDir, `${options.name}.log`))
  // Only the head of the output is searched (for start-up lines); all of it goes to the log.
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
  void exited.then(() => log.end())

  const waitFor = (pattern: RegExp, withinMillis = 30_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const look = () => {
        const match = pattern.exec(head)
        if (match !== null) settle(() => resolve(match))
      }
      const settle = (outcome: () => void) => {
        clearTimeout(timer)
        waiters.delete(look)
        outcome()
      }
      const timer = setTimeout(
        () => settle(() => reject(new Error(`${options.name}: no ${pattern} within ${withinMillis} ms:\n${head}`))),
        withinMillis
      )
      void exited.then((code) =>
        settle(() => reject(new Error(`${options.name} exited (${code}) before ${pattern}:\n${head}`)))
      )
      waiters.add(look)
      look()
    })

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000)
      await exited
      clearTimeout(killer)
    }
    return child.exitCode
  }

  return {
    name: options.name,
    pid,
    waitFor,
    rss: () => withDescendants(rssOf)(pid),
    cpuSeconds: () => withDescendants(cpuSecondsOf)(pid),
    stop,
    exited
  }
}

/**
 * The URL a process prints once it listens (`… listening on http://…`).
 */
export const listeningUrl = async (proc: Proc, pattern = /[Ll]istening on (http:\/\/\S+)/): Promise<string> => {
  const match = await proc.waitFor(pattern)
  return (match[1] ?? "").replace(/\/$/, "")
}

/**
 * Whether `/proc` is there to read memory and CPU from.
 */
export const hasProc = (): boolean => existsSync("/proc/self/status")

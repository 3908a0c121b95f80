/**
 * One of our programs as a real child process: started with the running Node and the source
 * condition, its output searched for start-up lines (the first 64 KiB, kept in memory) and, with a
 * log folder, all of it appended to `<name>.log` (a restart adds to it); stopped with a signal (SIGKILL when it does not
 * exit in time), and killed when the scope closes if it still runs. Its resident memory and CPU time
 * (with its child processes', e.g. a supervisor's workers) are read from `/proc` on Linux; with a
 * profile folder it writes a V8 CPU profile when it exits after SIGTERM.
 *
 * @since 0.0.0
 */
import { spawn } from "node:child_process"
import { createWriteStream, existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Duration, Effect, type Scope } from "effect"

/**
 * What to start.
 *
 * @category models
 */
export interface Options {
  readonly name: string
  /** A `.ts` entry point. */
  readonly script: string
  /** Its whole environment (see {@link inheritedEnv}). */
  readonly env: Readonly<Record<string, string>>
  /** Node's own options before the script, as its deployment runs it; none by default. */
  readonly nodeArgs?: ReadonlyArray<string> | undefined
  /** Where its output goes, as `<name>.log`; none when undefined. */
  readonly logDir?: string | undefined
  /** Where to write a CPU profile (`<name>.cpuprofile`) when it exits; none when undefined. */
  readonly cpuProfileDir?: string | undefined
  /**
   * What the scope closing does if it still runs: `kill` (SIGKILL, the default: a test's processes
   * need no goodbye) or `stop` (SIGTERM, then SIGKILL after 15 s: it flushes what it holds).
   */
  readonly onClose?: "kill" | "stop" | undefined
}

/**
 * A running child process.
 *
 * @category models
 */
export interface Running {
  readonly name: string
  readonly pid: number
  /** The start of what it printed, stdout and stderr interleaved. */
  readonly output: () => string
  /** The first match of `pattern` in its output; fails if it exits first or `within` (default 30 s) passes. */
  readonly waitFor: (pattern: RegExp, within?: Duration.Input) => Effect.Effect<RegExpExecArray, Error>
  /** Sends `signal` (default SIGTERM), then SIGKILL if it has not exited within `within` (default 15 s); its exit code. */
  readonly stop: (signal?: NodeJS.Signals, within?: Duration.Input) => Effect.Effect<number | null>
  /** Resident set size in bytes, with its descendants', or undefined where `/proc` is not there. */
  readonly rss: () => number | undefined
  /** User + system CPU time so far in seconds, with its descendants', or undefined where `/proc` is not there. */
  readonly cpuSeconds: () => number | undefined
}

// Variables that say where a process listens or what it talks to: a child gets them from whoever
// starts it, never from the environment the tests, load runs or benchmarks were started in.
const placement = [
  "PORT",
  "HOST",
  "PUBLIC_URL",
  "MOCK_SYNC_URL",
  "MOCK_ASYNC_URL",
  "MOCK_SYNC_PORT",
  "MOCK_ASYNC_PORT",
  "REDIS_PREFIX"
]

/**
 * This process's environment without the variables that place a child (ports, hosts, URLs, the key
 * prefix) and without `without`.
 *
 * @category env
 */
export const inheritedEnv = (without: ReadonlyArray<string> = []): Record<string, string> => {
  const left = new Set([...placement, ...without])
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !left.has(name)) env[name] = value
  }
  return env
}

// Only the head of the output is searched, so a long run's output costs no memory.
const headBytes = 64 * 1024

/**
 * Starts `options.script`; stopped or killed when the scope closes (see `onClose`).
 *
 * @category constructors
 */
export const start = (options: Options): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => spawnRunning(options)),
    (running) => (options.onClose === "stop" ? running.stop("SIGTERM") : running.stop("SIGKILL"))
  )

const spawnRunning = (options: Options): Running => {
  const profile =
    options.cpuProfileDir === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${options.name}.cpuprofile`]
  const child = spawn(
    process.execPath,
    ["--conditions=@vendorflow/source", ...(options.nodeArgs ?? []), ...profile, options.script],
    {
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"]
    }
  )
  const log =
    options.logDir === undefined
      ? undefined
      : createWriteStream(join(options.logDir, `${options.name}.log`), { flags: "a" })
  let head = ""
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    log?.write(chunk)
    if (head.length < headBytes) {
      head += chunk.toString()
      for (const listener of listeners) listener()
    }
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  // Listened for from the start so the exit cannot slip past.
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      exitCode = code
      log?.end()
      for (const listener of listeners) listener()
      resolve(code)
    })
  )
  const pid = child.pid ?? -1
  const within = (duration: Duration.Input) => Duration.format(Duration.fromInputUnsafe(duration))

  const waitFor = (pattern: RegExp, duration: Duration.Input = "30 seconds") =>
    Effect.callback<RegExpExecArray, Error>((resume) => {
      const look = () => {
        const match = pattern.exec(head)
        if (match === null && exitCode === undefined) return
        listeners.delete(look)
        resume(
          match !== null
            ? Effect.succeed(match)
            : Effect.fail(new Error(`${options.name} exited (${exitCode}) before ${pattern}; output:\n${head}`))
        )
      }
      listeners.add(look)
      look()
      return Effect.sync(() => listeners.delete(look))
    }).pipe(
      Effect.timeoutOrElse({
        duration,
        orElse: () =>
          Effect.fail(new Error(`${options.name}: no ${pattern} within ${within(duration)}; output:\n${head}`))
      })
    )

  const stop = (signal: NodeJS.Signals = "SIGTERM", duration: Duration.Input = "15 seconds") =>
    Effect.suspend(() => {
      if (exitCode !== undefined) return Effect.succeed(exitCode)
      child.kill(signal)
      return Effect.promise(() => exited).pipe(
        Effect.timeoutOrElse({
          duration,
          orElse: () => Effect.sync(() => child.kill("SIGKILL")).pipe(Effect.andThen(Effect.promise(() => exited)))
        })
      )
    })

  return {
    name: options.name,
    pid,
    output: () => head,
    waitFor,
    stop,
    rss: () => withDescendants(rssOf)(pid),
    cpuSeconds: () => withDescendants(cpuSecondsOf)(pid)
  }
}

/**
 * Whether `/proc` is there to read memory and CPU from.
 *
 * @category proc
 */
export const hasProc = (): boolean => existsSync("/proc/self/status")

/**
 * Reads `/proc/<pid>/status`'s `VmRSS`, in bytes.
 *
 * @category proc
 */
export const rssOf = (pid: number): number | undefined => {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/**
 * Clock ticks per second in `/proc/<pid>/stat`; 100 on every Linux this runs on.
 *
 * @category proc
 */
export const ticksPerSecond = 100

/**
 * Reads `/proc/<pid>/stat`: the parent's pid, the command name and utime + stime in seconds.
 *
 * @category proc
 */
export const statOf = (
  pid: number
): { readonly ppid: number; readonly name: string; readonly cpuSeconds: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name may hold spaces; the fields after its closing parenthesis are plain.
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    return { ppid: Number(fields[1]), name, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond }
  } catch {
    return undefined
  }
}

/**
 * utime + stime of `pid`, in seconds.
 *
 * @category proc
 */
export const cpuSecondsOf = (pid: number): number | undefined => statOf(pid)?.cpuSeconds

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
 *
 * @category proc
 */
export const withDescendants =
  (of: (pid: number) => number | undefined) =>
  (pid: number): number | undefined => {
    const own = of(pid)
    if (own === undefined) return undefined
    return childrenOf(pid).reduce((sum, child) => sum + (withDescendants(of)(child) ?? 0), own)
  }

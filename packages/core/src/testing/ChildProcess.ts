/**
 * Runs one of our bins as a real child process for a test: started with the running Node and the
 * source condition, killed in the scope's finalizer if the test left it running, its output kept
 * so a test can wait for a line and show it on failure.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import { Duration, Effect, Schedule } from "effect"

/**
 * A running child process.
 *
 * @category models
 */
export interface Running {
  readonly pid: number | undefined
  /** Everything it printed so far, stdout and stderr interleaved. */
  readonly output: () => string
  /** The first match of `pattern` in its output, waiting at most `within`. */
  readonly waitFor: (pattern: RegExp, within?: Duration.Input) => Effect.Effect<RegExpExecArray>
  /** Waits at most `within` for the process to end by itself; its exit code. */
  readonly exited: (within?: Duration.Input) => Effect.Effect<number | null>
  /** Sends `signal` and waits at most `within` for the exit code (`null` when a signal ended it). */
  readonly stop: (signal: NodeJS.Signals, within?: Duration.Input) => Effect.Effect<number | null>
}

/**
 * Starts `path` (a `.ts` entry) with `env` added to this process's environment.
 *
 * @category constructors
 */
export const start = (path: string, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--conditions=@vendorflow/source", path], {
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    // Listened for from the start so the exit cannot slip past.
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const waitExit = (within: Duration.Input) =>
      Effect.promise(() => exited).pipe(
        Effect.timeoutOrElse({
          duration: within,
          orElse: () =>
            Effect.die(
              new Error(`still running after ${Duration.format(Duration.fromInputUnsafe(within))}; output:\n${output}`)
            )
        })
      )
    const running: Running = {
      pid: child.pid,
      output: () => output,
      waitFor: (pattern, within = "30 seconds") =>
        Effect.sync(() => pattern.exec(output)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (match) => match !== null }),
          Effect.flatMap((match) => (match === null ? Effect.die("unreachable") : Effect.succeed(match))),
          Effect.timeoutOrElse({
            duration: within,
            orElse: () =>
              Effect.die(
                new Error(
                  `no ${pattern} within ${Duration.format(Duration.fromInputUnsafe(within))}; output:\n${output}`
                )
              )
          })
        ),
      exited: (within = "15 seconds") => waitExit(within),
      stop: (signal, within = "15 seconds") =>
        Effect.sync(() => child.kill(signal)).pipe(Effect.andThen(waitExit(within)))
    }
    return running
  })

/**
 * A `redis-server` of a test's own on a free port below 32768 (where Linux does not hand out
 * ephemeral ports), for tests that must stop Redis: `start` it, `kill` it (SIGKILL, as in a crash)
 * or `stop` it (SIGTERM, as an operator would), and `start` it again on the same port. With
 * `persist`, it keeps an append-only file in a temporary folder, so its data survives a restart as
 * a production Redis with AOF does; without, it keeps nothing. Killed when the scope closes.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"

/**
 * Why a test can't start a `redis-server` of its own, or `undefined` when it can.
 *
 * @category constants
 */
export const unavailable: string | undefined =
  spawnSync("redis-server", ["--version"]).status === 0 ? undefined : "skipped, no redis-server binary on PATH"

// Fails when something listens on the port already.
const probe = (port: number) =>
  Effect.callback<void, Error>((resume) => {
    const server = createServer()
    server.once("error", (error) => resume(Effect.fail(error)))
    server.listen(port, "127.0.0.1", () => server.close(() => resume(Effect.void)))
  })

/**
 * A free TCP port on 127.0.0.1 between 20000 and 32000.
 *
 * @category utils
 */
export const freePort = Effect.suspend(() => {
  const port = 20000 + Math.floor(Math.random() * 12000)
  return Effect.as(probe(port), port)
}).pipe(Effect.retry({ times: 20 }))

/**
 * A free TCP port on 127.0.0.1 between 20000 and 22000 whose cluster bus port (10000 above it) is
 * free too, both below the ephemeral range.
 *
 * @category utils
 */
export const freeClusterPort = Effect.suspend(() => {
  const port = 20000 + Math.floor(Math.random() * 2000)
  return probe(port).pipe(Effect.andThen(probe(port + 10000)), Effect.as(port))
}).pipe(Effect.retry({ times: 20 }))

/**
 * Starts nothing yet: returns the server's port, URL and its `start`, `stop` and `kill`.
 *
 * @category constructors
 */
export const make = (
  options: {
    readonly persist?: boolean | undefined
    /** The port; default a free one ({@link freePort}). */
    readonly port?: number | undefined
    /** More `redis-server` arguments, e.g. a cluster node's. */
    readonly args?: ReadonlyArray<string> | undefined
  } = {}
) =>
  Effect.gen(function* () {
    const port = options.port ?? (yield* freePort)
    const dir = options.persist === true ? mkdtempSync(join(tmpdir(), "vendorflow-redis-")) : undefined
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      ...(dir === undefined
        ? ["--appendonly", "no"]
        : ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir]),
      ...(options.args ?? [])
    ]
    let child: ChildProcess | undefined

    const start = Effect.callback<void, Error>((resume) => {
      const spawned = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] })
      child = spawned
      let output = ""
      spawned.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("Ready to accept connections")) resume(Effect.void)
      })
      spawned.once("error", (error) => resume(Effect.fail(error)))
      spawned.once("exit", (code) => resume(Effect.fail(new Error(`redis-server exited with ${code}: ${output}`))))
    }).pipe(
      Effect.timeoutOrElse({
        duration: "5 seconds",
        orElse: () => Effect.fail(new Error("redis-server did not start"))
      })
    )

    const signal = (name: NodeJS.Signals) =>
      Effect.suspend(() => {
        const running = child
        child = undefined
        if (running === undefined || running.exitCode !== null || running.signalCode !== null) return Effect.void
        return Effect.callback<void>((resume) => {
          running.once("exit", () => resume(Effect.void))
          running.kill(name)
        })
      })

    yield* Effect.addFinalizer(() =>
      signal("SIGKILL").pipe(Effect.andThen(Effect.sync(() => dir && rmSync(dir, { recursive: true, force: true }))))
    )
    return { port, url: `redis://127.0.0.1:${port}`, start, stop: signal("SIGTERM"), kill: signal("SIGKILL") }
  })

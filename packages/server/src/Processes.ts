/**
 * `SERVER_PROCESSES`: the API as several processes on one port. One process saturates about one
 * core; with more cores, `vendorflow-server` becomes a supervisor (`node:cluster`) that forks that
 * many workers, each binding its own socket on the shared port (`reusePort`, so the kernel spreads
 * connections over them). The supervisor replaces a worker that dies after it listened, stops
 * everything when one fails to start (it has printed why), and on SIGTERM/SIGINT lets every worker
 * drain and exits 0 when they all exited 0.
 *
 * Offers {@link run}, which decides the process's role and hands the bin the server layer for it.
 *
 * @since 0.1.0
 */
import { Port } from "@vendorflow/core"
import { Effect, Layer, Option, Schema } from "effect"
import { HttpServer } from "effect/http"
import cluster, { type Worker } from "node:cluster"
import * as Server from "./Server.ts"

const setting = "SERVER_PROCESSES"

// The cluster's own `listening` event does not fire for an `exclusive` listen, so a worker says so.
const listeningMessage = "vendorflow/listening"

interface Listening {
  readonly type: typeof listeningMessage
  readonly port: number
}

const isListening = (message: unknown): message is Listening =>
  typeof message === "object" && message !== null && "type" in message && message.type === listeningMessage

const announceListening = Layer.effectDiscard(
  Effect.gen(function* () {
    const { address } = yield* HttpServer.HttpServer
    if (address._tag !== "UnixPathAddress") {
      const message: Listening = { type: listeningMessage, port: address.port }
      yield* Effect.sync(() => process.send?.(message))
    }
  })
)

const workerLayer: typeof Server.layer = announceListening.pipe(
  Layer.provideMerge(
    Layer.unwrap(Effect.map(Server.config, (options) => Server.layerWith({ ...options, reusePort: true })))
  )
)

const fail = (name: string, message: string): never => {
  console.error(`${name}: ${message}`)
  return process.exit(1)
}

const processesFrom = (name: string, raw: string | undefined): number =>
  raw === undefined
    ? 1
    : /^[1-9][0-9]*$/.test(raw)
      ? Number(raw)
      : fail(name, `${setting} must be a whole number of processes, 1 or more; got ${JSON.stringify(raw)}`)

const supervise = (name: string, processes: number): void => {
  const configuredPort = Schema.decodeUnknownOption(Port.FromString)(process.env["PORT"])
  // With PORT=0 the first worker's free port becomes every other worker's PORT.
  const learnsPort = Option.contains(configuredPort, 0)
  let learnedPort: string | undefined
  const running = new Set<Worker>()
  const listened = new WeakSet<Worker>()
  let stopping = false
  let exitCode = 0

  const fork = () => {
    running.add(cluster.fork(learnedPort === undefined ? {} : { PORT: learnedPort }))
  }
  const forkTheRest = () => {
    for (let i = 1; i < processes; i++) fork()
  }
  const stop = (code: number) => {
    if (stopping) return
    stopping = true
    exitCode = code
    for (const worker of running) worker.process.kill("SIGTERM")
    if (running.size === 0) process.exit(exitCode)
  }

  cluster.on("message", (worker, message) => {
    if (!isListening(message)) return
    listened.add(worker)
    if (learnsPort && learnedPort === undefined && !stopping) {
      learnedPort = String(message.port)
      forkTheRest()
    }
  })
  cluster.on("exit", (worker, code, signal) => {
    running.delete(worker)
    if (stopping) {
      if (code !== 0) exitCode = 1
      if (running.size === 0) process.exit(exitCode)
    } else if (!listened.has(worker)) {
      // A start-up failure (a bad setting, a server down) would fail again: no restart loop.
      stop(1)
    } else {
      console.error(
        `${name}: process ${worker.id} (pid ${worker.process.pid}) exited with ${signal ?? `code ${code}`}; starting a replacement`
      )
      fork()
    }
  })
  process.on("SIGTERM", () => stop(0))
  process.on("SIGINT", () => stop(0))

  fork()
  if (!learnsPort) forkTheRest()
}

/**
 * Runs the server as `SERVER_PROCESSES` (default 1) asks: with 1, `serve` runs `Server.layer` in
 * this process, exactly as without the setting; with more (and `REDIS_URL` set, so the processes
 * share their jobs and queue), this process supervises that many cluster workers, in each of which
 * `serve` runs the server with `reusePort`. A bad setting is one line on stderr and exit code 1.
 *
 * @category running
 */
export const run = (name: string, serve: (server: typeof Server.layer) => void): void => {
  if (cluster.isWorker) return serve(workerLayer)
  const processes = processesFrom(name, process.env[setting])
  if (processes === 1) return serve(Server.layer)
  if ((process.env["REDIS_URL"] ?? "") === "") {
    fail(
      name,
      `${setting}=${processes} needs REDIS_URL: in memory, each process would have its own jobs and queue, invisible to the others`
    )
  }
  supervise(name, processes)
}

/**
 * Finds a MongoDB server for the integration tests: `MONGODB_URI` when set, else a `mongo:8.0`
 * container through testcontainers when a Docker engine answers, else none, with the reason, so the
 * tests report themselves skipped instead of passing or hanging.
 *
 * The Docker check pings the engine's `/_ping` with a one-second budget at the places testcontainers
 * looks (`DOCKER_HOST`, then the usual and rootless socket paths): a `docker` CLI without an engine,
 * or a socket file nobody serves, counts as no Docker.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { request, type RequestOptions } from "node:http"
import { homedir } from "node:os"
import { join } from "node:path"

/** The image the container tests run; pinned so a new major can't change them silently. */
export const image = "mongo:8.0"

/** Where the tests get their server, or why they have none. */
export type MongoServer =
  | { readonly _tag: "Available"; readonly source: string; readonly uri: () => string }
  | { readonly _tag: "Absent"; readonly reason: string }

const ping = (target: RequestOptions) =>
  Effect.callback<boolean>((resume) => {
    const req = request({ ...target, method: "GET", path: "/_ping", timeout: 1_000 }, (res) => {
      res.resume()
      resume(Effect.succeed(res.statusCode === 200))
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resume(Effect.succeed(false)))
    req.end()
    return Effect.sync(() => req.destroy())
  }).pipe(
    Effect.timeoutOption("1500 millis"),
    Effect.map((answered) => answered._tag === "Some" && answered.value)
  )

const dockerTargets = (): ReadonlyArray<readonly [string, RequestOptions]> => {
  const host = process.env["DOCKER_HOST"]
  if (host !== undefined && host !== "") {
    if (host.startsWith("unix://")) return [[host, { socketPath: host.slice("unix://".length) }]]
    const url = URL.canParse(host.replace(/^tcp:/, "http:")) ? new URL(host.replace(/^tcp:/, "http:")) : undefined
    return url === undefined ? [] : [[host, { host: url.hostname, port: Number(url.port || 2375) }]]
  }
  const runtimeDir = process.env["XDG_RUNTIME_DIR"]
  const uid = process.getuid?.()
  return [
    "/var/run/docker.sock",
    ...(runtimeDir === undefined ? [] : [join(runtimeDir, "docker.sock")]),
    join(homedir(), ".docker", "run", "docker.sock"),
    join(homedir(), ".docker", "desktop", "docker.sock"),
    ...(uid === undefined ? [] : [`/run/user/${uid}/docker.sock`])
  ]
    .filter((path) => existsSync(path))
    .map((path) => [path, { socketPath: path }] as const)
}

/** The first Docker engine that answers, by where it was found. */
export const findDocker = Effect.gen(function* () {
  for (const [name, target] of dockerTargets()) {
    if (yield* ping(target)) return name
  }
  return undefined
})

/**
 * Decides where the tests run. With Docker, registers the file's `beforeAll` that starts the
 * container (and the `afterAll` that stops it); `uri()` is valid once it has run.
 */
export const setup: Effect.Effect<MongoServer> = Effect.gen(function* () {
  const fromEnv = process.env["MONGODB_URI"]
  if (fromEnv !== undefined && fromEnv !== "") {
    return { _tag: "Available", source: "MONGODB_URI", uri: () => fromEnv } as const
  }
  const docker = yield* findDocker
  if (docker === undefined) {
    return {
      _tag: "Absent",
      reason: "no MONGODB_URI and no Docker engine answering (DOCKER_HOST or a docker.sock)"
    }
  }
  let uri: string | undefined
  let stop: () => Promise<unknown> = () => Promise.resolve()
  const start = Effect.tryPromise({
    try: () => import("@testcontainers/mongodb").then(({ MongoDBContainer }) => new MongoDBContainer(image).start()),
    catch: (cause) =>
      new Error(`Docker answers at ${docker}, but starting ${image} with testcontainers failed`, { cause })
  }).pipe(
    Effect.tap((container) =>
      Effect.sync(() => {
        stop = () => container.stop()
        // The container is a one-member replica set that names itself by its container host name;
        // a direct connection keeps the driver on the mapped port instead.
        uri = `${container.getConnectionString()}/?directConnection=true`
      })
    )
  )
  beforeAll(() => Effect.runPromise(start), 300_000)
  afterAll(() => stop(), 60_000)
  return {
    _tag: "Available",
    source: `testcontainers ${image} (Docker at ${docker})`,
    uri: () => uri ?? "mongodb://container-not-started"
  }
})

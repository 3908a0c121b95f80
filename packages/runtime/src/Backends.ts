/**
 * The backend a process runs on, chosen from the environment:
 *
 * - `REDIS_URL` set: `@vendorflow/redis`'s backend: the job queue on Redis Streams; rate limits,
 *   circuit breakers, worker heartbeats, the dashboard's statistics and the webhook replay guard
 *   shared through Redis;
 * - `MONGODB_URI` set (with `MONGODB_DB`): the job store on MongoDB (`@vendorflow/mongo`); otherwise,
 *   with `REDIS_URL`, the job store on Redis too (so a server and its workers share it even where
 *   there is no MongoDB);
 * - `SQLITE_PATH` set (and not `:memory:`), without `REDIS_URL`: `@vendorflow/sqlite`'s backend,
 *   everything on that one file, shared by the processes on this host that name it (with
 *   `MONGODB_URI`, all but the job store);
 * - none: core's memory backend, for one process.
 *
 * The all-in-one reads the same variables through {@link allInOneChoice}, where `SQLITE_PATH`
 * defaults to `./.vendorflow/vendorflow.db`: it keeps its jobs unless told `SQLITE_PATH=:memory:`.
 *
 * Any may be set without the others. A backend package is loaded only when its variable is set,
 * so a deployment installs only the driver it uses; a variable set without its package installed
 * stops start-up with one line naming the package to install. Each backend with a server registers
 * its health check. Building the layer is the start-up check: a bad or unreachable URL fails it with
 * one error that names the server (never its credentials).
 *
 * @since 0.1.0
 */
import {
  Access,
  Backend,
  Cleaner,
  type Health,
  type JobQueue,
  type JobStore,
  type RateLimiter,
  type WebhookSignature,
  type Workers
} from "@vendorflow/core"
import { resolve } from "node:path"
import { Config, Effect, Layer, Option, Schema } from "effect"
import type { CircuitBreaker } from "effect/persistence"

/**
 * The services a process composes on top of: storage, queue, rate limits, cleaning and health.
 *
 * @category models
 */
export type Services =
  | JobStore.JobStore
  | JobQueue.JobQueue
  | RateLimiter.RateLimiter
  | CircuitBreaker.CircuitBreaker
  | Cleaner.Cleaner
  | Health.Health
  | Access.Access
  | Workers.Workers
  | WebhookSignature.ReplayGuard

/**
 * A backend's variable is set, but its package is not installed (or cannot be loaded).
 *
 * @category errors
 */
export class BackendMissing extends Schema.TaggedError<BackendMissing>()("BackendMissing", {
  package: Schema.String,
  message: Schema.String
}) {}

/**
 * Why the backends could not start: a bad setting, a backend package that is not installed, or a
 * server that is unreachable or refuses us.
 *
 * @category errors
 */
export type StartupError = Backend.StartupError

/**
 * Which backends the environment asks for.
 *
 * @category models
 */
export interface Choice {
  readonly redis: boolean
  readonly mongo: boolean
  /** The SQLite file, when the shared services are on one (never alongside Redis). */
  readonly sqlite?: string | undefined
}

/**
 * The all-in-one's file when `SQLITE_PATH` is unset.
 *
 * @category constants
 */
export const defaultSqlitePath = "./.vendorflow/vendorflow.db"

const sqlitePath = (fallback: string | undefined) =>
  Config.option(Config.NonEmptyString("SQLITE_PATH")).pipe(
    Config.map((path) => {
      const chosen = Option.getOrElse(path, () => fallback)
      return chosen === ":memory:" ? undefined : chosen
    })
  )

const choiceWith = (sqliteFallback: string | undefined): Config.Config<Choice> =>
  Config.all({
    redis: Config.option(Config.NonEmptyString("REDIS_URL")).pipe(Config.map(Option.isSome)),
    mongo: Config.option(Config.NonEmptyString("MONGODB_URI")).pipe(Config.map(Option.isSome)),
    sqlite: sqlitePath(sqliteFallback)
  }).pipe(Config.map((chosen) => (chosen.redis ? { ...chosen, sqlite: undefined } : chosen)))

/**
 * Reads the choice: a variable that is set and not empty picks its backend.
 *
 * @category config
 */
export const choice: Config.Config<Choice> = choiceWith(undefined)

/**
 * The all-in-one's choice: as {@link choice}, but on SQLite at {@link defaultSqlitePath} when no
 * variable says otherwise (`SQLITE_PATH=:memory:` for memory).
 *
 * @category config
 */
export const allInOneChoice: Config.Config<Choice> = choiceWith(defaultSqlitePath)

/**
 * What a choice runs on, for a start-up line: `memory`, `redis`, `mongodb+redis`,
 * `sqlite (/abs/path/vendorflow.db)`.
 *
 * @category config
 */
export const describe = (chosen: Choice): string => {
  const shared = chosen.redis ? "redis" : chosen.sqlite !== undefined ? `sqlite (${resolve(chosen.sqlite)})` : "memory"
  return chosen.mongo ? `mongodb+${shared}` : shared
}

const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? ""

// Whether Node could not find the package `name` itself (not one of its own imports).
const isNotInstalled = (error: unknown, name: string): boolean =>
  error instanceof Error &&
  "code" in error &&
  error.code === "ERR_MODULE_NOT_FOUND" &&
  error.message.includes(`'${name}'`)

/**
 * Imports backend package `name` (with `imported`, from where this module is installed), asked
 * for by `variable`; a package that is not installed is one line saying what to install.
 *
 * @category loading
 */
export const importBackend = <A>(name: string, variable: string, imported: () => Promise<A>) =>
  Effect.tryPromise({
    try: imported,
    catch: (error) =>
      new BackendMissing({
        package: name,
        message: isNotInstalled(error, name)
          ? `${variable} is set, but ${name} is not installed (npm install ${name})`
          : `${name} could not be loaded: ${firstLine(error)}`
      })
  })

const sqliteBackend = Effect.fnUntraced(function* (path: string) {
  const { SqliteBackend, SqliteJobQueue, SqliteJobStore } = yield* importBackend(
    "@vendorflow/sqlite",
    "SQLITE_PATH",
    () => import("@vendorflow/sqlite")
  )
  const [store, queue] = yield* Effect.all([SqliteJobStore.config, SqliteJobQueue.config])
  return SqliteBackend.make({ path, store, queue })
})

/**
 * The backend for a choice, its packages loaded.
 *
 * @category constructors
 */
export const backendFor = Effect.fnUntraced(function* (chosen: Choice) {
  const shared = chosen.redis
    ? (yield* importBackend("@vendorflow/redis", "REDIS_URL", () => import("@vendorflow/redis"))).RedisBackend.fromEnv
    : chosen.sqlite !== undefined
      ? yield* sqliteBackend(chosen.sqlite)
      : Backend.memory
  if (!chosen.mongo) return shared
  const { MongoBackend } = yield* importBackend("@vendorflow/mongo", "MONGODB_URI", () => import("@vendorflow/mongo"))
  return MongoBackend.fromEnv(shared)
})

/**
 * What a process runs on over `backend`: its services, the vendors' rate limiter and circuit
 * breakers, API keys (`API_KEYS`, counted in the backend's rate-limit store) and the cleaner.
 *
 * @category layers
 */
export const layerWith = (backend: Backend.Backend): Layer.Layer<Services, StartupError> =>
  Layer.mergeAll(Access.layer, Cleaner.layer).pipe(Layer.provideMerge(Backend.layerServices(backend)))

/**
 * The backends for a choice.
 *
 * @category layers
 */
export const layerFor = (chosen: Choice): Layer.Layer<Services, StartupError> =>
  Layer.unwrap(Effect.map(backendFor(chosen), layerWith))

/**
 * The backends the environment asks for (see the module docs).
 *
 * @category layers
 */
export const layer: Layer.Layer<Services, StartupError> = Layer.unwrap(Effect.map(choice, layerFor))

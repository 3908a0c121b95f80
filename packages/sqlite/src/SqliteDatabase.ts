/**
 * The one SQLite file every part of the backend keeps its state in, opened through
 * `@effect/sql-sqlite-node` (Node's built-in `node:sqlite`, no native build).
 *
 * Opening it creates its folder, turns on WAL (readers never wait for the writer, and several
 * processes on one host share the file) with `synchronous = NORMAL`, sets `busy_timeout` (a writer that finds the file locked
 * waits for it rather than failing), turns on incremental vacuum, and runs the schema's migrations
 * (`internal/migrations.ts`) in one `BEGIN IMMEDIATE` transaction, so that processes starting
 * together migrate once. Every write the backend makes is one statement or one short
 * `BEGIN IMMEDIATE` transaction, so a writer never holds the lock for long.
 *
 * `:memory:` is a database of this process alone, gone when it ends.
 *
 * Layers: {@link layer}; {@link config} reads `SQLITE_PATH`.
 *
 * @since 0.1.0
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, Duration, Effect, Layer, Schema } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient } from "effect/sql"
import * as Migrations from "./internal/migrations.ts"

/**
 * Where the database is and how long a writer waits for a locked file.
 *
 * @category models
 */
export interface Options {
  /** The file, created with its folder if missing; `:memory:` for one in this process only. */
  readonly path: string
  /** How long a statement waits for another process's write to finish; default 5 seconds. */
  readonly busyTimeout?: Duration.Input | undefined
}

/**
 * The default file of the all-in-one: in the folder it starts in.
 *
 * @category constants
 */
export const defaultPath = "./.vendorflow/vendorflow.db"

/**
 * The database could not be opened or migrated; the message names the file.
 *
 * @category errors
 */
export class SqliteDatabaseError extends Schema.TaggedError<SqliteDatabaseError>()("SqliteDatabaseError", {
  message: Schema.String
}) {}

/**
 * The database's client: `effect/sql`'s `SqlClient` over the file, migrated.
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SqlClient.SqlClient, SqliteDatabaseError> => {
  const failed = (what: string) => (error: { readonly message: string }) =>
    new SqliteDatabaseError({ message: `SQLite at ${options.path}: ${what}: ${error.message}` })
  const migrated = Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // In WAL mode, NORMAL syncs the log at checkpoints rather than at every commit: a crash of a
      // process loses nothing, a power cut may lose the last commits. FULL would cost a disk flush
      // per job transition.
      yield* sql`PRAGMA synchronous = NORMAL`.pipe(Effect.mapError(failed("setting up")))
      // Only takes effect on a file with no tables yet, so it goes before the first migration.
      yield* sql`PRAGMA auto_vacuum = INCREMENTAL`.pipe(Effect.mapError(failed("setting up")))
      yield* Migrations.run.pipe(Effect.mapError(failed("migrating")))
    })
  )
  const client = Layer.effect(
    SqlClient.SqlClient,
    Effect.gen(function* () {
      if (options.path !== ":memory:") {
        yield* Effect.try({
          try: () => mkdirSync(dirname(options.path), { recursive: true }),
          catch: (error) => failed("creating its folder")({ message: String(error) })
        })
      }
      return yield* SqliteClient.make({
        filename: options.path,
        busyTimeout: options.busyTimeout ?? Duration.seconds(5)
      }).pipe(Effect.mapError(failed("opening")))
    })
  ).pipe(Layer.provide(Reactivity.layer))
  return Layer.provideMerge(migrated, client)
}

/**
 * `SQLITE_PATH`: the database file (default {@link defaultPath}).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  path: Config.String("SQLITE_PATH").pipe(Config.withDefault(defaultPath))
})

/**
 * The database configured from the environment.
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<SqlClient.SqlClient, SqliteDatabaseError | Config.ConfigError> = Layer.unwrap(
  Effect.map(config, layer)
)

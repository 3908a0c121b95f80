/**
 * The job store on MongoDB as part of a core `Backend`: MongoDB keeps the jobs (with a `mongodb`
 * health check) and another backend keeps the queue and the rest (Redis in a deployment, memory by
 * default).
 *
 * Offers {@link make} (explicit options) and {@link fromEnv} (`MONGODB_URI`, `MONGODB_DB`, … see
 * `MongoJobStore.config`).
 *
 * @since 0.1.0
 */
import { Backend, Health, type JobStore } from "@vendorflow/core"
import { type Duration, Layer, Redacted } from "effect"
import * as MongoJobStore from "./MongoJobStore.ts"

// MongoDB keeps the jobs, with a `mongodb` check added to the rest's health.
const over = (
  store: Layer.Layer<JobStore.JobStore | MongoJobStore.MongoJobStore, Backend.StartupError>,
  rest: Backend.Backend
): Backend.Backend =>
  Backend.withJobStore(rest, {
    name: "mongodb",
    layer: Health.layerAdding(
      MongoJobStore.MongoJobStore.useSync((mongo): Health.Check => ({ name: "mongodb", check: mongo.ping }))
    ).pipe(Layer.provideMerge(store))
  })

/**
 * Where the jobs go.
 *
 * @category models
 */
export interface Options {
  readonly uri: string | Redacted.Redacted<string>
  /** Default `vendorflow`. */
  readonly database?: string | undefined
  /** Default `jobs`. */
  readonly collection?: string | undefined
  /** Delete jobs this long after they complete or fail; kept for ever by default. */
  readonly finishedTtl?: Duration.Input | undefined
  /** How long any one wait on MongoDB may last (see `MongoJobStore.Options`); 5 seconds by default. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * Jobs in the MongoDB of `options`, the rest in `rest` ({@link Backend.memory} by default).
 *
 * @category constructors
 */
export const make = (options: Options, rest: Backend.Backend = Backend.memory): Backend.Backend =>
  over(
    MongoJobStore.layer({
      ...options,
      uri: Redacted.isRedacted(options.uri) ? options.uri : Redacted.make(options.uri),
      database: options.database ?? "vendorflow",
      collection: options.collection ?? "jobs"
    }),
    rest
  )

/**
 * Jobs in the MongoDB configured by the environment, the rest in `rest`.
 *
 * @category constructors
 */
export const fromEnv = (rest: Backend.Backend = Backend.memory): Backend.Backend =>
  over(MongoJobStore.layerConfig, rest)

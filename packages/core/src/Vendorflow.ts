/**
 * The whole embedded engine in one piece: give it your vendors (and a backend, memory by default),
 * submit jobs, read them back. The consumer loops, the recovery sweeper and the worker's heartbeat
 * run inside; nothing listens on a port.
 *
 * For apps that do not use Effect, {@link createVendorflow} is a Promise facade:
 *
 * ```ts
 * const vf = await createVendorflow({ vendors: [myVendor] })
 * const job = await vf.submit({ company: "Acme" })
 * const done = await vf.waitFor(job.id)
 * await vf.close()
 * ```
 *
 * For Effect apps, {@link layer} provides the `JobService`.
 *
 * Vendors are `defineVendor` definitions (built with the operator's `VENDOR_<NAME>_*` settings, see
 * `VendorDefinition`) or effects that build a `Vendor` (`VendorDefinition.build(definition,
 * settings)` for settings in code, or a package's own constructor such as `MockSyncVendor.make`).
 * The engine's other settings come from the environment as in the worker (`PUBLIC_URL`,
 * `SHUTDOWN_GRACE`, `SWEEP_*`, `CIRCUIT_*`, `WORKER_HEARTBEAT_INTERVAL`), each with its default.
 *
 * @since 0.1.0
 */
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Backend from "./Backend.ts"
import * as Cleaner from "./Cleaner.ts"
import * as Consumer from "./Consumer.ts"
import * as Job from "./Job.ts"
import * as JobProcessor from "./JobProcessor.ts"
import * as JobService from "./JobService.ts"
import * as Sweeper from "./Sweeper.ts"
import type * as Vendor from "./Vendor.ts"
import * as VendorDefinition from "./VendorDefinition.ts"
import * as VendorRegistry from "./VendorRegistry.ts"
import type * as WebhookSignature from "./WebhookSignature.ts"
import * as Workers from "./Workers.ts"

/**
 * A vendor to run: a definition, or an effect that builds one (it may use the backend's replay guard).
 *
 * @category models
 */
export type VendorInput =
  | VendorDefinition.VendorDefinition
  | Effect.Effect<Vendor.Vendor, Backend.StartupError, WebhookSignature.ReplayGuard>

/**
 * What the engine runs.
 *
 * @category models
 */
export interface Options {
  readonly vendors: ReadonlyArray<VendorInput>
  /** Where jobs, queues and limits are kept; {@link Backend.memory} by default. */
  readonly backend?: Backend.Backend | undefined
  /**
   * Our public base URL, where async vendors post their callbacks (`<base>/vendor-webhook/<vendor>`,
   * answered by a server of yours over the same backend); default `PUBLIC_URL`.
   */
  readonly webhookBaseUrl?: string | undefined
}

const vendorOf = (input: VendorInput) =>
  VendorDefinition.isVendorDefinition(input) ? VendorDefinition.fromConfig(input) : input

/**
 * The embedded engine: the `JobService`, with the consumer loops, the sweeper and the heartbeat
 * running in the layer's scope. Fails to build with the backend's start-up error, a vendor that
 * cannot be built, or a setting that cannot be read.
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<JobService.JobService, Backend.StartupError> => {
  const services = Backend.layerServices(options.backend ?? Backend.memory)
  const vendors = VendorRegistry.layer(options.vendors.map(vendorOf))
  const processor =
    options.webhookBaseUrl === undefined
      ? JobProcessor.layerConfig
      : JobProcessor.layer({ webhookBaseUrl: options.webhookBaseUrl })
  const engine = Layer.mergeAll(Consumer.layerConfig, Sweeper.layerConfig, Workers.layerHeartbeat).pipe(
    Layer.provide(processor)
  )
  return Layer.mergeAll(JobService.layer, engine).pipe(
    Layer.provide(Layer.mergeAll(vendors, Cleaner.layer)),
    Layer.provide(services)
  )
}

/**
 * A job as {@link createVendorflow} returns it.
 *
 * @category models
 */
export type JobRecord = Job.Job

/**
 * The engine behind Promises (see the module docs). Every method rejects with the engine's error
 * (an `Error` with a `_tag`: `JobNotFound`, `UnknownVendor`, `Backlogged`, a store or queue outage…).
 *
 * @category models
 */
export interface Vendorflow {
  /** Stores a pending job and queues it; resolves at once with the stored job (its `id`, `status`, …). */
  readonly submit: (
    payload: Job.JsonObject,
    options?: { readonly vendor?: string | undefined; readonly idempotencyKey?: string | undefined }
  ) => Promise<JobRecord>
  /** The job as it is now. */
  readonly get: (id: string) => Promise<JobRecord>
  /** The job once it is complete or failed. */
  readonly waitFor: (id: string) => Promise<JobRecord>
  /** Stops taking jobs, lets calls in flight finish (`SHUTDOWN_GRACE`), and disconnects the backend. */
  readonly close: () => Promise<void>
}

const isJobId = Schema.is(Job.JobId)

// An id that is not a job id names no job.
const withId = <A, E>(id: string, use: (id: Job.JobId) => Effect.Effect<A, E>) =>
  isJobId(id) ? use(id) : Effect.fail(new JobService.JobNotFound({ id }))

/**
 * Starts the engine (see {@link layer}); resolves once it runs, rejects with why it could not start.
 *
 * @category constructors
 */
export const createVendorflow = async (options: Options): Promise<Vendorflow> => {
  const runtime = ManagedRuntime.make(layer(options))
  const jobs = await runtime
    .runPromise(JobService.JobService.useSync((service) => service))
    .catch(async (error: unknown) => {
      await runtime.dispose()
      throw error
    })
  return {
    submit: (payload, submitOptions = {}) => runtime.runPromise(jobs.submit({ payload, ...submitOptions })),
    get: (id) => runtime.runPromise(withId(id, (jobId) => jobs.get(jobId))),
    waitFor: (id) => runtime.runPromise(withId(id, jobs.awaitFinished)),
    close: () => runtime.dispose()
  }
}

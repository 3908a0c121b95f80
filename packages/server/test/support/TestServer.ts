/**
 * The API server on a free port over core's memory layers and the test's own vendors, with no
 * consumer running: what the HTTP tests share. A test may swap the store or the health checks, or
 * turn API keys on.
 */
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import {
  Access,
  Cleaner,
  Health,
  JobQueue,
  JobService,
  JobStore,
  type Vendor,
  VendorRegistry,
  // Named only so that tsc can name the layers' types (TS2742).
  // oxlint-disable-next-line no-unused-vars
  type WebhookSignature,
  Workers
} from "@vendorflow/core"
import { Effect, Layer } from "effect"
import * as Server from "../../src/Server.ts"

const notCalled = () => Effect.die(new Error("the HTTP tests run no consumer, so no vendor is called"))

/** A sync vendor that no test calls. */
export const syncVendor = (name: string): Vendor.Vendor => ({ name, mode: "sync", concurrency: 1, call: notCalled })

/** An async vendor whose callbacks the reference adapter's own code checks, signed with `secret`. */
export const asyncVendor = (name: string, secret: string): Vendor.Vendor => ({
  ...syncVendor(name),
  mode: "async",
  parseWebhook: MockAsyncVendor.parseWebhook({ secret })
})

/** What the server runs on. */
export interface CoreOptions {
  readonly store?: Layer.Layer<JobStore.JobStore> | undefined
  readonly health?: Layer.Layer<Health.Health> | undefined
  readonly access?: Access.Options | undefined
}

/** The `JobService` over core's memory layers and `vendors`, exposing those layers too. */
export const layerCore = (vendors: ReadonlyArray<Vendor.Vendor>, options: CoreOptions = {}) =>
  JobService.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        options.store ?? JobStore.layerMemory,
        JobQueue.layerMemory,
        Cleaner.layer,
        options.health ?? Health.layerNone,
        Access.layerMemory(options.access ?? { keys: new Map() }),
        Workers.layerMemory,
        Layer.effect(VendorRegistry.VendorRegistry, VendorRegistry.make(vendors))
      )
    )
  )

/** The server, exposing the core services it runs on so a test can look inside. */
export const layer = (
  vendors: ReadonlyArray<Vendor.Vendor>,
  options: CoreOptions & {
    readonly corsOrigins?: ReadonlyArray<string> | undefined
    readonly readyMinWorkers?: number | undefined
  } = {}
) =>
  Server.layerWith({
    port: 0,
    host: "127.0.0.1",
    logAddress: false,
    corsOrigins: options.corsOrigins,
    readyMinWorkers: options.readyMinWorkers
  }).pipe(Layer.provideMerge(layerCore(vendors, options)))

/** What the store that is down answers: no internals reach a client. */
export const storeDown = new JobStore.JobStoreError({ reason: "Unavailable", message: "store at 10.0.0.1 is down" })

/**
 * A store that is down, except that a payload with `bug: true` hits a programming error instead
 * (a duplicate id), which the API answers as a defect.
 */
export const layerStoreDown = Layer.succeed(
  JobStore.JobStore,
  JobStore.JobStore.of({
    create: (job) =>
      Effect.fail(
        job.payload["bug"] === true
          ? new JobStore.JobStoreError({ reason: "Duplicate", message: "secret internals" })
          : storeDown
      ),
    createMany: (jobs) =>
      Effect.fail(
        jobs.some((job) => job.payload["bug"] === true)
          ? new JobStore.JobStoreError({ reason: "Duplicate", message: "secret internals" })
          : storeDown
      ),
    get: () => Effect.fail(storeDown),
    getMany: () => Effect.fail(storeDown),
    transition: () => Effect.fail(storeDown),
    claim: () => Effect.fail(storeDown),
    listOverdue: () => Effect.fail(storeDown),
    list: () => Effect.fail(storeDown)
  })
)

/** Health checks that say the store is down. */
export const layerHealthStoreDown = Health.layer([
  { name: "store", check: Effect.fail({ message: "store at 10.0.0.1 is down" }) }
])

/**
 * The API server on a free port over core's memory layers and the test's own vendors, with no
 * consumer running: what the HTTP tests share. A test may swap the store or the health checks, or
 * turn API keys on.
 */
import {
  Access,
  Cleaner,
  Health,
  JobQueue,
  Jobs,
  JobStore,
  type Vendor,
  VendorRegistry,
  // Named only so that tsc can name the layers' types (TS2742).
  // oxlint-disable-next-line no-unused-vars
  type WebhookSignature,
  Workers
} from "@vendorflow/core"
import { Layer } from "effect"
import * as Server from "../../src/Server.ts"

/** What the server runs on. */
export interface CoreOptions {
  readonly store?: Layer.Layer<JobStore.JobStore> | undefined
  readonly health?: Layer.Layer<Health.Health> | undefined
  readonly access?: Access.Options | undefined
}

/** The `Jobs` service over core's memory layers and `vendors`, exposing those layers too. */
export const layerCore = (vendors: ReadonlyArray<Vendor.Vendor>, options: CoreOptions = {}) =>
  Jobs.layer.pipe(
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

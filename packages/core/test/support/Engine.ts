/**
 * The engine on memory layers, over the test's own vendor adapters: what the engine tests share.
 */
import { Effect, Layer } from "effect"
import * as Cleaner from "../../src/Cleaner.ts"
import * as JobProcessor from "../../src/JobProcessor.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as JobStore from "../../src/JobStore.ts"
import * as RateLimiter from "../../src/RateLimiter.ts"
import type * as Vendor from "../../src/Vendor.ts"
import * as VendorCircuit from "../../src/VendorCircuit.ts"
import * as VendorRegistry from "../../src/VendorRegistry.ts"

/** Store, queue, limiter, cleaner, circuit breaker and a registry of `vendors`, all in memory. */
export const layerBackends = (
  vendors: ReadonlyArray<Vendor.Vendor>,
  circuit: VendorCircuit.Options = {},
  queue: Layer.Layer<JobQueue.JobQueue> = JobQueue.layerMemory,
  store: Layer.Layer<JobStore.JobStore> = JobStore.layerMemory
) =>
  Layer.mergeAll(
    store,
    queue,
    RateLimiter.layerMemory,
    Cleaner.layer,
    VendorCircuit.layerMemory(circuit),
    Layer.effect(VendorRegistry.VendorRegistry, VendorRegistry.make(vendors))
  )

/** The job processor over {@link layerBackends}, which it also exposes. */
export const layerEngine = (
  vendors: ReadonlyArray<Vendor.Vendor>,
  circuit: VendorCircuit.Options = {},
  queue: Layer.Layer<JobQueue.JobQueue> = JobQueue.layerMemory,
  store: Layer.Layer<JobStore.JobStore> = JobStore.layerMemory
) =>
  JobProcessor.layer({ webhookBaseUrl: "http://127.0.0.1" }).pipe(
    Layer.provideMerge(layerBackends(vendors, circuit, queue, store))
  )

/** A sync vendor that answers each call with its payload at once; `calls()` says how many it took. */
export const echoVendor = (name: string) => {
  let calls = 0
  const vendor: Vendor.Vendor = {
    name,
    mode: "sync",
    concurrency: 1,
    call: (request) =>
      Effect.sync(() => {
        calls++
        return { _tag: "Completed", result: request.payload } as const
      })
  }
  return { vendor, calls: () => calls }
}

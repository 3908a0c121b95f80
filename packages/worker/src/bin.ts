#!/usr/bin/env node
/**
 * `vendorflow-worker`: the worker process of a split deployment. It loads the vendors named by
 * configuration, works off their queues and sweeps for stuck jobs until SIGINT or SIGTERM.
 * Backends come from the environment (`REDIS_URL`, `MONGODB_URI`; see `@vendorflow/runtime`).
 *
 * @since 0.1.0
 */
import { NodeHttpClient } from "@effect/platform-node"
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import { MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { Sweeper, VendorRegistry } from "@vendorflow/core"
import { Backends, Main } from "@vendorflow/runtime"
import { Effect, Layer } from "effect"
import * as Worker from "./Worker.ts"

const Vendors = VendorRegistry.layer([MockSyncVendor.fromConfig, MockAsyncVendor.fromConfig]).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)

Main.run(
  "vendorflow-worker",
  Layer.mergeAll(Worker.layer, Sweeper.layerConfig).pipe(
    Layer.provide(Layer.mergeAll(Backends.layer, Vendors)),
    Layer.tap(() => Effect.log("vendorflow-worker: consuming"))
  )
)

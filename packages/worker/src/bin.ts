#!/usr/bin/env node
/**
 * `vendorflow-worker`: the worker process of a split deployment. It loads the vendors named by
 * configuration and works off their queues until SIGINT or SIGTERM.
 *
 * @since 0.1.0
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import { MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { Cleaner, JobQueue, JobStore, RateLimiter, Shutdown, VendorRegistry } from "@vendorflow/core"
import { Effect, Layer } from "effect"
import * as Worker from "./Worker.ts"

// TODO(#3): choose Redis / MongoDB backends from the environment; until then the worker shares
// nothing with a separate server and is useful only for trying the process out.
const Backends = Layer.mergeAll(JobStore.layerMemory, JobQueue.layerMemory, RateLimiter.layerMemory, Cleaner.layer)
const Vendors = VendorRegistry.layer([MockSyncVendor.fromConfig, MockAsyncVendor.fromConfig]).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)

const Main = Worker.layer.pipe(
  Layer.provide([Backends, Vendors]),
  Layer.tap(() => Effect.log("vendorflow-worker: consuming"))
)

NodeRuntime.runMain(Layer.launch(Main), { teardown: Shutdown.teardown })

#!/usr/bin/env node
/**
 * `vendorflow-server`: the HTTP API alone, for a split deployment (workers run elsewhere).
 * Configured from the environment; see `Server.ts`.
 *
 * @since 0.1.0
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import { MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { Shutdown, VendorRegistry } from "@vendorflow/core"
import { Layer } from "effect"
import * as Server from "./Server.ts"

// TODO(#3): Redis / MongoDB backends chosen from the environment; until then this process keeps
// its jobs in memory and shares nothing with a separate worker.
const Vendors = VendorRegistry.layer([MockSyncVendor.fromConfig, MockAsyncVendor.fromConfig]).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)

NodeRuntime.runMain(Layer.launch(Server.makeServer(Vendors)), { teardown: Shutdown.teardown })

#!/usr/bin/env node
/**
 * `vendorflow-server`: the HTTP API alone, for a split deployment (workers run elsewhere).
 * Backends come from the environment (`REDIS_URL`, `MONGODB_URI`; see `@vendorflow/runtime`), the
 * server's settings from `PORT`, `HOST` and `MAX_BODY_BYTES` (see `Server.ts`).
 *
 * @since 0.1.0
 */
import { NodeHttpClient } from "@effect/platform-node"
import { MockAsyncVendor } from "@vendorflow/adapter-mock-async"
import { MockSyncVendor } from "@vendorflow/adapter-mock-sync"
import { Jobs, VendorRegistry } from "@vendorflow/core"
import { Backends, Main } from "@vendorflow/runtime"
import { Layer } from "effect"
import * as Server from "./Server.ts"

const Vendors = VendorRegistry.layer([MockSyncVendor.fromConfig, MockAsyncVendor.fromConfig]).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)

Main.run(
  "vendorflow-server",
  Server.layer.pipe(Layer.provide(Jobs.layer), Layer.provideMerge(Layer.mergeAll(Backends.layer, Vendors)))
)

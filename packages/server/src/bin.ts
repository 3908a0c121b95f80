#!/usr/bin/env node
/**
 * `vendorflow-server`: the HTTP API alone, for a split deployment (workers run elsewhere).
 * Configured from the environment; see `Server.ts`.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { type Vendor, VendorRegistry } from "@vendorflow/core"
import type { Effect } from "effect"
import { Layer } from "effect"
import * as Server from "./Server.ts"

// The adapters this process loads. Empty until the mock adapters are wired in; with none loaded,
// `POST /jobs` answers 422 and `/health` lists no vendors.
const vendors: ReadonlyArray<Effect.Effect<Vendor.Vendor>> = []

NodeRuntime.runMain(Layer.launch(Server.makeServer(VendorRegistry.layer(vendors))))

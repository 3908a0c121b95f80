#!/usr/bin/env node
/**
 * `vendorflow-server`: the HTTP API alone, for a split deployment (workers run elsewhere).
 * Backends come from the environment (`REDIS_URL`, `MONGODB_URI`; see `@vendorflow/runtime`), the
 * server's settings from `PORT`, `HOST` and `MAX_BODY_BYTES` (see `Server.ts`).
 * `SERVER_PROCESSES` runs that many API processes on one port, for more cores (see `Processes.ts`).
 *
 * @since 0.1.0
 */
import { JobService } from "@vendorflow/core"
import { Adapters, Backends, Main } from "@vendorflow/runtime"
import { Layer } from "effect"
import * as Processes from "./Processes.ts"

// The vendors: the adapter packages named by VENDORFLOW_ADAPTERS and vendorflow.config.json (in
// development, the two mock vendors when nothing is named), each checked against this core; see `Adapters`.
const Vendors = Adapters.layer

Processes.run("vendorflow-server", (server) =>
  Main.run(
    "vendorflow-server",
    // The adapters are built over the backends, so they share its webhook replay guard (Redis when set).
    server.pipe(Layer.provide(JobService.layer), Layer.provideMerge(Vendors.pipe(Layer.provideMerge(Backends.layer))))
  )
)

#!/usr/bin/env node
/**
 * `vendorflow-worker`: the worker process of a split deployment. It loads the vendors named by
 * configuration, works off their queues and sweeps for stuck jobs until SIGINT or SIGTERM.
 * Backends come from the environment (`REDIS_URL`, `MONGODB_URI`; see `@vendorflow/runtime`).
 *
 * @since 0.1.0
 */
import { Adapters, Backends, Main } from "@vendorflow/runtime"
import { Effect, Layer } from "effect"
import * as Worker from "./Worker.ts"

// The vendors: the adapter packages named by VENDORFLOW_ADAPTERS and vendorflow.config.json (in
// development, the two mock vendors when nothing is named), each checked against this core; see `Adapters`.
const Vendors = Adapters.layer

Main.run(
  "vendorflow-worker",
  Layer.mergeAll(Worker.layer, Worker.layerMetricsServer).pipe(
    Layer.provide(Layer.mergeAll(Backends.layer, Vendors)),
    Layer.tap(() => Effect.log("vendorflow-worker: consuming"))
  )
)

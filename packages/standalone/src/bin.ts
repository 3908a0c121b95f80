#!/usr/bin/env node
/**
 * `vendorflow` (and the repository's `npm start`): the API, the worker and both mock vendors in one
 * process on in-memory layers.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Shutdown } from "@vendorflow/core"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as Embedded from "./Embedded.ts"

const announce = Layer.effectDiscard(
  HttpServer.addressFormattedWith((url) =>
    Effect.log(`vendorflow (all-in-one, in-memory) at ${url}: API docs ${url}/docs, OpenAPI ${url}/openapi.json`)
  )
)

NodeRuntime.runMain(Layer.launch(announce.pipe(Layer.provide(Embedded.layer))), { teardown: Shutdown.teardown })

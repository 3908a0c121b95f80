#!/usr/bin/env node
/**
 * `vendorflow` (and the repository's `npm start`): the API, the worker and both mock vendors in one
 * process, its jobs in one SQLite file by default (see `AllInOne.layer`); the start-up line names
 * the backends and the file. A start-up failure (a port in use, a malformed `API_KEYS`, a
 * development secret with `NODE_ENV=production`) is one line and exit code 1, as for the other
 * processes (`Main.run`).
 *
 * @since 0.1.0
 */
import { Backends, Main } from "@vendorflow/runtime"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as AllInOne from "./AllInOne.ts"

const announce = Layer.effectDiscard(
  Effect.gen(function* () {
    const backends = Backends.describe(yield* Backends.allInOneChoice)
    yield* HttpServer.addressFormattedWith((url) =>
      Effect.log(`vendorflow (all-in-one, on ${backends}) at ${url}: API docs ${url}/docs, OpenAPI ${url}/openapi.json`)
    )
  })
)

Main.run("vendorflow", announce.pipe(Layer.provide(AllInOne.layer)))

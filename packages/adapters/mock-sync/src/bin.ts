#!/usr/bin/env node
/**
 * Runs the mock sync vendor alone: `PORT` (default 8001), `HOST`, `MOCK_SYNC_LATENCY_MS`,
 * `MOCK_SYNC_RATE_LIMIT`, `MOCK_SYNC_USER_INFO_PROBABILITY`. Stops on SIGINT/SIGTERM.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as MockSyncServer from "./MockSyncServer.ts"

const Announce = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* MockSyncServer.MockSyncServer
  yield* Effect.log(`mock sync vendor listening on ${server.url}`)
}))

NodeRuntime.runMain(Layer.launch(Announce.pipe(Layer.provide(MockSyncServer.layerConfig()))))

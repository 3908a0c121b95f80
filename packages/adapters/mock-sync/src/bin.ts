#!/usr/bin/env node
/**
 * Runs the mock sync vendor alone: `PORT` (default 8001), `HOST`, `MOCK_SYNC_LATENCY_MS`,
 * `MOCK_SYNC_RATE_LIMIT`, `MOCK_SYNC_USER_INFO_PROBABILITY`, `MOCK_SYNC_FAULTS`, `MOCK_SYNC_OUTAGES`. Stops on
 * SIGINT/SIGTERM.
 *
 * @since 0.1.0
 */
import * as MockSyncServer from "./MockSyncServer.ts"
import * as MockVendorServer from "./MockVendorServer.ts"

MockVendorServer.runMain({
  name: "mock sync vendor",
  server: MockSyncServer.MockSyncServer,
  layer: MockSyncServer.layerConfig()
})

#!/usr/bin/env node
/**
 * Runs the mock async vendor alone: `PORT` (default 8002), `HOST`, `MOCK_ASYNC_DELAY_MS`,
 * `MOCK_ASYNC_RATE_LIMIT`, `MOCK_ASYNC_USER_INFO_PROBABILITY`, `WEBHOOK_SECRET`. Stops on
 * SIGINT/SIGTERM, dropping callbacks not yet sent.
 *
 * @since 0.1.0
 */
import { MockVendorServer } from "@vendorflow/adapter-mock-sync"
import * as MockAsyncServer from "./MockAsyncServer.ts"

MockVendorServer.runMain({
  name: "mock async vendor",
  server: MockAsyncServer.MockAsyncServer,
  layer: MockAsyncServer.layerConfig()
})

/**
 * The split deployment as the whole-system tests start it (dev-stack's `Stack.start`): its keys
 * under `vf-test`, on the shared Redis unless a test brings its own, and the mock async vendor
 * calling back 200–600 ms after a call unless a test says otherwise, so that tests wait seconds.
 */
import { Stack as DevStack } from "@vendorflow/dev-stack"
import { RedisTest } from "@vendorflow/redis/testing"

/** A running stack. */
export type Stack = DevStack.Stack

/** The shared Redis the tests use unless they start their own. */
export const redisUrl = RedisTest.url

/** Starts the stack for a test; it stops, and its keys go, when the test's scope closes. */
export const start = (options: DevStack.Options) =>
  DevStack.start({ label: "vf-test", ...options, asyncEnv: { MOCK_ASYNC_DELAY_MS: "200-600", ...options.asyncEnv } })

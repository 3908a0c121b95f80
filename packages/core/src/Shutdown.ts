/**
 * How vendorflow's processes end. A process stopped by SIGINT or SIGTERM has done what it was asked
 * and exits 0 once its layers have shut down (in-flight requests drained, loops interrupted, scopes
 * closed); Effect's default would be 130, which orchestrators read as a crash.
 *
 * @since 0.1.0
 */
import { Cause, Exit, Runtime } from "effect"

/**
 * The teardown for `NodeRuntime.runMain`: 0 after a signal-driven shutdown, the default otherwise.
 *
 * @category running
 */
export const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

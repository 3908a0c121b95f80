/**
 * Runs a vendorflow process: launches its layer under `NodeRuntime.runMain`, turns a start-up
 * failure (a bad URL, an unreachable server, a missing adapter) into one clear line on stderr and
 * exit code 1, and exits 0 after a SIGINT/SIGTERM shutdown. Logs and traces as
 * {@link Observability} configures them.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Shutdown } from "@vendorflow/core"
import { Cause, Console, Effect, Layer } from "effect"
import * as Observability from "./Observability.ts"

// An error's message; a wrapper with none (the HTTP server's `ServeError` for a port in use) says
// what its cause says.
const messageOf = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return String(error)
  if ("message" in error && typeof error.message === "string" && error.message !== "") return error.message
  return "cause" in error && error.cause !== undefined ? messageOf(error.cause) : String(error)
}

/**
 * Runs `layer` as the whole process named `name`.
 *
 * @category running
 */
export const run = <E>(name: string, layer: Layer.Layer<never, E>): void =>
  NodeRuntime.runMain(
    Layer.launch(layer.pipe(Layer.provide(Observability.layer(name)))).pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : Console.error(`${name}: ${messageOf(Cause.squash(cause))}`).pipe(
              Effect.andThen(Effect.sync(() => process.exit(1)))
            )
      )
    ),
    { teardown: Shutdown.teardown, disableErrorReporting: true }
  )

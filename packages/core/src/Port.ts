/**
 * A TCP port from the environment: where a vendorflow process (the API, a worker's metrics, a mock
 * vendor) listens.
 *
 * @since 0.1.0
 */
import { Config, Schema } from "effect"

/**
 * A TCP port as an environment variable holds it: 0 to 65535.
 *
 * @category config
 */
export const FromString = Schema.NumberFromString.check(
  Schema.isInt(),
  Schema.isBetween({ minimum: 0, maximum: 65535 })
)

/**
 * A TCP port from the variable `name`, `defaultPort` when unset; 0 asks the OS for a free one
 * (which `Config.Port` refuses), as tests and side-by-side runs need.
 *
 * @category config
 */
export const config = (name: string, defaultPort: number): Config.Config<number> =>
  Config.schema(FromString, name).pipe(Config.withDefault(defaultPort))

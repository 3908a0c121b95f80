/**
 * Where a vendorflow process listens, from the environment.
 *
 * @since 0.1.0
 */
import { Config, Schema } from "effect"

/**
 * A TCP port from the variable `name`, `defaultPort` when unset; 0 asks the OS for a free one
 * (which `Config.Port` refuses), as tests and side-by-side runs need.
 *
 * @category config
 */
export const portConfig = (name: string, defaultPort: number): Config.Config<number> =>
  Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), name).pipe(
    Config.withDefault(defaultPort)
  )

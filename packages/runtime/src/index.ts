/**
 * @vendorflow/runtime: what the reference server and worker compose from the environment.
 *
 * @since 0.1.0
 */
export * as Adapters from "./Adapters.ts"
export * as Backends from "./Backends.ts"
export * as Main from "./Main.ts"
export * as Observability from "./Observability.ts"

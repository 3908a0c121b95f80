/**
 * @vendorflow/server: the vendorflow HTTP API served by Node, as Effect layers.
 *
 * @since 0.1.0
 */
export * as Dashboard from "./Dashboard.ts"
export * as Routes from "./Routes.ts"
export * as Server from "./Server.ts"

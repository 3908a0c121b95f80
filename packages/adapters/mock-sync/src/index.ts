/**
 * @vendorflow/adapter-mock-sync: the reference synchronous vendor (a real HTTP server on the kit's
 * `VendorSimulator`) and its adapter, plus what every mock vendor shares on top of the simulator. As
 * an adapter package it provides the `sync` vendor (`vendors`).
 *
 * @since 0.1.0
 */
import type { VendorDefinition } from "@vendorflow/adapter-kit"
import * as MockSyncVendor from "./MockSyncVendor.ts"

export * as MockSyncServer from "./MockSyncServer.ts"
export * as MockVendorServer from "./MockVendorServer.ts"
export { MockSyncVendor }

/**
 * The vendors this adapter package provides.
 *
 * @category adapter
 */
export const vendors: ReadonlyArray<VendorDefinition.VendorDefinition> = [MockSyncVendor.definition]
